/* The dispatcher console: what recipients say through their tracking link (docs/CONSOLE.md,
 * "What recipients say"). Loaded after console.js, plugged in with ctConsole.use().
 *
 * - A stop whose recipient said "I'm not home" carries a flag: text in its row of the route's
 *   stop list, a labelled badge next to its marker, a line in its popup, and a banner at the top
 *   of its pane ("Recipient not home since 14:05").
 * - The stop's pane shows the recipients' delivery instructions (from the stop details API) and
 *   their last few actions (GET /api/v1/shipments/{id}/customer-actions/ per shipment).
 * - Live: stop.recipient_away, shipment.customer_updated, shipment.rescheduled and
 *   shipment.rated refresh what is open and add a line to the "Recipients" feed (announced to
 *   screen readers); a line opens the stop, or searches the shipment.
 *
 * The socket carries no text the recipient typed: the words come from the stop details.
 */
(function () {
  "use strict";

  const ct = window.ctConsole;
  if (!ct) return;
  const { state } = ct;
  const kit = ct.kit;
  const { esc, fmtTime, api } = kit;
  const $ = (id) => document.getElementById(id);
  const OPEN_STOP = new Set(["pending", "arrived"]);
  const ACTIONS_SHOWN = 5;
  const ACTIONS_SHIPMENTS_MAX = 10;
  const FEED_MAX = 20;
  const KIND_TEXT = {
    instructions: "Delivery instructions",
    reschedule: "Rescheduled",
    not_home: "Not home",
    rating: "Rated",
  };

  function dayWindow(start, end) {
    if (!start) return "—";
    const zone = state.timeZone || "UTC";
    const day = new Intl.DateTimeFormat(undefined, {
      timeZone: zone, weekday: "short", day: "numeric", month: "short",
    }).format(new Date(start));
    const hm = new Intl.DateTimeFormat(undefined, {
      timeZone: zone, hour: "2-digit", minute: "2-digit", hourCycle: "h23",
    });
    return `${day} ${hm.format(new Date(start))}–${end ? hm.format(new Date(end)) : ""}`;
  }
  function awayText(s) {
    return `Recipient not home since ${fmtTime(s.recipient_away_at)}`;
  }

  // ------------------------------------------------------------------ the stop's pane

  function stopBanner(s) {
    if (!s.recipient_away_at) return "";
    const open = OPEN_STOP.has(s.status);
    return `<p class="message warn recipient-away" id="recipient-away" role="note">
      <strong><span aria-hidden="true">⚠ </span>${esc(awayText(s))}</strong>
      <span class="help">${open ? "Said through the tracking link. The plan is unchanged: skip, reassign or call." : "Said through the tracking link before the visit."}</span></p>`;
  }
  function stopSections(s) {
    const instructions = (s.instructions || []).map((text) => `<li><blockquote>${esc(text)}</blockquote></li>`).join("");
    return `<h3 id="instructions-heading">Delivery instructions</h3>
      <ul class="instructions" aria-labelledby="instructions-heading">${instructions || '<li class="empty">None from the recipient.</li>'}</ul>
      <h3 id="customer-actions-heading">Recipient's actions</h3>
      <ol id="customer-actions" class="customer-actions" aria-labelledby="customer-actions-heading"><li class="empty">Loading…</li></ol>`;
  }
  function actionText(a) {
    const d = a.details || {};
    if (a.kind === "instructions") {
      return d.after ? `${KIND_TEXT.instructions}: “${d.after}”` : "Delivery instructions cleared";
    }
    if (a.kind === "reschedule") return `Rescheduled to ${dayWindow(d.window_start, d.window_end)}${d.route ? ` (taken off route ${d.route})` : ""}`;
    if (a.kind === "not_home") return `Not home${d.route ? ` (route ${d.route})` : ""}`;
    if (a.kind === "rating") return `Rated ${d.stars}/5`;
    return KIND_TEXT[a.kind] || a.kind;
  }
  let actionsTicket = 0;
  async function stopShown(s) {
    const box = $("customer-actions");
    if (!box) return;
    const ticket = ++actionsTicket;
    // One request per parcel: a stop with a business's dozens of parcels reads the first few.
    const shipments = (s.shipments || []).slice(0, ACTIONS_SHIPMENTS_MAX);
    const many = shipments.length > 1;
    let rows = [];
    let failed = null;
    await Promise.all(shipments.map(async (sh) => {
      try {
        const list = await api(kit.urlFor("customerActions", sh.id));
        rows = rows.concat(list.map((a) => ({ ...a, reference: sh.reference })));
      } catch (err) { failed = err; }
    }));
    if (ticket !== actionsTicket || !document.body.contains(box)) return;
    rows.sort((a, b) => String(b.occurred_at).localeCompare(String(a.occurred_at)) || b.id - a.id);
    const items = rows.slice(0, ACTIONS_SHOWN).map((a) => `<li data-kind="${esc(a.kind)}"><time datetime="${esc(a.occurred_at)}">${esc(fmtTime(a.occurred_at))}</time>
      ${many ? esc(a.reference) + ": " : ""}${esc(actionText(a))}</li>`).join("");
    if (items) box.innerHTML = items + (rows.length > ACTIONS_SHOWN ? `<li class="help">and ${rows.length - ACTIONS_SHOWN} earlier</li>` : "");
    else if (failed) box.innerHTML = `<li class="message error" role="alert">${esc(failed.message)}</li>`;
    else box.innerHTML = `<li class="empty">Nothing yet.</li>`;
  }
  function stopFlags(s) {
    if (!s.recipient_away_at || !OPEN_STOP.has(s.status)) return [];
    return [{ key: "away", short: "not home", text: `not home since ${fmtTime(s.recipient_away_at)}` }];
  }

  // ------------------------------------------------------------------ the feed

  // Newest first; a new line is inserted on its own (the list is aria-live: re-rendering it
  // would read every line again).
  const feed = [];
  let feedSerial = 0;
  function feedAdd(item) {
    const entry = { ...item, n: ++feedSerial };
    feed.unshift(entry);
    const list = $("customer-feed");
    if (list) {
      const li = document.createElement("li");
      li.innerHTML = `<button type="button" class="stop-link feed-item" data-feed="${entry.n}">
        <time datetime="${esc(entry.at)}">${esc(fmtTime(entry.at))}</time> <strong>${esc(entry.reference)}</strong> · ${esc(entry.text)}</button>`;
      list.insertBefore(li, list.firstChild);
      while (list.children.length > FEED_MAX) list.lastChild.remove();
    }
    feed.length = Math.min(feed.length, FEED_MAX);
    renderFeedCount();
  }
  function renderFeedCount() {
    $("customer-feed-empty").hidden = feed.length > 0;
    $("customer-feed-count").textContent = feed.length ? `(${feed.length})` : "";
  }
  function routeCode(id) {
    const r = state.routes.get(id);
    return r ? r.code : id == null ? "" : `#${id}`;
  }
  function openFeedItem(f) {
    kit.flash("");
    if (f.stop != null && f.route != null && state.routes.has(f.route)) {
      kit.openRoute(f.route, { focusStop: f.stop, fit: false });
      return;
    }
    const input = $("search-input");
    input.value = f.reference;
    $("search-form").requestSubmit();
  }
  const feedList = $("customer-feed");
  if (feedList) {
    feedList.addEventListener("click", (e) => {
      const b = e.target.closest("[data-feed]");
      const f = b && feed.find((x) => x.n === Number(b.dataset.feed));
      if (f) openFeedItem(f);
    });
  }

  // ------------------------------------------------------------------ live

  function openStopHas(shipmentId) {
    const s = state.openStop;
    return state.openStopId != null && s && s.id === state.openStopId
      && (s.shipments || []).some((sh) => sh.id === shipmentId);
  }
  function refreshOpenStop() {
    if (state.openStopId != null) kit.openStop(state.openStopId);
  }

  ct.use({
    stopBanner,
    stopSections,
    stopShown,
    stopFlags,
    handlers: {
      "stop.recipient_away"(d) {
        kit.updateOpenStop(d.id, { recipient_away_at: d.at });
        if (state.openStopId === d.id) refreshOpenStop();
        feedAdd({ reference: d.reference, at: d.at, stop: d.id, route: d.route,
          text: `not home · stop ${d.sequence} of route ${routeCode(d.route)}` });
      },
      "shipment.customer_updated"(d) {
        if (openStopHas(d.id)) refreshOpenStop();
        feedAdd({ reference: d.reference, at: d.at, text: "new delivery instructions" });
      },
      "shipment.rescheduled"(d) {
        if (state.openStopId === d.stop || openStopHas(d.id)) refreshOpenStop();
        if (d.route != null && d.route === state.openRouteId) kit.scheduleRouteRefresh();
        feedAdd({ reference: d.reference, at: d.at, route: d.route, stop: d.stop,
          text: `rescheduled to ${dayWindow(d.window_start, d.window_end)}${d.route != null ? ` · off route ${routeCode(d.route)}` : ""}` });
      },
      "shipment.rated"(d) {
        if (openStopHas(d.id)) refreshOpenStop();
        feedAdd({ reference: d.reference, at: d.at, text: `rated ${d.stars}/5` });
      },
    },
  });
  renderFeedCount();
  ct.customerFeed = () => feed.map((f) => ({ ...f }));
})();
