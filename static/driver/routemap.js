/* The route on a map: its path (or straight lines between the stops when the server has no
   path), a numbered marker per stop and the next stop highlighted. Tiles are optional (the tile
   URL setting may be empty, and offline they fail): markers and the line show without them. */
(function () {
  "use strict";

  const CTD = window.CTD;
  let map = null;
  let layer = null;
  let drawn = null;  // what is on the map: redrawn only when it changes
  let framed = null;  // the route the view was fitted to: the driver's panning is left alone

  function ensure(element) {
    if (map) return map;
    map = L.map(element, { attributionControl: false, zoomControl: true });
    if (CTD.config.tileUrl) L.tileLayer(CTD.config.tileUrl, { maxZoom: 19 }).addTo(map);
    layer = L.layerGroup().addTo(map);
    return map;
  }

  function marker(stop, nextId) {
    const classes = ["stop-marker", "stop-" + stop.status];
    if (stop.id === nextId) classes.push("stop-next");
    const icon = L.divIcon({
      className: classes.join(" "),
      html: String(Number(stop.sequence)),
      iconSize: stop.id === nextId ? [40, 40] : [30, 30],
    });
    const title = CTD.t("stop", { n: stop.sequence }) + " · " + stop.address;
    return L.marker([stop.lat, stop.lon], { icon: icon, title: title, alt: title,
      keyboard: false, zIndexOffset: stop.id === nextId ? 1000 : 0 });
  }

  /** Draw `route` into `element`; `nextId` is the stop to highlight. */
  function draw(element, route, nextId) {
    const key = JSON.stringify([route.id, nextId, route.stops.map((s) => [s.id, s.status])]);
    if (key === drawn) return;
    drawn = key;
    ensure(element);
    layer.clearLayers();
    const stops = route.stops.filter((stop) => stop.lat != null && stop.lon != null);
    let line = route.path && route.path.length > 1 ? route.path : null;
    if (!line) {
      line = stops.map((stop) => [stop.lat, stop.lon]);
      if (route.hub && route.hub.lat != null) line.unshift([route.hub.lat, route.hub.lon]);
    }
    const bounds = [];
    if (line.length > 1) {
      L.polyline(line, { color: "#0b3d91", weight: 5, opacity: 0.8, className: "route-line" })
        .addTo(layer);
      line.forEach((point) => bounds.push(point));
    }
    stops.forEach(function (stop) {
      marker(stop, nextId).addTo(layer);
      bounds.push([stop.lat, stop.lon]);
    });
    // For screen readers the list is the route; for tests, what the map holds.
    element.setAttribute("data-stops", String(stops.length));
    element.setAttribute("data-next", nextId == null ? "" : String(nextId));
    if (bounds.length && framed !== route.id) {
      framed = route.id;
      map.fitBounds(bounds, { padding: [24, 24], maxZoom: 16 });
    }
    setTimeout(function () { map.invalidateSize(); }, 0);
  }

  CTD.routeMap = { draw: draw };
})();
