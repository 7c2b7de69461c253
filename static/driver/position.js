/* The phone's position while the app is open: watchPosition → a "ping" in the outbox, at most
   one every 15 s unless the phone moved 50 m or more; the outbox sends runs of pings as one
   batch. With the battery level when the browser tells it (navigator.getBattery). */
(function () {
  "use strict";

  const CTD = window.CTD;
  const MIN_INTERVAL_MS = 15000;
  const MIN_DISTANCE_M = 50;
  let watch = null;
  let last = null;
  let battery = null;
  let latest = null;

  function metres(a, b) {
    const rad = Math.PI / 180;
    const dLat = (b.lat - a.lat) * rad;
    const dLon = (b.lon - a.lon) * rad;
    const h = Math.sin(dLat / 2) ** 2 +
      Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
    return 2 * 6371000 * Math.asin(Math.sqrt(h));
  }

  function ping(position) {
    const c = position.coords;
    const fix = { time: new Date(position.timestamp || Date.now()).toISOString(),
      lat: c.latitude, lon: c.longitude };
    // Only what the phone knows: the API refuses unknown keys, and null says nothing.
    if (c.accuracy != null) fix.accuracy = c.accuracy;
    if (c.speed != null && !Number.isNaN(c.speed)) fix.speed = c.speed;
    if (c.heading != null && !Number.isNaN(c.heading)) fix.heading = c.heading;
    if (c.altitude != null) fix.altitude = c.altitude;
    if (battery) {
      fix.battery = Math.round(battery.level * 100);
      fix.charging = battery.charging;
    }
    return fix;
  }

  function onPosition(position) {
    const here = { lat: position.coords.latitude, lon: position.coords.longitude,
      at: Date.now() };
    latest = here;
    if (last && here.at - last.at < MIN_INTERVAL_MS && metres(last, here) < MIN_DISTANCE_M) {
      return;
    }
    last = here;
    CTD.outbox.enqueue("ping", ping(position));
  }

  CTD.position = {
    start: function () {
      if (watch !== null || !navigator.geolocation) return;
      if (navigator.getBattery) {
        navigator.getBattery().then(function (value) { battery = value; }, function () {});
      }
      watch = navigator.geolocation.watchPosition(onPosition, function () {}, {
        enableHighAccuracy: true, maximumAge: 10000, timeout: 60000,
      });
    },
    stop: function () {
      if (watch !== null) navigator.geolocation.clearWatch(watch);
      watch = null;
    },
    /** The last known position {lat, lon}, for scans and proofs of delivery. */
    latest: function () { return latest; },
  };
})();
