/* The dispatcher console: the alerts feed (docs/EXCEPTIONS.md, "Live feed"). Loaded after
 * console.js, plugged in with ctConsole.use().
 *
 * The open alerts (GET /api/v1/alerts/?open=true on every (re)sync, then alert.raised /
 * alert.updated live), the counts by severity in the header, the selected alert's panel
 * (acknowledge, assign, snooze, resolve, the suggested actions) and its stop or vehicle on the
 * map. Keyboard: the feed is a list of buttons; Enter selects an alert.
 */
(function () {
  "use strict";

  const ct = window.ctConsole;
  if (!ct) return;
  const { state, config, map, markers } = ct;
  const {
    api, urlFor, esc, fmtTime, dl, flash, openStop, openRoute, openVehicle, drawOpenRoute,
    humanStatus, scheduleList, mergeRoute,
  } = ct.kit;
  const $ = (id) => document.getElementById(id);

  // ---------------------------------------------------------------- alerts

  // The open alerts (GET /api/v1/alerts/?open=true, then alert.raised / alert.updated live):
  // most severe first, newest first within a severity. A resolved alert leaves the feed.
  const SEVERITIES = ["critical", "high", "medium", "low"];
  const ALERT_FEED_MAX = 200;
  const alertItems = new Map(); // alert id -> <li>
  function alertRank(a) {
    const i = SEVERITIES.indexOf(a.severity);
    return i < 0 ? SEVERITIES.length : i;
  }
  function sortedAlerts() {
    return [...state.alerts.values()].sort((a, b) => alertRank(a) - alertRank(b)
      || String(b.raised_at).localeCompare(String(a.raised_at)) || b.id - a.id);
  }
  function upsertAlert(a, { announce = false } = {}) {
    if (!a || a.id == null) return;
    const known = state.alerts.get(a.id);
    // Events may overtake the list: never go back to an older version of an alert.
    if (known && a.last_seen_at && known.last_seen_at && a.last_seen_at < known.last_seen_at
        && a.state === known.state) return;
    if (a.state === "resolved") {
      state.alerts.delete(a.id);
    } else {
      state.alerts.set(a.id, a);
      if (announce && !known) announceAlert(a);
    }
    scheduleAlerts();
    if (state.selectedAlertId === a.id) renderAlertPanel();
  }
  function announceAlert(a) {
    $("alerts-announce").textContent = `New ${a.severity} alert: ${a.title}`;
  }
  let alertsScheduled = false;
  function scheduleAlerts() {
    if (alertsScheduled) return;
    alertsScheduled = true;
    setTimeout(() => { alertsScheduled = false; renderAlerts(); }, 0);
  }
  function alertSubject(a) {
    const route = a.route != null && state.routes.get(a.route);
    const parts = [];
    if (route) parts.push(`route ${route.code}`);
    if (a.vehicle != null && state.vehicles.has(a.vehicle)) parts.push(state.vehicles.get(a.vehicle).label);
    return parts.join(" · ");
  }
  function alertStateText(a) {
    if (a.state === "snoozed") return `snoozed until ${fmtTime(a.snoozed_until)}`;
    if (a.state === "assigned" && a.assigned_to) return `assigned to ${a.assigned_to.email}`;
    return humanStatus(a.state);
  }
  function alertItemHtml(a) {
    const subject = alertSubject(a);
    return `<button type="button" class="alert-item" data-alert-id="${a.id}" aria-pressed="${state.selectedAlertId === a.id}">
      <span class="badge sev sev-${esc(a.severity)}">${esc(a.severity)}</span>
      <span class="title">${esc(a.title || humanStatus(a.kind))}</span>
      <span class="meta"><time datetime="${esc(a.raised_at)}">${esc(fmtTime(a.raised_at))}</time>
        · <span class="alert-state">${esc(alertStateText(a))}</span>${a.escalation_level ? ` · escalated ×${esc(a.escalation_level)}` : ""}${subject ? " · " + esc(subject) : ""}</span>
    </button>`;
  }
  function renderAlerts() {
    const alerts = sortedAlerts().slice(0, ALERT_FEED_MAX);
    const list = $("alert-list");
    const seen = new Set();
    let previous = null;
    for (const a of alerts) {
      seen.add(a.id);
      let li = alertItems.get(a.id);
      const html = alertItemHtml(a);
      if (!li) {
        li = document.createElement("li");
        alertItems.set(a.id, li);
      }
      if (li.dataset.html !== html) {
        // Keep the keyboard focus on an item that is redrawn in place.
        const focused = li.contains(document.activeElement);
        li.innerHTML = html;
        li.dataset.html = html;
        li.className = `sev-${a.severity}${a.state === "snoozed" ? " snoozed" : ""}`;
        if (focused) li.querySelector("button").focus();
      }
      const want = previous ? previous.nextSibling : list.firstChild;
      if (want !== li) list.insertBefore(li, want);
      previous = li;
    }
    for (const [id, li] of [...alertItems]) {
      if (!seen.has(id)) { li.remove(); alertItems.delete(id); }
    }
    $("alerts-empty").hidden = alerts.length > 0;
    renderAlertCounts();
    if (state.selectedAlertId != null && !state.alerts.has(state.selectedAlertId)) {
      state.selectedAlertId = null;
      state.alertStopId = null;
      renderAlertPanel();
      drawOpenRoute();
    }
  }
  function renderAlertCounts() {
    const counts = Object.fromEntries(SEVERITIES.map((s) => [s, 0]));
    for (const a of state.alerts.values()) if (a.severity in counts) counts[a.severity] += 1;
    const total = state.alerts.size;
    $("alert-count").textContent = total ? `(${total})` : "";
    $("alert-counts").innerHTML = SEVERITIES.map((s) => `<a href="#alerts-heading" class="badge sev sev-${s}${counts[s] ? "" : " zero"}" data-severity="${s}"
      aria-label="${counts[s]} ${s} alert${counts[s] === 1 ? "" : "s"}">${counts[s]} ${s}</a>`).join("");
  }
  async function loadAlerts() {
    if (!config.canReadAlerts) return;
    let data;
    try {
      data = await api(`${config.api.alerts}?open=true&page_size=${ALERT_FEED_MAX}&ordering=-severity_rank`);
    } catch (err) {
      $("alerts-empty").hidden = false;
      $("alerts-empty").textContent = `Alerts could not be loaded: ${err.message}`;
      return;
    }
    // Loaded while the socket's messages wait in the buffer: the list replaces what was held
    // (an alert resolved while the socket was down leaves), the buffered changes follow it.
    const fresh = new Map();
    for (const a of data.results || []) if (a.state !== "resolved") fresh.set(a.id, a);
    state.alerts = fresh;
    $("alerts-empty").textContent = "No alerts";
    renderAlerts();
    if (state.selectedAlertId != null) renderAlertPanel();
  }

  function selectAlert(id) {
    const a = state.alerts.get(id);
    if (!a) return;
    state.selectedAlertId = id;
    state.alertStopId = a.stop;
    alertsNotice("");
    state.alertSuggestions = null;
    renderAlerts();
    for (const li of alertItems.values()) {
      const b = li.querySelector("button");
      if (b) b.setAttribute("aria-pressed", String(Number(b.dataset.alertId) === id));
    }
    renderAlertPanel();
    flash("");
    // On the map: the stop (with its route and pane), else the vehicle, else the route.
    if (a.stop != null && a.route != null) openRoute(a.route, { focusStop: a.stop });
    else if (a.stop != null) openStop(a.stop);
    else if (a.vehicle != null && state.vehicles.has(a.vehicle)) {
      openVehicle(a.vehicle);
      const m = markers.get(a.vehicle);
      if (m) map.panTo(m.marker.getLatLng());
    } else if (a.route != null) openRoute(a.route);
    loadAssignees(a);
    loadSuggestions(a);
  }
  async function loadAssignees(a) {
    if (!config.canWorkAlerts) return;
    try {
      const people = await api(urlFor("alertAction", a.id).replace("{action}", "assignees"));
      if (state.selectedAlertId !== a.id) return;
      state.alertAssignees = people;
      const select = $("alert-assignee");
      if (select) fillAssignees(select);
    } catch (_e) { state.alertAssignees = []; }
  }
  function fillAssignees(select) {
    const people = state.alertAssignees || [];
    select.innerHTML = people.length
      ? people.map((p) => `<option value="${p.id}">${esc(p.email)}</option>`).join("")
      : `<option value="">No one may work this alert</option>`;
  }
  async function loadSuggestions(a) {
    const box = $("alert-suggestions");
    try {
      const data = await api(urlFor("alertAction", a.id).replace("{action}", "suggestions"));
      if (state.selectedAlertId !== a.id) return;
      state.alertSuggestions = data;
      if (data.stop != null) {
        state.alertStopId = data.stop;
        drawOpenRoute();
      }
    } catch (err) {
      if (state.selectedAlertId !== a.id) return;
      state.alertSuggestions = { actions: [], error: err.message };
    }
    renderSuggestions();
    if (!box) renderAlertPanel();
  }
  function suggestionHtml(s, i) {
    if (s.kind === "reassign_stop") {
      if (!config.canReassign) return "";
      const minutes = Math.round(s.added_time_s / 60);
      return `<li><button type="button" class="secondary" data-suggestion="${i}">Reassign the stop to ${esc(s.route_code)}</button>
        <span class="help">+${esc(minutes)} min driving, as stop ${esc(s.position)} of its open stops</span></li>`;
    }
    if (s.kind === "call_driver") {
      return `<li><a class="button-link linklike" href="${esc(s.href)}">${esc(s.label)}</a> <span class="help">${esc(s.phone)}</span></li>`;
    }
    return `<li><button type="button" class="secondary" disabled aria-disabled="true">${esc(s.label)}</button>
      <span class="help">${esc(s.reason || "")}</span></li>`;
  }
  function renderSuggestions() {
    const box = $("alert-suggestions");
    if (!box) return;
    const data = state.alertSuggestions;
    if (!data) { box.innerHTML = `<p class="empty">Loading suggestions…</p>`; return; }
    if (data.error) { box.innerHTML = `<p class="message error" role="alert">${esc(data.error)}</p>`; return; }
    const items = (data.actions || []).map(suggestionHtml).filter(Boolean).join("");
    box.innerHTML = items ? `<ul class="suggestions">${items}</ul>` : `<p class="empty">No suggestions.</p>`;
  }
  function renderAlertPanel() {
    const panel = $("alert-panel");
    const a = state.alerts.get(state.selectedAlertId);
    if (!a) { panel.hidden = true; panel.innerHTML = ""; return; }
    // A live update of the selected alert keeps what the person is typing.
    const focusedId = panel.contains(document.activeElement) ? document.activeElement.id : null;
    const kept = {};
    for (const el of panel.querySelectorAll("select, input")) kept[el.id] = el.value;
    panel.hidden = false;
    const work = config.canWorkAlerts;
    const codes = config.resolutionCodes || [];
    panel.innerHTML = `<h3 id="alert-panel-title">${esc(a.title)}</h3>` + dl([
      ["Severity", `<span class="badge sev sev-${esc(a.severity)}">${esc(a.severity)}</span>`],
      ["State", `<span id="alert-panel-state">${esc(alertStateText(a))}</span>`],
      ["Kind", esc(humanStatus(a.kind))],
      ["Since", esc(fmtTime(a.started_at))],
      ["Raised", esc(fmtTime(a.raised_at))],
      ["Subject", esc(alertSubject(a) || `${a.subject_type} ${a.subject_id}`)],
    ]) + (work ? `<div class="alert-actions">
        <button type="button" id="alert-ack" ${a.state === "acknowledged" || a.state === "assigned" ? "disabled" : ""}>Acknowledge</button>
        <form id="alert-assign-form" class="inline-form">
          <label for="alert-assignee">Assign to</label>
          <select id="alert-assignee"></select>
          <button type="submit">Assign</button>
        </form>
        <form id="alert-snooze-form" class="inline-form">
          <label for="alert-snooze-min">Snooze for</label>
          <select id="alert-snooze-min"><option value="15">15 min</option><option value="30">30 min</option><option value="60">60 min</option></select>
          <button type="submit">Snooze</button>
        </form>
        <form id="alert-resolve-form" class="inline-form resolve">
          <label for="alert-resolution">Resolve as</label>
          <select id="alert-resolution">${codes.map((c) => `<option value="${esc(c.value)}">${esc(c.label)}</option>`).join("")}</select>
          <label for="alert-note">Note</label>
          <input id="alert-note" type="text" maxlength="2000" autocomplete="off">
          <button type="submit">Resolve</button>
        </form>
      </div>` : `<p class="help">Your role may look at alerts but not work them.</p>`)
      + `<div id="alert-message" role="status" aria-live="polite"></div>
      <h4>Suggested actions</h4><div id="alert-suggestions"></div>`;
    const assignee = $("alert-assignee");
    if (assignee) fillAssignees(assignee);
    for (const [id, value] of Object.entries(kept)) {
      const el = $(id);
      if (el && value !== "" && [...(el.options || [])].some((o) => o.value === value) || (el && el.tagName === "INPUT")) el.value = value;
    }
    if (focusedId && $(focusedId)) $(focusedId).focus();
    renderSuggestions();
  }
  function alertsNotice(text, ok) {
    const el = $("alerts-notice");
    el.className = `message ${ok ? "ok" : "error"}`;
    el.setAttribute("role", ok ? "status" : "alert");
    el.textContent = text || "";
    el.hidden = !text;
  }
  function alertMessage(text, ok) {
    const m = $("alert-message");
    if (!m) return;
    m.className = `message ${ok ? "ok" : "error"}`;
    m.setAttribute("role", ok ? "status" : "alert");
    m.textContent = text;
  }
  async function alertAction(action, body) {
    const id = state.selectedAlertId;
    if (id == null) return;
    const panel = $("alert-panel");
    for (const b of panel.querySelectorAll("button")) b.disabled = true;
    try {
      const a = await api(urlFor("alertAction", id).replace("{action}", action), { method: "POST", body });
      upsertAlert(a);
      const done = { acknowledge: "Acknowledged.", assign: `Assigned to ${a.assigned_to ? a.assigned_to.email : "them"}.`,
        snooze: `Snoozed until ${fmtTime(a.snoozed_until)}.`, resolve: "Resolved: the alert left the feed." }[action];
      if (a.state === "resolved") alertsNotice(done, true); else alertMessage(done, true);
    } catch (err) {
      // Refused because the alert changed meanwhile (409) or went out of reach (404): show
      // it as it is now; one resolved meanwhile leaves the feed, the refusal stays readable.
      if (err.status === 409 || err.status === 404) {
        try {
          upsertAlert(await api(urlFor("alert", id)));
        } catch (again) {
          if (again.status === 404) upsertAlert({ id, state: "resolved" });
        }
      }
      if (state.alerts.has(id)) {
        renderAlertPanel();
        alertMessage(err.message, false);
      } else {
        alertsNotice(`${err.message} It has left the feed.`, false);
      }
    } finally {
      for (const b of panel.querySelectorAll("button:not([aria-disabled])")) {
        if (b.id !== "alert-ack" || !["acknowledged", "assigned"].includes((state.alerts.get(id) || {}).state)) b.disabled = false;
      }
    }
  }
  async function runSuggestion(s) {
    alertMessage("Reassigning…", true);
    try {
      const result = await api(urlFor("reassign", s.stop), { method: "POST", body: { route: s.route } });
      for (const r of [result.from_route, result.to_route]) if (r) mergeRoute(r);
      scheduleList();
      const to = result.to_route || {};
      const text = `Stop moved to route ${to.code || s.route_code}${result.stop && result.stop.sequence != null ? ` as stop ${result.stop.sequence}` : ""}.`;
      state.lastReassign = result;
      alertMessage(text, true);
      flash(text);
      await openRoute(s.route, { focusStop: s.stop, fit: false });
      const a = state.alerts.get(state.selectedAlertId);
      if (a) loadSuggestions(a);
    } catch (err) {
      alertMessage(err.message, false);
    }
  }
  $("alert-list").addEventListener("click", (e) => {
    const b = e.target.closest("[data-alert-id]");
    if (b) selectAlert(Number(b.dataset.alertId));
  });
  $("alert-panel").addEventListener("click", (e) => {
    if (e.target.closest("#alert-ack")) { alertAction("acknowledge", {}); return; }
    const s = e.target.closest("[data-suggestion]");
    if (s && state.alertSuggestions) runSuggestion(state.alertSuggestions.actions[Number(s.dataset.suggestion)]);
  });
  $("alert-panel").addEventListener("submit", (e) => {
    e.preventDefault();
    const form = e.target;
    if (form.id === "alert-assign-form") {
      const value = $("alert-assignee").value;
      if (!value) { alertMessage("Choose a person to assign.", false); return; }
      alertAction("assign", { assignee: Number(value) });
    } else if (form.id === "alert-snooze-form") {
      const until = new Date(Date.now() + Number($("alert-snooze-min").value) * 60000);
      alertAction("snooze", { until: until.toISOString() });
    } else if (form.id === "alert-resolve-form") {
      alertAction("resolve", { resolution_code: $("alert-resolution").value, note: $("alert-note").value });
    }
  });

  ct.use({
    handlers: {
      "alert.raised"(d) { upsertAlert(d, { announce: true }); },
      "alert.updated"(d) { upsertAlert(d, { announce: false }); },
    },
    resync: loadAlerts,
  });
  ct.selectAlert = selectAlert;
  ct.alertIds = () => sortedAlerts().map((a) => a.id);

  renderAlerts();
  renderAlertPanel();
  // A re-sync that finished before this file ran did not load the alerts: load them now.
  if (state.synced) loadAlerts();
})();
