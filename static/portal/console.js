/* Dispatcher console (docs/CONSOLE.md). Plain JavaScript, no framework.
 *
 * Data flow: open the websocket first and buffer what it sends, fetch the REST snapshot, then
 * apply the buffered and live deltas whose seq is newer than the snapshot's. A skipped seq is
 * waited for up to 2 s (publishers may interleave), then the snapshot is fetched again. A lost
 * socket is reopened with exponential backoff and jitter (1 s → 30 s), then re-synced.
 *
 * Cost model for thousands of vehicles: one small DOM marker per vehicle; a position change is
 * a setLatLng, the icon is rebuilt only when its look (status, heading bucket, selection)
 * changes; staleness is an opacity. The route list is re-rendered per changed row, in batches.
 */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("console-config").textContent);
  const GAP_WAIT_MS = 2000;
  const BACKOFF_MIN_MS = 1000;
  const BACKOFF_MAX_MS = 30000;
  const MOVING_KMH = 3;
  const RECENT_FIX_S = 5 * 60;
  const OPEN_STOP = new Set(["pending", "arrived"]);
  const ACTIVE_ROUTE = new Set(["planned", "in_progress"]);
  const STOP_COLOURS = {
    pending: "#0969da", arrived: "#8250df", completed: "#1a7f37",
    failed: "#cf222e", skipped: "#6e7781", cancelled: "#6e7781",
  };
  const STREET_STYLE = {
    motorway: 3, trunk: 3, primary: 2.5, secondary: 2, tertiary: 1.6,
  };

  const $ = (id) => document.getElementById(id);

  const state = {
    config,
    timeZone: config.organization.time_zone || "UTC",
    organization: config.organization,
    seq: 0,
    synced: false,
    snapshotAt: null,
    carriers: new Map(),
    hubs: new Map(),
    drivers: new Map(), // id -> {id, name}, when the snapshot lists drivers
    vehicles: new Map(), // id -> vehicle data (as in the snapshot, kept current by deltas)
    routes: new Map(), // id -> route summary
    openRouteId: null,
    openRoute: null, // GET /console/routes/<id>/
    openStopId: null,
    openVehicleId: null,
    filters: { carrier: "", hub: "", status: "", lateOnly: false },
    alerts: new Map(), // id -> alert (API representation), unresolved only
    selectedAlertId: null,
    alertStopId: null, // the selected alert's stop, ringed on the map
    alertSuggestions: null,
    alertAssignees: null,
    socket: { ws: null, status: "connecting", attempts: 0, reconnects: 0, timer: null },
    pending: new Map(), // seq -> message, waiting for a missing one
    buffer: [], // messages received while a snapshot is loading
    gapTimer: null,
    syncing: false,
    stats: { snapshots: 0, deltas: 0, gaps: 0, resyncs: 0, iconUpdates: 0 },
    streets: { mode: false, loads: 0, features: 0, tileErrors: 0, tilesLoaded: 0 },
  };

  // ---------------------------------------------------------------- formatting

  let timeFormat, dateTimeFormat;
  function setTimeZone(zone) {
    state.timeZone = zone || "UTC";
    timeFormat = new Intl.DateTimeFormat(undefined, {
      timeZone: state.timeZone, hour: "2-digit", minute: "2-digit", hourCycle: "h23",
    });
    dateTimeFormat = new Intl.DateTimeFormat(undefined, {
      timeZone: state.timeZone, day: "numeric", month: "short", hour: "2-digit",
      minute: "2-digit", hourCycle: "h23",
    });
  }
  setTimeZone(state.timeZone);

  function fmtTime(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    return Math.abs(Date.now() - d) > 20 * 3600 * 1000 ? dateTimeFormat.format(d) : timeFormat.format(d);
  }
  function fmtWindow(start, end) {
    if (!start && !end) return "—";
    return `${fmtTime(start)}–${fmtTime(end)}`;
  }
  function ageSeconds(iso) {
    return iso ? Math.max(0, (Date.now() - new Date(iso)) / 1000) : null;
  }
  function fmtAge(iso) {
    const s = ageSeconds(iso);
    if (s === null) return "no fix";
    if (s < 60) return `${Math.round(s)} s ago`;
    if (s < 3600) return `${Math.floor(s / 60)} min ago`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
    return `${Math.floor(s / 86400)} d ago`;
  }
  function esc(value) {
    return String(value ?? "").replace(/[&<>"']/g, (c) => ({
      "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
    })[c]);
  }
  function label(map, id, field) {
    const row = map.get(id);
    return row ? row[field] : "";
  }
  // Related rows arrive as ids (snapshot, deltas) or as small objects (stop details).
  function idOf(x) {
    return x != null && typeof x === "object" ? x.id : x;
  }
  function humanStatus(s) {
    return String(s || "").replace(/_/g, " ");
  }

  // Accent: the tenant's colour, with a text colour that keeps 4.5:1 contrast on it.
  function luminance(hex) {
    const c = hex.replace("#", "").match(/../g).map((h) => parseInt(h, 16) / 255)
      .map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4));
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  }
  function contrast(a, b) {
    const [l1, l2] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (l1 + 0.05) / (l2 + 0.05);
  }
  function applyBranding(org) {
    state.organization = { ...state.organization, ...org };
    $("org-name").textContent = org.name || "";
    const brand = org.brand_color;
    if (brand && /^#[0-9a-fA-F]{6}$/.test(brand)) {
      const root = $("console");
      root.style.setProperty("--accent", brand);
      root.style.setProperty("--accent-ink", contrast(brand, "#ffffff") >= 4.5 ? "#ffffff" : "#111111");
    }
  }

  // ---------------------------------------------------------------- HTTP

  function csrfToken() {
    const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (m) return decodeURIComponent(m[1]);
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }
  async function api(url, options = {}) {
    const init = { credentials: "same-origin", headers: { Accept: "application/json" }, ...options };
    if (options.body !== undefined) {
      init.headers = { ...init.headers, "Content-Type": "application/json", "X-CSRFToken": csrfToken() };
      init.body = JSON.stringify(options.body);
    }
    const response = await fetch(url, init);
    let body = null;
    try { body = await response.json(); } catch (_e) { body = null; }
    if (!response.ok) {
      const err = new Error(errorText(body, response.status));
      err.status = response.status;
      err.body = body;
      throw err;
    }
    return body;
  }
  function errorText(body, status) {
    if (!body) return `Request failed (HTTP ${status}).`;
    if (typeof body.detail === "string") return body.detail;
    if (body.detail && typeof body.detail === "object") {
      return Object.entries(body.detail).map(([k, v]) => `${k}: ${[].concat(v).join(" ")}`).join("; ");
    }
    if (body.error) return String(body.error);
    return Object.entries(body).map(([k, v]) => `${k}: ${[].concat(v).join(" ")}`).join("; ");
  }
  const urlFor = (name, id) => config.api[name].replace("{id}", encodeURIComponent(id));

  // ---------------------------------------------------------------- map

  const map = L.map("map", { zoomControl: true, preferCanvas: false })
    .setView(config.center, config.zoom);
  map.attributionControl.setPrefix(false);
  const streetsRenderer = L.canvas({ padding: 0.3 });
  const hubLayer = L.layerGroup().addTo(map);
  const vehicleLayer = L.layerGroup().addTo(map);
  const routeLayer = L.layerGroup().addTo(map);
  let streetsLayer = null;
  let tileLayer = null;
  const markers = new Map(); // vehicle id -> {marker, look, opacity}

  if (config.tileUrl) {
    tileLayer = L.tileLayer(config.tileUrl, { maxZoom: 19, attribution: config.tileAttribution });
    tileLayer.on("tileerror", () => {
      state.streets.tileErrors += 1;
      enableStreets();
      // Nothing ever loaded: the tile server is out of reach; stop asking it.
      if (state.streets.tileErrors >= 6 && state.streets.tilesLoaded === 0 && tileLayer) {
        map.removeLayer(tileLayer);
        tileLayer = null;
      }
    });
    tileLayer.on("tileload", () => { state.streets.tilesLoaded += 1; });
    tileLayer.addTo(map);
  } else {
    enableStreets();
  }

  function enableStreets() {
    if (state.streets.mode) return;
    state.streets.mode = true;
    map.attributionControl.addAttribution(config.tileAttribution);
    $("map-offline").hidden = false;
    map.on("moveend", scheduleStreets);
    loadStreets();
  }
  let streetsTimer = null;
  let streetsAbort = null;
  function scheduleStreets() {
    clearTimeout(streetsTimer);
    streetsTimer = setTimeout(loadStreets, 300);
  }
  async function loadStreets() {
    const b = map.getBounds();
    const bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => v.toFixed(5)).join(",");
    if (streetsAbort) streetsAbort.abort();
    streetsAbort = new AbortController();
    let data;
    try {
      data = await api(`${config.api.streets}?bbox=${bbox}&zoom=${map.getZoom()}`, { signal: streetsAbort.signal });
    } catch (err) {
      if (err.name !== "AbortError") console.warn("streets:", err.message);
      return;
    }
    const next = L.geoJSON(data, {
      renderer: streetsRenderer,
      interactive: false,
      style: (f) => ({
        color: "#9aa0a6", weight: STREET_STYLE[(f.properties || {}).class] || 1, opacity: 0.9,
      }),
    });
    next.addTo(map);
    next.bringToBack();
    if (streetsLayer) map.removeLayer(streetsLayer);
    streetsLayer = next;
    state.streets.loads += 1;
    state.streets.features = (data.features || []).length;
  }

  function vehicleStatus(v) {
    if (v.lat == null || v.fix_time == null) return "nofix";
    if (ageSeconds(v.fix_time) > RECENT_FIX_S) return "nofix";
    return (v.speed_kmh || 0) >= MOVING_KMH ? "moving" : "idle";
  }
  function staleOpacity(v) {
    const s = ageSeconds(v.fix_time);
    if (s === null || s < 120) return 1;
    if (s < 600) return 0.8;
    if (s < 1800) return 0.6;
    return 0.4;
  }
  function vehicleLook(v) {
    const heading = v.heading == null ? null : Math.round(v.heading / 15) * 15;
    const selected = state.openVehicleId === v.id || (v.route != null && v.route === state.openRouteId);
    return `${vehicleStatus(v)}|${heading}|${selected ? 1 : 0}`;
  }
  function vehicleIcon(v, look) {
    const [status, heading, selected] = look.split("|");
    const rot = heading === "null" ? 0 : Number(heading) + 135; // the tip is the bottom-left corner
    return L.divIcon({
      className: `ct-vehicle ${status}${heading === "null" ? " nohead" : ""}${selected === "1" ? " selected" : ""}`,
      html: `<span style="--rot:${rot}deg"></span>`,
      iconSize: [18, 18],
    });
  }
  // A changed look edits the marker's element in place (classes, rotation): rebuilding the
  // icon (setIcon) costs a new element and its event handlers per update.
  function restyleIcon(el, look) {
    if (!el) return;
    const [status, heading, selected] = look.split("|");
    el.classList.remove("moving", "idle", "nofix");
    el.classList.add(status);
    el.classList.toggle("nohead", heading === "null");
    el.classList.toggle("selected", selected === "1");
    const rot = heading === "null" ? 0 : Number(heading) + 135;
    el.firstChild.style.setProperty("--rot", `${rot}deg`);
  }
  function vehicleTitle(v) {
    return `${v.label || "Vehicle " + v.id} · ${humanStatus(vehicleStatus(v))} · ${fmtAge(v.fix_time)}`;
  }
  function syncMarker(v) {
    let entry = markers.get(v.id);
    if (v.lat == null || v.lon == null) {
      if (entry) { vehicleLayer.removeLayer(entry.marker); markers.delete(v.id); }
      return;
    }
    const look = vehicleLook(v);
    if (!entry) {
      const marker = L.marker([v.lat, v.lon], {
        icon: vehicleIcon(v, look), keyboard: false, title: vehicleTitle(v), riseOnHover: true,
      });
      marker.on("click", () => { flash(""); openVehicle(v.id); });
      entry = { marker, look, opacity: 1 };
      markers.set(v.id, entry);
      vehicleLayer.addLayer(marker);
      marker.getElement()?.setAttribute("data-vehicle-id", v.id);
    } else {
      const at = entry.marker.getLatLng();
      if (at.lat !== v.lat || at.lng !== v.lon) entry.marker.setLatLng([v.lat, v.lon]);
      if (entry.look !== look) {
        restyleIcon(entry.marker.getElement(), look);
        entry.look = look;
        state.stats.iconUpdates += 1;
      }
    }
    const opacity = staleOpacity(v);
    if (opacity !== entry.opacity) { entry.marker.setOpacity(opacity); entry.opacity = opacity; }
    const title = vehicleTitle(v);
    if (entry.title !== title) {
      const el = entry.marker.getElement();
      if (el) el.title = title;
      entry.title = title;
    }
  }
  function refreshAllMarkers() {
    for (const v of state.vehicles.values()) syncMarker(v);
    $("map-empty").hidden = markers.size > 0;
  }

  function drawHubs() {
    hubLayer.clearLayers();
    for (const h of state.hubs.values()) {
      if (h.lat == null) continue;
      L.marker([h.lat, h.lon], {
        icon: L.divIcon({ className: "ct-hub", iconSize: [14, 14] }), keyboard: false,
        title: `Hub ${h.code}: ${h.name}`,
      }).bindTooltip(`Hub ${esc(h.code)} · ${esc(h.name)}`).addTo(hubLayer);
    }
  }

  function stopLate(s) {
    if (typeof s.late === "boolean" && !OPEN_STOP.has(s.status)) return s.late;
    const eta = s.eta_latest || s.eta;
    if (OPEN_STOP.has(s.status) && eta && s.window_end) return new Date(eta) > new Date(s.window_end);
    return Boolean(s.late);
  }
  function stopPopup(s) {
    const late = stopLate(s);
    return `<strong>Stop ${esc(s.sequence)}</strong> · ${esc(humanStatus(s.status))}${late ? ' · <span class="late-text">LATE</span>' : ""}<br>
      ${esc(s.recipient || "")}${s.address ? " · " + esc(s.address) : ""}<br>
      ETA ${esc(fmtTime(s.eta))} (${esc(fmtWindow(s.eta_earliest, s.eta_latest))})<br>
      Promised ${esc(fmtWindow(s.window_start, s.window_end))}${stopFlags(s).map((f) => `<br><strong class="stop-flag">${esc(f.text)}</strong>`).join("")}`;
  }
  function drawOpenRoute() {
    routeLayer.clearLayers();
    const r = state.openRoute;
    if (!r) return;
    let path = r.path || [];
    let cut = Math.max(0, Math.min(r.done_until || 0, path.length - 1));
    if (path.length < 2) {
      // No planned geometry (not planned on the road network): join the stops in order.
      const stops = (r.stops || []).filter((s) => s.lat != null).sort((a, b) => a.sequence - b.sequence);
      path = stops.map((s) => [s.lat, s.lon]);
      cut = Math.max(0, stops.map((s) => !OPEN_STOP.has(s.status) && s.status !== "cancelled").lastIndexOf(true));
    }
    if (path.length > 1) {
      if (cut > 0) {
        L.polyline(path.slice(0, cut + 1), { color: "#57606a", weight: 5, opacity: 0.8, className: "route-done" })
          .addTo(routeLayer);
      }
      L.polyline(path.slice(cut), { color: "#0969da", weight: 5, opacity: 0.85, className: "route-remaining" })
        .addTo(routeLayer);
    }
    for (const s of r.stops || []) {
      if (s.lat == null) continue;
      const late = stopLate(s);
      const m = L.circleMarker([s.lat, s.lon], {
        radius: 7, weight: late ? 3 : 2, color: late ? "#a40e26" : "#ffffff",
        fillColor: STOP_COLOURS[s.status] || "#0969da", fillOpacity: 1,
        className: `ct-stop stop-${s.status}${late ? " late" : ""}`,
      }).bindPopup(stopPopup(s));
      m.on("click", () => openStop(s.id));
      m.addTo(routeLayer);
      for (const f of stopFlags(s)) {
        // Not colour only: a labelled badge next to the stop (console_customer.js says what).
        L.marker([s.lat, s.lon], {
          icon: L.divIcon({ className: `ct-stop-flag flag-${f.key}`, html: `<span>${esc(f.short)}</span>`, iconSize: null, iconAnchor: [-8, 22] }),
          keyboard: false, title: `Stop ${s.sequence}: ${f.text}`, alt: f.text,
        }).on("click", () => openStop(s.id)).addTo(routeLayer);
      }
      if (s.id === state.alertStopId) {
        // The selected alert's stop: a ring around it, not clickable.
        L.circleMarker([s.lat, s.lon], {
          radius: 14, weight: 4, color: "#bc4c00", fill: false, interactive: false,
          className: "ct-alert-focus",
        }).addTo(routeLayer);
      }
    }
  }

  // ---------------------------------------------------------------- route list

  const routeItems = new Map(); // id -> {li, key}
  let listTimer = null;
  function scheduleList() {
    if (listTimer) return;
    listTimer = setTimeout(() => { listTimer = null; renderRouteList(); }, 50);
  }
  function routeVisible(r) {
    const f = state.filters;
    if (f.carrier && String(r.carrier) !== f.carrier) return false;
    if (f.hub && String(r.hub) !== f.hub) return false;
    if (f.status && r.status !== f.status) return false;
    if (f.lateOnly && !(r.late_stops > 0)) return false;
    return true;
  }
  function driverName(row) {
    const d = row.driver;
    if (d == null) return "";
    if (typeof d === "object") return d.name || "";
    if (row.driver_name) return row.driver_name;
    if (typeof d === "number") return label(state.drivers, d, "name") || `Driver #${d}`;
    return String(d);
  }
  function routeKey(r) {
    return [r.code, r.status, r.carrier, r.stops_done, r.stops_total, r.late_stops, driverName(r),
      r.vehicle, r.next_eta, state.openRouteId === r.id].join("|");
  }
  function routeItemHtml(r) {
    const carrier = label(state.carriers, r.carrier, "name") || label(state.carriers, r.carrier, "code");
    const late = r.late_stops > 0 ? `<span class="badge late">${r.late_stops} late</span>` : "";
    return `<span class="code">${esc(r.code)}</span>
      <span><span class="badge status-${esc(r.status)}">${esc(humanStatus(r.status))}</span> ${late}</span>
      <span class="meta"><span class="progress" data-progress>${r.stops_done}/${r.stops_total}</span> stops
        · ${esc(carrier)}${driverName(r) ? " · " + esc(driverName(r)) : ""}
        · <span data-age="${esc(r.last_fix_time || "")}">${esc(fmtAge(r.last_fix_time))}</span></span>`;
  }
  function renderRouteList() {
    const list = $("route-list");
    const sorted = [...state.routes.values()].sort((a, b) => String(a.code).localeCompare(String(b.code), undefined, { numeric: true }));
    let shown = 0;
    const seen = new Set();
    let previous = null;
    // First render (thousands of rows): build off-document, attach once.
    const parent = routeItems.size === 0 ? document.createDocumentFragment() : list;
    for (const r of sorted) {
      seen.add(r.id);
      let item = routeItems.get(r.id);
      if (!item) {
        const li = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button";
        button.className = "route-item";
        button.dataset.routeId = r.id;
        li.appendChild(button);
        item = { li, button, key: null };
        routeItems.set(r.id, item);
      }
      const key = routeKey(r);
      if (item.key !== key) {
        item.button.innerHTML = routeItemHtml(r);
        item.button.setAttribute("aria-current", state.openRouteId === r.id ? "true" : "false");
        item.button.setAttribute("aria-label",
          `Route ${r.code}, ${humanStatus(r.status)}, ${r.stops_done} of ${r.stops_total} stops done${r.late_stops ? ", " + r.late_stops + " late" : ""}`);
        item.key = key;
      }
      const visible = routeVisible(r);
      item.li.hidden = !visible;
      if (visible) shown += 1;
      // Keep DOM order equal to the sorted order without rebuilding the list.
      const expectedNext = previous ? previous.nextSibling : parent.firstChild;
      if (expectedNext !== item.li) parent.insertBefore(item.li, expectedNext);
      previous = item.li;
    }
    if (parent !== list) list.appendChild(parent);
    for (const [id, item] of routeItems) {
      if (!seen.has(id)) { item.li.remove(); routeItems.delete(id); }
    }
    const total = state.routes.size;
    $("route-count").textContent = total ? `(${shown} of ${total})` : "";
    const empty = $("routes-empty");
    empty.hidden = shown > 0;
    empty.textContent = total === 0 ? "No routes today." : "No routes match these filters.";
  }
  function refreshAges() {
    for (const el of document.querySelectorAll("#console [data-age]")) {
      el.textContent = fmtAge(el.dataset.age || null);
    }
    // Staleness fades with time even without new pings.
    for (const v of state.vehicles.values()) syncMarker(v);
  }

  $("route-list").addEventListener("click", (e) => {
    const button = e.target.closest(".route-item");
    if (button) { flash(""); openRoute(Number(button.dataset.routeId)); }
  });
  $("route-list").addEventListener("keydown", (e) => {
    if (e.key !== "ArrowDown" && e.key !== "ArrowUp") return;
    const buttons = [...document.querySelectorAll("#route-list li:not([hidden]) .route-item")];
    const i = buttons.indexOf(document.activeElement);
    if (i < 0) return;
    const next = buttons[i + (e.key === "ArrowDown" ? 1 : -1)];
    if (next) { next.focus(); e.preventDefault(); }
  });

  function fillFilterOptions() {
    fillSelect($("filter-carrier"), "All carriers", [...state.carriers.values()].map((c) => [c.id, c.name || c.code]));
    fillSelect($("filter-hub"), "All hubs", [...state.hubs.values()].map((h) => [h.id, `${h.code} · ${h.name}`]));
  }
  function fillSelect(select, first, options) {
    const current = select.value;
    select.innerHTML = `<option value="">${esc(first)}</option>` +
      options.map(([v, t]) => `<option value="${esc(v)}">${esc(t)}</option>`).join("");
    if (options.some(([v]) => String(v) === current)) select.value = current;
  }
  for (const [id, key] of [["filter-carrier", "carrier"], ["filter-hub", "hub"], ["filter-status", "status"]]) {
    $(id).addEventListener("change", (e) => { state.filters[key] = e.target.value; renderRouteList(); });
  }
  $("filter-late").addEventListener("change", (e) => { state.filters.lateOnly = e.target.checked; renderRouteList(); });

  // ---------------------------------------------------------------- extensions

  // Small modules loaded after this file (console_alerts.js, console_customer.js) add delta
  // handlers, what a re-sync reloads (`resync`), flags on a stop (list row, map badge, popup)
  // and sections in its pane, through ctConsole.use().
  const extensions = [];
  function stopFlags(s) {
    return extensions.flatMap((x) => (x.stopFlags ? x.stopFlags(s) : []));
  }
  function extensionHtml(hook, s) {
    return extensions.map((x) => (x[hook] ? x[hook](s) : "")).join("");
  }
  function use(extension) {
    extensions.push(extension);
    Object.assign(handlers, extension.handlers || {});
  }

  // ---------------------------------------------------------------- details pane

  function details(html) { $("details-body").innerHTML = html; }
  function flash(text) {
    const el = $("flash");
    el.textContent = text || "";
    el.hidden = !text;
  }
  function dl(rows) {
    return `<dl>${rows.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join("")}</dl>`;
  }
  function vehicleLabel(id) {
    const v = state.vehicles.get(id);
    return v ? v.label : id == null ? "—" : `#${id}`;
  }

  let routeRequest = 0;
  async function openRoute(id, { focusStop = null, fit = true } = {}) {
    const previousVehicle = state.openVehicleId;
    state.openRouteId = id;
    state.openVehicleId = null;
    state.openStopId = focusStop;
    const ticket = ++routeRequest;
    scheduleList();
    renderRouteDetails();
    let data;
    try {
      data = await api(urlFor("route", id));
    } catch (err) {
      if (ticket === routeRequest) details(`<p class="message error" role="alert">${esc(err.message)}</p>`);
      return;
    }
    if (ticket !== routeRequest) return;
    state.openRoute = data;
    mergeRoute(data);
    drawOpenRoute();
    refreshVehiclesOf(previousVehicle);
    if (fit) {
      const pts = [...(data.path || []), ...(data.stops || []).filter((s) => s.lat != null).map((s) => [s.lat, s.lon])];
      if (pts.length) map.fitBounds(L.latLngBounds(pts), { padding: [30, 30], maxZoom: 16 });
    }
    if (focusStop) openStop(focusStop); else renderRouteDetails();
  }
  function refreshVehiclesOf(previousVehicle) {
    for (const v of state.vehicles.values()) {
      if (v.id === previousVehicle || v.route != null) syncMarker(v);
    }
  }
  function renderRouteDetails() {
    const summary = state.routes.get(state.openRouteId);
    const r = state.openRoute && state.openRoute.id === state.openRouteId ? state.openRoute : null;
    if (!summary && !r) return;
    const s = { ...(summary || {}), ...(r ? { stops: r.stops } : {}) };
    const stops = (s.stops || []).map((st) => `<li><button type="button" class="stop-link" data-stop-id="${st.id}">
        ${esc(st.sequence)}. ${esc(st.recipient || st.address || "Stop " + st.id)} · ${esc(humanStatus(st.status))}${stopLate(st) ? ' · <span class="late-text">late</span>' : ""}${stopFlags(st).map((f) => ` · <span class="stop-flag flag-${esc(f.key)}">${esc(f.text)}</span>`).join("")}</button></li>`).join("");
    details(`<h3 id="route-title">Route ${esc(s.code)}</h3>` + dl([
      ["Status", esc(humanStatus(s.status))],
      ["Progress", `<span data-route-progress>${s.stops_done}/${s.stops_total}</span> stops`],
      ["Late stops", esc(s.late_stops ?? 0)],
      ["Carrier", esc(label(state.carriers, s.carrier, "name"))],
      ["Driver", esc(driverName(s) || "—")],
      ["Vehicle", esc(vehicleLabel(s.vehicle))],
      ["Next ETA", esc(fmtTime(s.next_eta))],
      ["Last fix", `<span data-age="${esc(s.last_fix_time || "")}">${esc(fmtAge(s.last_fix_time))}</span>`],
    ]) + (r ? `<h3>Stops</h3><ol class="stop-list">${stops || '<li class="empty">No stops.</li>'}</ol>` : '<p class="empty">Loading…</p>'));
  }
  $("details-body").addEventListener("click", (e) => {
    const stop = e.target.closest("[data-stop-id]");
    if (stop) openStop(Number(stop.dataset.stopId));
    const route = e.target.closest("[data-open-route]");
    if (route) openRoute(Number(route.dataset.openRoute));
  });

  function openVehicle(id) {
    const previous = state.openVehicleId;
    state.openVehicleId = id;
    state.openStopId = null;
    const v = state.vehicles.get(id);
    if (previous != null && state.vehicles.has(previous)) syncMarker(state.vehicles.get(previous));
    if (v) syncMarker(v);
    renderVehicleDetails();
    if (v && v.route != null && v.route !== state.openRouteId && state.routes.has(v.route)) {
      // Show the vehicle's route on the map too, but keep the vehicle in the pane.
      openRouteQuietly(v.route);
    }
  }
  async function openRouteQuietly(routeId) {
    state.openRouteId = routeId;
    const ticket = ++routeRequest;
    scheduleList();
    try {
      const data = await api(urlFor("route", routeId));
      if (ticket !== routeRequest) return;
      state.openRoute = data;
      mergeRoute(data);
      drawOpenRoute();
    } catch (_e) { /* the vehicle pane stays useful without its route */ }
  }
  function renderVehicleDetails() {
    const v = state.vehicles.get(state.openVehicleId);
    if (!v) return;
    const route = state.routes.get(v.route);
    details(`<h3 id="vehicle-title">Vehicle ${esc(v.label)}</h3>` + dl([
      ["Status", esc(humanStatus(vehicleStatus(v)))],
      ["Driver", esc(driverName(v) || "—")],
      ["Carrier", esc(label(state.carriers, v.carrier, "name") || "—")],
      ["Route", route ? `<button type="button" class="stop-link" data-open-route="${route.id}">${esc(route.code)}</button>` : "—"],
      ["Speed", v.speed_kmh == null ? "—" : `${Math.round(v.speed_kmh)} km/h`],
      ["Heading", v.heading == null ? "—" : `${Math.round(v.heading)}°`],
      ["Battery", v.battery == null ? "—" : `${Math.round(v.battery)} %`],
      ["Last fix", `${esc(fmtTime(v.fix_time))} (<span data-age="${esc(v.fix_time || "")}">${esc(fmtAge(v.fix_time))}</span>)`],
      ["Position", v.lat == null ? "never reported" : `<span data-position>${Number(v.lat).toFixed(5)}, ${Number(v.lon).toFixed(5)}</span>`],
    ]));
  }

  let stopRequest = 0;
  async function openStop(id) {
    state.openStopId = id;
    state.openVehicleId = null;
    const ticket = ++stopRequest;
    let s;
    try {
      s = await api(urlFor("stop", id));
    } catch (err) {
      if (ticket === stopRequest) details(`<p class="message error" role="alert">${esc(err.message)}</p>`);
      return;
    }
    if (ticket !== stopRequest) return;
    state.openStop = s;
    const routeId = idOf(s.route);
    if (routeId != null && routeId !== state.openRouteId) {
      // Opened from search or elsewhere: show its route too (without re-opening the stop).
      openRouteQuietly(routeId);
    }
    renderStopDetails(s);
  }
  function renderStopDetails(s) {
    const late = stopLate(s);
    const shipments = (s.shipments || []).map((sh) => `<li><strong>${esc(sh.reference)}</strong> · ${esc(sh.barcode)} · ${esc(humanStatus(sh.status))}</li>`).join("");
    const timeline = (s.timeline || []).map((t) => `<li><time datetime="${esc(t.at)}">${esc(fmtTime(t.at))}</time>${esc(t.kind)}: ${esc(t.text)}${t.actor ? " · " + esc(t.actor) : ""}</li>`).join("");
    const proofs = (s.proofs || []).map((p) => {
      const imgs = [p.photo_url && `<a href="${esc(p.photo_url)}" target="_blank" rel="noopener"><img src="${esc(p.photo_url)}" alt="Delivery photo${p.recipient_name ? " (received by " + esc(p.recipient_name) + ")" : ""}"></a>`,
        p.signature_url && `<a href="${esc(p.signature_url)}" target="_blank" rel="noopener"><img src="${esc(p.signature_url)}" alt="Signature"></a>`].filter(Boolean).join("");
      const what = p.outcome === "attempt_failed" ? ` · Failed attempt: ${esc(p.failure_reason)}` : (p.left_at ? " · " + esc(p.left_at) : "");
      return `<figure>${imgs}<figcaption>${esc(fmtTime(p.captured_at))}${p.recipient_name ? " · " + esc(p.recipient_name) : ""}${what}</figcaption></figure>`;
    }).join("");
    const routeId = idOf(s.route);
    const routeSummary = state.routes.get(routeId);
    const routeCode = (s.route && s.route.code) || (routeSummary ? routeSummary.code : routeId);
    const carrier = s.carrier && typeof s.carrier === "object" ? s.carrier.name
      : label(state.carriers, s.carrier, "name");
    details(`<h3 id="stop-title">Stop ${esc(s.sequence)} of route ${esc(routeCode)}</h3>` + extensionHtml("stopBanner", s) + dl([
      ["Status", `${esc(humanStatus(s.status))}${late ? ' · <span class="late-text">LATE</span>' : ""}`],
      ["Recipient", esc(s.recipient || "—")],
      ["Address", esc(s.address || "—")],
      ["ETA", `${esc(fmtTime(s.eta))} (${esc(fmtWindow(s.eta_earliest, s.eta_latest))})`],
      ["Promised", esc(fmtWindow(s.window_start, s.window_end))],
      ["Carrier", esc(carrier || "—")],
      ["Driver", esc(driverName(s) || "—")],
      ["Vehicle", esc(typeof s.vehicle === "object" && s.vehicle ? s.vehicle.label : vehicleLabel(s.vehicle))],
    ]) + extensionHtml("stopSections", s) + `<h3>Shipments</h3><ul class="shipments">${shipments || '<li class="empty">None.</li>'}</ul>
      <h3>Timeline</h3><ol class="timeline">${timeline || '<li class="empty">No scans or custody entries yet.</li>'}</ol>
      <h3>Proof of delivery</h3><div class="proofs">${proofs || '<p class="empty">No proof of delivery.</p>'}</div>
      ${reassignForm(s)}`);
    const form = $("reassign-form");
    if (form) form.addEventListener("submit", (e) => { e.preventDefault(); reassign(s); });
    for (const x of extensions) if (x.stopShown) x.stopShown(s);
  }
  function reassignForm(s) {
    if (!config.canReassign) return "";
    if (!OPEN_STOP.has(s.status) || s.status === "arrived") {
      return `<p class="help">Only pending stops can be reassigned.</p>`;
    }
    const targets = [...state.routes.values()]
      .filter((r) => r.id !== idOf(s.route) && ACTIVE_ROUTE.has(r.status))
      .sort((a, b) => String(a.code).localeCompare(String(b.code), undefined, { numeric: true }));
    if (!targets.length) return `<p class="help">No other active route to move this stop to.</p>`;
    return `<form id="reassign-form" class="reassign">
        <strong>Reassign this stop</strong>
        <label for="reassign-route">Move to route</label>
        <select id="reassign-route" required>${targets.map((r) => `<option value="${r.id}">${esc(r.code)} · ${esc(label(state.carriers, r.carrier, "name"))} (${r.stops_done}/${r.stops_total})</option>`).join("")}</select>
        <label for="reassign-position">Position among its open stops (optional)</label>
        <input id="reassign-position" type="number" min="1" step="1" inputmode="numeric">
        <button type="submit">Reassign</button>
        <div id="reassign-message" role="status" aria-live="polite"></div>
      </form>`;
  }
  async function reassign(s) {
    const target = Number($("reassign-route").value);
    const positionText = $("reassign-position").value.trim();
    const body = { route: target };
    if (positionText) body.position = Number(positionText);
    const message = $("reassign-message");
    const button = $("reassign-form").querySelector("button");
    button.disabled = true;
    message.className = "message";
    message.textContent = "Reassigning…";
    try {
      const result = await api(urlFor("reassign", s.id), { method: "POST", body });
      for (const r of [result.from_route, result.to_route]) if (r) mergeRoute(r);
      scheduleList();
      const to = result.to_route || {};
      const moved = result.stop || {};
      message.className = "message ok";
      message.textContent = `Stop moved to route ${to.code || target}${moved.sequence != null ? ` as stop ${moved.sequence}` : ""}.`;
      state.lastReassign = result;
      // The stop now belongs to the target route: show that route; the message stays above.
      flash(message.textContent);
      await openRoute(target, { fit: false });
    } catch (err) {
      message.className = "message error";
      message.setAttribute("role", "alert");
      message.textContent = err.message;
      button.disabled = false;
    }
  }

  // ---------------------------------------------------------------- search

  $("search-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const q = $("search-input").value.trim();
    const out = $("search-results");
    if (q.length < 2) { out.innerHTML = `<p class="message error">Type at least 2 characters.</p>`; return; }
    out.innerHTML = `<p class="empty">Searching…</p>`;
    let data;
    try {
      data = await api(`${config.api.search}?q=${encodeURIComponent(q)}`);
    } catch (err) {
      out.innerHTML = `<p class="message error" role="alert">${esc(err.message)}</p>`;
      return;
    }
    const results = data.results || [];
    if (!results.length) { out.innerHTML = `<p class="empty">No shipment matches “${esc(q)}”.</p>`; return; }
    out.innerHTML = `<ul>${results.map((r, i) => `<li><button type="button" class="stop-link" data-result="${i}">
        ${esc(r.shipment.reference)} · ${esc(r.shipment.barcode)} · ${esc(humanStatus(r.shipment.status))}${r.stop ? "" : " (no stop)"}</button></li>`).join("")}</ul>`;
    out.onclick = (ev) => {
      const b = ev.target.closest("[data-result]");
      if (b) openResult(results[Number(b.dataset.result)]);
    };
    if (results.length === 1 || results[0].shipment.reference.toLowerCase() === q.toLowerCase()
        || results[0].shipment.barcode.toLowerCase() === q.toLowerCase()) {
      openResult(results[0]);
    }
  });
  function openResult(r) {
    if (r.route != null && r.stop != null) openRoute(r.route, { focusStop: r.stop });
    else if (r.stop != null) openStop(r.stop);
    else details(`<p class="empty">Shipment ${esc(r.shipment.reference)} is not on a route.</p>`);
  }

  // ---------------------------------------------------------------- state from the server

  function mergeRoute(r) {
    if (r == null || r.id == null) return;
    const known = state.routes.get(r.id) || {};
    const merged = { ...known };
    for (const key of ["id", "code", "status", "date", "carrier", "hub", "vehicle", "driver",
      "stops_total", "stops_done", "late_stops", "next_eta", "last_fix_time", "driver_name"]) {
      if (key in r) merged[key] = r[key];
    }
    // route.changed carries the driver's id only: keep the name learnt from the snapshot.
    if (merged.driver_name && merged.driver != null) {
      state.drivers.set(merged.driver, { id: merged.driver, name: merged.driver_name });
    }
    if ("driver" in r && !("driver_name" in r) && known.driver !== r.driver) {
      merged.driver_name = label(state.drivers, r.driver, "name") || null;
    }
    state.routes.set(r.id, merged);
  }
  function applySnapshot(snap) {
    state.stats.snapshots += 1;
    state.snapshotAt = snap.generated_at;
    state.seq = snap.seq || 0;
    if (snap.organization) {
      applyBranding(snap.organization);
      if (snap.organization.time_zone && snap.organization.time_zone !== state.timeZone) setTimeZone(snap.organization.time_zone);
    }
    state.carriers = new Map((snap.carriers || []).map((c) => [c.id, c]));
    state.hubs = new Map((snap.hubs || []).map((h) => [h.id, h]));
    state.drivers = new Map((snap.drivers || []).map((d) => [d.id, d]));
    for (const v of snap.vehicles || []) {
      if (v.driver != null && v.driver_name) state.drivers.set(v.driver, { id: v.driver, name: v.driver_name });
    }
    state.routes = new Map();
    for (const r of snap.routes || []) mergeRoute(r);
    const fresh = new Map((snap.vehicles || []).map((v) => [v.id, v]));
    for (const id of [...markers.keys()]) {
      if (!fresh.has(id)) { vehicleLayer.removeLayer(markers.get(id).marker); markers.delete(id); }
    }
    state.vehicles = fresh;
    fillFilterOptions();
    drawHubs();
    refreshAllMarkers();
    renderRouteList();
    if (!state.fitted) {
      state.fitted = true;
      const pts = [...markers.values()].map((m) => m.marker.getLatLng())
        .concat([...state.hubs.values()].filter((h) => h.lat != null).map((h) => L.latLng(h.lat, h.lon)));
      if (pts.length) map.fitBounds(L.latLngBounds(pts), { padding: [40, 40], maxZoom: 14 });
    }
    if (state.openRouteId != null && state.routes.has(state.openRouteId)) scheduleRouteRefresh();
  }

  let routeRefreshTimer = null;
  function scheduleRouteRefresh() {
    clearTimeout(routeRefreshTimer);
    routeRefreshTimer = setTimeout(async () => {
      const id = state.openRouteId;
      if (id == null) return;
      try {
        const data = await api(urlFor("route", id));
        if (id !== state.openRouteId) return;
        state.openRoute = data;
        mergeRoute(data);
        drawOpenRoute();
        if (state.openStopId == null && state.openVehicleId == null) renderRouteDetails();
      } catch (_e) { /* next delta or resync tries again */ }
    }, 250);
  }

  // ---------------------------------------------------------------- deltas

  // Positions are drawn once per animation frame: a burst of moves costs one layout.
  const movedVehicles = new Set();
  let movedScheduled = false;
  function scheduleMovedFlush() {
    if (movedScheduled) return;
    movedScheduled = true;
    const run = () => { movedScheduled = false; flushMoved(); };
    // Hidden tabs get no animation frames; keep the map current there too, less often.
    if (document.hidden) setTimeout(run, 500); else requestAnimationFrame(run);
  }
  function flushMoved() {
    for (const id of movedVehicles) {
      const v = state.vehicles.get(id);
      if (v) drawMoved(v);
    }
    movedVehicles.clear();
    $("map-empty").hidden = markers.size > 0;
  }
  function drawMoved(v) {
    syncMarker(v);
    if (v.route != null && state.routes.has(v.route)) {
      const r = state.routes.get(v.route);
      if (!r.last_fix_time || v.fix_time > r.last_fix_time) {
        r.last_fix_time = v.fix_time;
        const item = routeItems.get(v.route);
        const age = item && item.li.querySelector("[data-age]");
        if (age) { age.dataset.age = v.fix_time; age.textContent = fmtAge(v.fix_time); }
      }
    }
    if (state.openVehicleId === v.id) renderVehicleDetails();
  }

  function vehicleMoved(d) {
    const v = state.vehicles.get(d.id) || { id: d.id, label: `Vehicle ${d.id}` };
    Object.assign(v, d);
    state.vehicles.set(d.id, v);
    movedVehicles.add(d.id);
  }
  const handlers = {
    // Positions arrive batched: every vehicle that moved in one server tick (docs/REALTIME.md).
    "vehicles.moved"(d) {
      for (const item of d.items || []) vehicleMoved(item);
      scheduleMovedFlush();
    },
    "vehicle.moved"(d) { // one vehicle (the message before batching)
      vehicleMoved(d);
      scheduleMovedFlush();
    },
    "stop.status"(d) {
      updateOpenStop(d.id, { status: d.status, actual_arrival: d.actual_arrival, actual_departure: d.actual_departure });
      if (state.openStopId === d.id) openStop(d.id);
    },
    "stop.eta"(d) {
      updateOpenStop(d.id, { eta: d.eta, eta_earliest: d.earliest, eta_latest: d.latest });
    },
    "route.changed"(d) {
      const before = state.routes.get(d.id);
      mergeRoute(d);
      scheduleList();
      if (d.id === state.openRouteId) {
        const r = state.openRoute;
        const stopsChanged = !r || !before || before.stops_total !== d.stops_total || before.stops_done !== d.stops_done;
        if (stopsChanged) scheduleRouteRefresh();
        else if (state.openStopId == null && state.openVehicleId == null) renderRouteDetails();
      }
    },
  };
  function updateOpenStop(id, fields) {
    const r = state.openRoute;
    if (!r || !r.stops) return;
    const s = r.stops.find((x) => x.id === id);
    if (!s) return;
    Object.assign(s, fields);
    drawOpenRoute();
    if (state.openStopId == null && state.openVehicleId == null) renderRouteDetails();
  }
  function applyDelta(msg) {
    const handler = handlers[msg.type];
    state.stats.deltas += 1;
    if (handler) {
      try { handler(msg.data || {}); } catch (err) { console.error("delta", msg.type, err); }
    }
  }
  // In-order delivery: apply seq+1, hold anything later until the gap fills or 2 s pass.
  function receive(msg) {
    if (typeof msg.seq !== "number") { applyDelta(msg); return; }
    if (msg.seq <= state.seq) return; // already in the snapshot or seen
    if (msg.seq === state.seq + 1) {
      applyDelta(msg);
      state.seq = msg.seq;
      while (state.pending.has(state.seq + 1)) {
        const next = state.pending.get(state.seq + 1);
        state.pending.delete(state.seq + 1);
        applyDelta(next);
        state.seq = next.seq;
      }
      for (const seq of [...state.pending.keys()]) if (seq <= state.seq) state.pending.delete(seq);
      if (state.pending.size === 0 && state.gapTimer) { clearTimeout(state.gapTimer); state.gapTimer = null; }
      return;
    }
    state.pending.set(msg.seq, msg);
    if (!state.gapTimer) {
      state.stats.gaps += 1;
      state.gapTimer = setTimeout(() => { state.gapTimer = null; if (state.pending.size) resync("gap"); }, GAP_WAIT_MS);
    }
  }

  async function resync(reason) {
    if (state.syncing) return;
    state.syncing = true;
    state.synced = false;
    state.stats.resyncs += 1;
    state.resyncReason = reason;
    // Anything held for a gap is replayed after the snapshot (those it already covers are dropped).
    state.buffer.push(...state.pending.values());
    state.pending.clear();
    if (state.gapTimer) { clearTimeout(state.gapTimer); state.gapTimer = null; }
    let snap;
    try {
      snap = await api(config.api.snapshot);
    } catch (err) {
      state.syncing = false;
      if (err.status === 401 || err.status === 403) { setStatus("closed", "Signed out: reload the page to log in"); return; }
      // The socket may still be up: try again soon, backing off like a reconnect.
      setStatus("reconnecting", "Reconnecting…");
      state.socket.timer = setTimeout(() => resync("retry"), backoffDelay(state.socket.attempts++));
      return;
    }
    applySnapshot(snap);
    // What extensions hold (the open alerts) next, before the buffered deltas (newer than both).
    for (const x of extensions) if (x.resync) await x.resync();
    const buffered = state.buffer.sort((a, b) => a.seq - b.seq);
    state.buffer = [];
    state.syncing = false;
    for (const msg of buffered) receive(msg);
    state.synced = true;
    if (state.socket.ws && state.socket.ws.readyState === WebSocket.OPEN) {
      state.socket.attempts = 0;
      setStatus("live", "Live");
    }
  }

  // ---------------------------------------------------------------- socket

  function setStatus(kind, text) {
    state.socket.status = kind;
    const el = $("live-status");
    el.dataset.state = kind;
    el.textContent = text;
  }
  function backoffDelay(attempt) {
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt);
    return Math.max(BACKOFF_MIN_MS, ceiling / 2 + Math.random() * (ceiling / 2));
  }
  let keepAlive = null;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}${config.socketPath}`);
    state.socket.ws = ws;
    ws.onopen = () => {
      clearInterval(keepAlive);
      keepAlive = setInterval(() => { if (ws.readyState === WebSocket.OPEN) ws.send('{"type":"ping"}'); }, 25000);
      resync("connect");
    };
    ws.onmessage = (event) => {
      let msg;
      try { msg = JSON.parse(event.data); } catch (_e) { return; }
      if (msg.type === "hello" || msg.type === "pong") { state.hello = msg.data || {}; return; }
      if (state.syncing) state.buffer.push(msg); else receive(msg);
    };
    ws.onclose = (event) => {
      clearInterval(keepAlive);
      if (state.socket.ws !== ws) return;
      state.synced = false;
      if (event.code === 4401 || event.code === 4403) {
        setStatus("closed", event.code === 4401 ? "Signed out: reload the page to log in" : "Access revoked");
        return;
      }
      setStatus("reconnecting", "Reconnecting…");
      const delay = backoffDelay(state.socket.attempts++);
      state.socket.reconnects += 1;
      state.socket.nextDelayMs = delay;
      clearTimeout(state.socket.timer);
      state.socket.timer = setTimeout(connect, delay);
    };
  }

  // ---------------------------------------------------------------- start

  setInterval(refreshAges, 5000);
  renderRouteList();
  connect();

  window.ctConsole = {
    state,
    config,
    use,
    // What extensions build on (console_customer.js).
    kit: { api, urlFor, esc, fmtTime, fmtWindow, dl, flash, openStop, openRoute, openVehicle,
      updateOpenStop, scheduleRouteRefresh, drawOpenRoute, renderRouteDetails, humanStatus,
      scheduleList, mergeRoute },
    map,
    markers,
    markerCount: () => markers.size,
    markerLatLng: (id) => { const m = markers.get(id); return m ? m.marker.getLatLng() : null; },
    visibleRouteIds: () => [...document.querySelectorAll("#route-list li:not([hidden]) .route-item")].map((b) => Number(b.dataset.routeId)),
    openRoute,
    openStop,
    openVehicle,
    resync,
    receive,
    applySnapshot, // benchmarks: render a synthetic snapshot (bench/console_page.py)
    dropSocket: () => state.socket.ws && state.socket.ws.close(),
    backoffDelay,
  };
})();
