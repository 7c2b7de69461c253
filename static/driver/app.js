/* The driver app (docs/DRIVER_APP.md): sign-in, today's route, the outbox on screen. The route
   shown is the server's last answer (GET /api/v1/driver/today/, kept for offline use) with the
   actions still waiting in the outbox laid over it, so a stop done offline shows "completed
   (waiting to send)" until the server has it, also after a reload. */
(function () {
  "use strict";

  const CTD = window.CTD;
  const t = CTD.t;
  const api = CTD.config.api;
  const store = CTD.store;
  const outbox = CTD.outbox;
  const FINAL = ["completed", "failed", "skipped", "cancelled"];
  const REFRESH_MS = 60000;

  const $ = (id) => document.getElementById(id);
  // `sent`: statuses the server has accepted but the route on screen predates ({key: {status,
  // at}}), so a stop does not flick back to "pending" until the route is read again.
  const state = { session: null, today: null, savedAt: null, items: [], openId: null, sent: {} };

  CTD.announce = function (text) {
    const region = $("announce");
    region.textContent = "";
    setTimeout(function () { region.textContent = text; }, 50);
  };

  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    Object.entries(attributes || {}).forEach(function ([name, value]) {
      if (value === null || value === undefined || value === false) return;
      if (name === "text") node.textContent = value;
      else if (name === "className") node.className = value;
      else node.setAttribute(name, value === true ? "" : value);
    });
    children.flat().forEach(function (child) {
      if (child) node.append(child);
    });
    return node;
  }

  // ------------------------------------------------------------------------------------------
  // Sign-in and sign-out
  // ------------------------------------------------------------------------------------------

  function showSignin(text) {
    // Nothing of the last driver's route stays in the page.
    $("routes").replaceChildren();
    $("map").hidden = true;
    $("app-screen").hidden = true;
    $("signin-screen").hidden = false;
    $("signin-message").textContent = text || "";
    CTD.position.stop();
    $("signin-email").focus();
  }

  function showApp() {
    $("signin-screen").hidden = true;
    $("app-screen").hidden = false;
    const s = state.session;
    $("who").textContent = t("driver_of", { driver: s.driver.name,
      carrier: s.carrier ? s.carrier.name : s.organization.name });
    CTD.position.start();
  }

  async function forgetRoute() {
    state.today = null;
    state.sent = {};
    await store.remove("today");
    await store.remove("sent");
    if (window.caches) await caches.delete("ct-driver-data");
  }

  /** The server said 401: the session is over (revoked, or signed out elsewhere). */
  async function signedOut() {
    outbox.setSession(null);
    state.session = null;
    await store.remove("session");
    await forgetRoute();
    const kept = (await outbox.items()).filter((item) => item.kind !== "ping").length;
    showSignin(t("revoked") + (kept ? " " + t("kept", { n: kept }) : ""));
  }

  function deviceName() {
    const brands = navigator.userAgentData && navigator.userAgentData.brands;
    const brand = brands && brands.find((b) => !/not.?a.?brand|chromium/i.test(b.brand));
    const platform = (navigator.userAgentData && navigator.userAgentData.platform) ||
      navigator.platform || "";
    return ((platform || "Phone") + " (" + (brand ? brand.brand : "browser") + ")").slice(0, 100);
  }

  async function signIn(event) {
    event.preventDefault();
    const message = $("signin-message");
    message.textContent = t("signing_in");
    const body = { email: $("signin-email").value.trim(), password: $("signin-password").value,
      install_id: await store.installId(), device_name: deviceName() };
    const organization = $("signin-organization").value.trim();
    if (organization) body.organization = organization;
    let response;
    try {
      response = await fetch(api.session, { method: "POST", credentials: "omit",
        headers: { "Content-Type": "application/json", "Accept-Language": CTD.config.language },
        body: JSON.stringify(body) });
    } catch (_error) {
      message.textContent = t("signin_offline");
      return;
    }
    const answer = await response.json().catch(() => ({}));
    if (response.status !== 201) {
      if (answer.fields && answer.fields.organization) {
        $("signin-organization-field").hidden = false;
        message.textContent = t("choose_organization");
      } else {
        message.textContent = t("signin_failed", { detail: answer.detail || response.status });
      }
      return;
    }
    $("signin-password").value = "";
    state.session = answer;
    await store.set("session", answer);
    outbox.setSession(answer);
    showApp();
    await loadToday();
  }

  async function signOut() {
    const waiting = (await outbox.items()).filter((item) => item.kind !== "ping").length;
    if (waiting && !window.confirm(t("confirm_signout", { n: waiting }))) return;
    const token = state.session && state.session.token;
    outbox.setSession(null);
    state.session = null;
    await store.remove("session");
    await forgetRoute();
    if (token) {  // best effort: revokes this device's token on the server
      fetch(api.session, { method: "DELETE", credentials: "omit",
        headers: { Authorization: "Device " + token } }).catch(function () {});
    }
    showSignin(t("signed_out"));
  }

  // ------------------------------------------------------------------------------------------
  // Today's route: the server's answer + the outbox laid over it
  // ------------------------------------------------------------------------------------------

  let lastLoad = 0;

  async function loadToday() {
    if (!state.session) return;
    const asked = Date.now();
    const mine = ++lastLoad;
    let answer = null;
    try {
      answer = await outbox.call({ url: api.today }, "GET");
    } catch (_error) {
      answer = null;
    }
    if (mine !== lastLoad) return;  // a later read is on its way: an older answer must not win
    if (answer && answer.status === 401) return signedOut();
    if (answer && answer.status === 200 && answer.body && !answer.saved) {
      state.today = answer.body;
      state.savedAt = null;
      Object.keys(state.sent).forEach(function (key) {
        if (state.sent[key].at < asked) delete state.sent[key];
      });
      await store.set("sent", state.sent);
      await store.set("today", { body: answer.body, at: new Date().toISOString() });
    } else {
      const saved = await store.get("today");
      if (saved) {
        state.today = saved.body;
        state.savedAt = saved.at;
      } else if (answer && answer.saved) {
        state.today = answer.body;
        state.savedAt = new Date().toISOString();
      }
    }
    render();
    if (answer && answer.status >= 400 && !state.today) {
      $("route-message").textContent = t("route_failed", {
        detail: (answer.body && answer.body.detail) || answer.status });
    }
  }

  const AFTER = { arrive: "arrived", complete: "completed", pod: "completed", fail: "failed",
    fail_pod: "failed", skip: "skipped" };

  /** Statuses the outbox will set once sent: {stops: {id: status}, routes: {id: status}}. */
  function pendingStatuses() {
    const result = { stops: {}, routes: {} };
    state.items.forEach(function (item) {
      if (item.state === "rejected") return;
      if (item.kind === "start_route") result.routes[item.payload.route] = "in_progress";
      if (AFTER[item.kind]) result.stops[item.payload.stop] = AFTER[item.kind];
    });
    return result;
  }

  function effective(stop, pending) {
    const sent = state.sent["stop:" + stop.id];
    return pending.stops[stop.id] || (sent && sent.status) || stop.status;
  }

  function routeStatus(route, pending) {
    const sent = state.sent["route:" + route.id];
    return pending.routes[route.id] || (sent && sent.status) || route.status;
  }

  function activeRoute() {
    const routes = (state.today && state.today.routes) || [];
    const pending = pendingStatuses();
    return routes.find((route) => routeStatus(route, pending) !== "completed" &&
      route.stops.some((stop) => !FINAL.includes(effective(stop, pending)))) ||
      routes[0] || null;
  }

  function nextStop(route) {
    if (!route) return null;
    const pending = pendingStatuses();
    return route.stops.find((stop) => !FINAL.includes(effective(stop, pending))) || null;
  }

  /** The stop the buttons act on: the one the driver opened, else the next one. */
  function openStop() {
    const route = activeRoute();
    if (!route) return null;
    const pending = pendingStatuses();
    const chosen = route.stops.find((stop) => stop.id === state.openId);
    if (chosen && !FINAL.includes(effective(chosen, pending))) return chosen;
    return nextStop(route);
  }

  function findParcel(barcode) {
    const wanted = barcode.toUpperCase();
    for (const route of (state.today && state.today.routes) || []) {
      for (const stop of route.stops) {
        for (const shipment of stop.shipments) {
          if ((shipment.barcode || "").toUpperCase() === wanted ||
              (shipment.reference || "").toUpperCase() === wanted) {
            return { route: route, stop: stop, shipment: shipment };
          }
        }
      }
    }
    return null;
  }

  /** The organization's time zone: times on the route are the organization's, not the phone's. */
  function zone() {
    const organization = (state.today && state.today.organization) ||
      (state.session && state.session.organization);
    return organization && organization.time_zone;
  }

  /** The words for a code of the day's choices (failure reasons…), the code if unknown. */
  function choiceLabel(names, value) {
    const choices = (state.today && state.today.choices) || {};
    for (const name of names) {
      const pair = (choices[name] || []).find((candidate) => candidate[0] === value);
      if (pair) return pair[1];
    }
    return value;
  }

  function statusText(status, waiting) {
    const text = t("status_" + status);
    return waiting ? t("waiting_suffix", { status: text }) : text;
  }

  function stopActions(route, stop, status) {
    const navigate = el("div", { className: "actions" },
      stop.navigate_url ? el("a", { className: "btn", href: stop.navigate_url,
        text: t("navigate") }) : null,
      el("a", { className: "btn", target: "_blank", rel: "noopener",
        href: "https://www.google.com/maps/dir/?api=1&destination=" + stop.lat + "," + stop.lon,
        text: t("google_maps") }));
    const buttons = el("div", { className: "actions" });
    const button = (action, label, primary) => el("button", { type: "button",
      className: "btn" + (primary ? " primary" : ""), "data-action": action,
      "data-stop": String(stop.id), text: label });
    if (status === "pending") buttons.append(button("arrive", t("arrived"), true));
    buttons.append(button("deliver", t("deliver"), status === "arrived"));
    const policy = (state.today && state.today.pod_policy) || {};
    if (policy.photo_required === false && policy.signature_required === false) {
      // The carrier asks for no proof: a delivery may be confirmed with one tap.
      buttons.append(button("complete", t("complete_no_proof")));
    }
    buttons.append(button("fail", t("fail")));
    // Skipping is deciding not to visit: once there, it is a delivery or a failed attempt.
    if (status === "pending") buttons.append(button("skip", t("skip")));
    return [navigate, buttons];
  }

  function stopItem(route, stop, pending, next, open) {
    const status = effective(stop, pending);
    const waiting = Boolean(pending.stops[stop.id]);
    const isOpen = open && stop.id === open.id;
    const classes = ["stop", "status-" + status];
    if (next && stop.id === next.id) classes.push("next");
    if (isOpen) classes.push("open");
    const heading = el("h3", {}, el("button", { type: "button", className: "stop-head",
      "data-open": String(stop.id), "aria-expanded": isOpen ? "true" : "false" },
    el("span", { className: "seq", text: String(stop.sequence) }),
    el("span", { className: "address", text: stop.address })));
    const parcels = el("ul", { className: "parcels" }, stop.shipments.map((shipment) =>
      el("li", {}, t("parcel_line", { reference: shipment.reference, barcode: shipment.barcode,
        count: shipment.parcel_count, recipient: shipment.recipient_name }),
      shipment.requires_pin ? el("strong", { className: "pin", text: " · " + t("pin_needed") })
        : null)));
    const instructions = stop.shipments.map((s) => s.delivery_instructions).filter(Boolean);
    return el("li", { className: classes.join(" "), "data-stop-id": String(stop.id),
      "data-status": status, "aria-current": next && stop.id === next.id ? "step" : null },
    heading,
    el("p", { className: "stop-status", "data-waiting": waiting ? "true" : null },
      (next && stop.id === next.id ? t("next_stop") + " · " : "") + statusText(status, waiting)),
    stop.window_start ? el("p", { text: t("window", { start: CTD.time(stop.window_start, zone()),
      end: CTD.time(stop.window_end, zone()) }) }) : null,
    stop.eta_earliest ? el("p", { className: "eta", text: t("eta", {
      start: CTD.time(stop.eta_earliest, zone()), end: CTD.time(stop.eta_latest, zone()) }) })
      : null,
    parcels,
    instructions.length ? el("p", { className: "instructions",
      text: t("instructions", { text: instructions.join(" · ") }) }) : null,
    stop.notes ? el("p", { className: "instructions", text: stop.notes }) : null,
    stop.failure_reason ? el("p", { text: t("failure_reason", {
      text: choiceLabel(["failure_reasons", "skip_reasons"], stop.failure_reason) }) }) : null,
    isOpen && !FINAL.includes(status) ? stopActions(route, stop, status) : null);
  }

  function routeSection(route, pending, active) {
    const status = routeStatus(route, pending);
    const next = route === active ? nextStop(route) : null;
    const open = route === active ? openStop() : null;
    const section = el("section", { className: "card route", "data-route-id": String(route.id),
      "aria-labelledby": "route-heading-" + route.id },
    el("h2", { id: "route-heading-" + route.id, text: t("route_heading", { code: route.code }) }),
    route.vehicle ? el("p", { className: "route-vehicle", text: route.vehicle.plate }) : null,
    el("p", { className: "route-status", "data-status": status,
      "data-waiting": pending.routes[route.id] ? "true" : null,
      text: pending.routes[route.id] ? t("waiting_suffix", { status: t("route_status_" + status) })
        : t("route_status_" + status) }),
    status === "planned" ? el("button", { type: "button", className: "btn primary",
      "data-action": "start_route", "data-route": String(route.id), text: t("start_route") })
      : null,
    el("ol", { className: "stops", "aria-label": t("route_heading", { code: route.code }) },
      route.stops.map((stop) => stopItem(route, stop, pending, next, open))));
    return { section: section, next: next };
  }

  /** What has the focus in the route, to give it back after the list is drawn again. */
  function focusKey() {
    const active = document.activeElement;
    if (!active || !$("routes").contains(active)) return null;
    if (active.dataset.open) return '[data-open="' + active.dataset.open + '"]';
    if (active.dataset.action) {
      return '[data-action="' + active.dataset.action + '"][data-stop="' +
        (active.dataset.stop || "") + '"]';
    }
    return null;
  }

  function restoreFocus(selector) {
    const target = selector && $("routes").querySelector(selector);
    if (target) target.focus();
  }

  function render() {
    const container = $("routes");
    const message = $("route-message");
    if (!state.today) {
      container.replaceChildren();
      message.textContent = t("loading");
      return;
    }
    const routes = state.today.routes || [];
    message.textContent = !routes.length ? t("no_routes") : state.savedAt
      ? t("from_cache", { time: CTD.time(state.savedAt) }) : "";
    const pending = pendingStatuses();
    const active = activeRoute();
    const drawn = routes.map((route) => routeSection(route, pending, active));
    const focused = focusKey();
    container.replaceChildren(...drawn.map((part) => part.section));
    restoreFocus(focused);
    // The map shows the route being worked (one Leaflet map, kept across renders).
    const current = drawn[routes.indexOf(active)];
    $("map").hidden = !current || !window.L;
    if (current && window.L) {
      const shown = Object.assign({}, active, { stops: active.stops.map((stop) =>
        Object.assign({}, stop, { status: effective(stop, pending) })) });
      CTD.routeMap.draw($("map"), shown, current.next && current.next.id);
    }
  }

  // ------------------------------------------------------------------------------------------
  // The outbox on screen
  // ------------------------------------------------------------------------------------------

  function itemLabel(item) {
    const p = item.payload || {};
    return t("kind_" + item.kind, { n: p.sequence, code: p.code, barcode: p.barcode });
  }

  function itemState(item) {
    if (item.state === "rejected") return t("item_rejected", { error: item.last_error });
    if (item.state === "retrying") return t("item_retrying", { error: item.last_error });
    if (item.state === "sending") return t("item_sending");
    return t("item_waiting");
  }

  let outboxDrawn = null;

  async function renderOutbox() {
    state.items = await outbox.items();
    const actions = state.items.filter((item) => item.kind !== "ping");
    const waiting = actions.filter((item) => item.state !== "rejected");
    const rejected = actions.filter((item) => item.state === "rejected");
    const pings = state.items.filter((item) => item.kind === "ping" && item.state !== "rejected");
    const parts = [waiting.length ? t("queue_waiting", { n: waiting.length }) : t("queue_empty")];
    if (rejected.length) parts.push(t("queue_attention", { n: rejected.length }));
    $("queue-count").textContent = parts.join(" · ");
    $("queue-button").classList.toggle("has-waiting", waiting.length > 0);
    $("queue-button").classList.toggle("has-rejected", rejected.length > 0);
    const list = actions.map((item) => el("li", { className: "item-" + item.state,
      "data-kind": item.kind },
    el("span", { className: "item-label", text: itemLabel(item) }),
    el("span", { className: "item-state", text: itemState(item) }),
    item.state === "rejected" ? el("button", { type: "button", className: "btn small",
      "data-dismiss": String(item.seq), text: t("dismiss") }) : null));
    if (pings.length) list.push(el("li", { text: t("positions_waiting", { n: pings.length }) }));
    $("queue-list").replaceChildren(...list);
    // A new position every 15 s must not redraw the route under the driver's finger.
    const drawnKey = JSON.stringify(actions.map((item) => [item.seq, item.state]));
    if (drawnKey !== outboxDrawn) {
      outboxDrawn = drawnKey;
      render();
    }
  }

  // ------------------------------------------------------------------------------------------
  // Actions
  // ------------------------------------------------------------------------------------------

  function stopById(id) {
    for (const route of (state.today && state.today.routes) || []) {
      const stop = route.stops.find((candidate) => candidate.id === id);
      if (stop) return { route: route, stop: stop };
    }
    return null;
  }

  /** Queue a stop action (arrive, complete, skip, fail, pod, fail_pod) with its time now. */
  async function stopAction(kind, stop, extra, files) {
    const payload = Object.assign({ stop: stop.id, sequence: stop.sequence,
      occurred_at: new Date().toISOString() }, extra || {});
    await outbox.enqueue(kind, payload, files);
    CTD.announce(t("queued"));
  }

  $("routes").addEventListener("click", async function (event) {
    const opener = event.target.closest("[data-open]");
    if (opener) {
      state.openId = Number(opener.getAttribute("data-open"));
      render();
      const again = document.querySelector('[data-open="' + state.openId + '"]');
      if (again) again.focus();
      return;
    }
    const button = event.target.closest("[data-action]");
    if (!button) return;
    const action = button.getAttribute("data-action");
    if (action === "start_route") {
      const route = state.today.routes.find((r) => String(r.id) === button.dataset.route);
      await outbox.enqueue("start_route", { route: route.id, code: route.code,
        occurred_at: new Date().toISOString() });
      CTD.announce(t("queued"));
      return;
    }
    const found = stopById(Number(button.getAttribute("data-stop")));
    if (!found) return;
    if (action === "arrive" || action === "complete") await stopAction(action, found.stop);
    else CTD.forms.open(action, found.stop);
  });

  $("queue-button").addEventListener("click", function () {
    const panel = $("queue-panel");
    panel.hidden = !panel.hidden;
    this.setAttribute("aria-expanded", panel.hidden ? "false" : "true");
  });
  $("queue-send").addEventListener("click", function () { outbox.retryNow(); });
  $("queue-list").addEventListener("click", function (event) {
    const button = event.target.closest("[data-dismiss]");
    if (button) outbox.dismiss(Number(button.getAttribute("data-dismiss")));
  });
  $("scan-button").addEventListener("click", function () {
    const open = openStop();
    const route = activeRoute();
    const choices = (state.today && state.today.choices.scan_types) || [];
    const atHub = !route || routeStatus(route, pendingStatuses()) === "planned";
    CTD.scanner.open(choices, atHub ? "loaded" : open ? "delivered" : "loaded");
  });
  $("problem-button").addEventListener("click", function () { CTD.forms.open("problem"); });
  $("signout-button").addEventListener("click", signOut);
  $("signin-form").addEventListener("submit", signIn);

  function showNetwork() {
    $("net").textContent = navigator.onLine ? t("online") : t("offline");
    $("net").classList.toggle("is-offline", !navigator.onLine);
  }
  window.addEventListener("online", function () { showNetwork(); loadToday(); });
  window.addEventListener("offline", showNetwork);

  let reloadSoon = null;
  outbox.on("change", renderOutbox);
  outbox.on("signedout", signedOut);
  outbox.on("result", function (item, body, accepted) {
    if (item.kind === "scan") CTD.scanner.showResult(item, body, accepted);
    if (!accepted) CTD.announce(itemLabel(item) + ": " + itemState(item));
    if (item.kind === "ping") return;
    if (accepted && AFTER[item.kind]) {
      state.sent["stop:" + item.payload.stop] = { status: AFTER[item.kind], at: Date.now() };
    }
    if (accepted && item.kind === "start_route") {
      state.sent["route:" + item.payload.route] = { status: "in_progress", at: Date.now() };
    }
    store.set("sent", state.sent);
    clearTimeout(reloadSoon);
    reloadSoon = setTimeout(loadToday, 300);
  });

  CTD.app = {
    openStop: openStop,
    activeRoute: activeRoute,
    choices: function () { return (state.today && state.today.choices) || {}; },
    podPolicy: function () { return (state.today && state.today.pod_policy) || {}; },
    stopAction: stopAction,
  };
  CTD.scanner.init({ lookup: findParcel, openStop: openStop, position: CTD.position.latest });

  async function start() {
    showNetwork();
    if ("serviceWorker" in navigator) {
      navigator.serviceWorker.register(CTD.config.serviceWorker, { scope: CTD.config.scope })
        .catch(function () {});  // the app works without it, only not offline after a reload
    }
    await renderOutbox();
    state.session = await store.get("session");
    if (!state.session || !state.session.token) {
      showSignin("");
      return;
    }
    state.sent = (await store.get("sent")) || {};
    outbox.setSession(state.session);
    showApp();
    const saved = await store.get("today");
    if (saved) {
      state.today = saved.body;
      state.savedAt = saved.at;
      render();
    }
    await loadToday();
    setInterval(function () {
      if (navigator.onLine && !document.hidden && state.session) loadToday();
    }, REFRESH_MS);
  }

  start();
})();
