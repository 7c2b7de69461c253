/* The customer tracking page, live (docs/TRACKING_PAGE.md). The page is complete without this
   script (server-rendered); the script keeps it current: a websocket scoped to this one
   shipment, polling the JSON twin when the socket is down, and the map (Leaflet, loaded only
   when the driver may be shown). No inline code: the page's CSP allows scripts from this site
   only. */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("track-config").textContent);
  var state = JSON.parse(document.getElementById("track-state").textContent);
  var liveStatus = document.getElementById("live-status");
  var mapSection = document.getElementById("map-section");
  var mapElement = document.getElementById("map");
  var map = null, driverMarker = null, homeMarker = null, leaflet = null;
  var socket = null, pollTimer = null, retryDelay = 1000, closedForGood = false;

  function get(object, path) {
    return path.split(".").reduce(function (value, key) {
      return value == null ? null : value[key];
    }, object);
  }

  // -------------------------------------------------------------------------------------------
  // Rendering a new state
  // -------------------------------------------------------------------------------------------

  function needsReload(next) {
    // Which forms and sections the page has depends on the status: the server draws them.
    return next.status !== state.status || !!next.pod !== !!state.pod ||
      !!next.failure !== !!state.failure;
  }

  function renderTimeline(steps) {
    var list = document.getElementById("timeline");
    if (!list) return;
    var items = steps.map(function (step) {
      var item = document.createElement("li");
      item.className = "step step-" + step.state;
      if (step.state === "current") item.setAttribute("aria-current", "step");
      var label = document.createElement("span");
      label.className = "step-label";
      label.textContent = step.label;
      item.appendChild(label);
      if (step.at) {
        var at = document.createElement("span");
        at.className = "step-at";
        at.textContent = step.at;
        item.appendChild(at);
      }
      return item;
    });
    list.replaceChildren.apply(list, items);
  }

  function apply(next) {
    if (needsReload(next)) {
      window.location.reload();
      return;
    }
    state = next;
    document.querySelectorAll("[data-bind]").forEach(function (element) {
      var value = get(next, element.getAttribute("data-bind"));
      element.textContent = value == null ? "" : String(value);
      if (element.tagName === "P") element.hidden = !value;
    });
    var day = document.querySelector("[data-bind='eta.day']");
    if (day && day.textContent) {
      day.textContent = day.textContent.charAt(0).toUpperCase() + day.textContent.slice(1);
    }
    document.getElementById("eta").hidden = !next.eta;
    document.getElementById("driver").hidden = !next.driver;
    renderTimeline(next.timeline);
    if (next.live && next.vehicle) {
      showMap(next);
    } else {
      hideMap();
    }
  }

  // -------------------------------------------------------------------------------------------
  // The map: only while the driver may be shown (the server decides: state.live)
  // -------------------------------------------------------------------------------------------

  function loadLeaflet() {
    if (leaflet) return leaflet;
    leaflet = new Promise(function (resolve, reject) {
      var css = document.createElement("link");
      css.rel = "stylesheet";
      css.href = config.leafletCss;
      document.head.appendChild(css);
      var script = document.createElement("script");
      script.src = config.leafletJs;
      script.onload = function () { resolve(window.L); };
      script.onerror = reject;
      document.head.appendChild(script);
    });
    return leaflet;
  }

  function markDom(vehicle) {
    // For people with screen readers and for tests: where the driver marker is.
    mapElement.setAttribute("data-lat", vehicle.lat);
    mapElement.setAttribute("data-lon", vehicle.lon);
  }

  function showMap(current) {
    mapSection.hidden = false;
    var mapText = document.getElementById("map-text");
    if (mapText) mapText.textContent = current.stops_before_text || "";
    markDom(current.vehicle);
    loadLeaflet().then(function (L) {
      var driverAt = [state.vehicle.lat, state.vehicle.lon];
      if (!map) {
        map = L.map(mapElement, { attributionControl: false, zoomControl: true });
        if (config.tileUrl) {
          L.tileLayer(config.tileUrl, { maxZoom: 19 }).addTo(map);
        }
        driverMarker = L.marker(driverAt, {
          icon: L.divIcon({ className: "ct-driver", iconSize: [22, 22] }),
          title: config.labels.driver, alt: config.labels.driver, keyboard: false,
        }).addTo(map);
        if (state.destination) {
          homeMarker = L.marker([state.destination.lat, state.destination.lon], {
            icon: L.divIcon({ className: "ct-home", iconSize: [18, 18] }),
            title: config.labels.destination, alt: config.labels.destination, keyboard: false,
          }).addTo(map);
        }
        fit();
      } else {
        driverMarker.setLatLng(driverAt);
      }
    }).catch(function () { /* the text above still says everything */ });
  }

  function fit() {
    if (!map) return;
    var points = [driverMarker.getLatLng()];
    if (homeMarker) points.push(homeMarker.getLatLng());
    if (points.length > 1) {
      map.fitBounds(points, { padding: [30, 30], maxZoom: 16 });
    } else {
      map.setView(points[0], 15);
    }
  }

  function hideMap() {
    mapSection.hidden = true;
    mapElement.removeAttribute("data-lat");
    mapElement.removeAttribute("data-lon");
    if (map) {
      map.remove();
      map = driverMarker = homeMarker = null;
    }
  }

  function moveVehicle(vehicle) {
    if (!state.live) return; // the server sends none then; belt and braces
    state.vehicle = vehicle;
    markDom(vehicle);
    var stale = document.querySelector("[data-bind=last_seen_text]");
    if (stale) stale.hidden = true; // a fresh fix: no longer "last seen …"
    if (driverMarker) {
      driverMarker.setLatLng([vehicle.lat, vehicle.lon]);
      if (!map.getBounds().contains(driverMarker.getLatLng())) fit();
    } else {
      showMap(state);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Live: the socket, else polling
  // -------------------------------------------------------------------------------------------

  function setLive(text, kind) {
    liveStatus.textContent = text;
    liveStatus.setAttribute("data-state", kind);
  }

  function poll() {
    fetch(config.poll + "?lang=" + encodeURIComponent(state.language), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 404) { closedForGood = true; stopPolling(); return null; }
        return response.ok ? response.json() : null;
      })
      .then(function (next) { if (next) apply(next); })
      .catch(function () { /* try again at the next tick */ });
  }

  function startPolling() {
    if (pollTimer || closedForGood) return;
    pollTimer = window.setInterval(poll, config.pollSeconds * 1000);
  }

  function stopPolling() {
    if (pollTimer) window.clearInterval(pollTimer);
    pollTimer = null;
  }

  function connect() {
    if (!("WebSocket" in window) || closedForGood) { startPolling(); return; }
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(
      scheme + window.location.host + config.socket + "?lang=" + encodeURIComponent(state.language)
    );
    socket.onopen = function () {
      retryDelay = 1000;
      stopPolling();
      setLive(config.labels.live, "live");
    };
    socket.onmessage = function (event) {
      var message = JSON.parse(event.data);
      if (message.type === "state") apply(message.data);
      else if (message.type === "vehicle") moveVehicle(message.data);
    };
    socket.onclose = function (event) {
      socket = null;
      if (event.code === 4404) { closedForGood = true; setLive("", "closed"); return; }
      setLive(config.labels.offline, "polling");
      startPolling();
      window.setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 60000);
    };
  }

  if (state.live && state.vehicle) showMap(state);
  connect();
})();
