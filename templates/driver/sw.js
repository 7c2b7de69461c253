/* The driver app's service worker (scope /driver/), served by driver_app/pages.py. Version
   {{ version }}: a fingerprint of the cached files, so a changed file makes a new worker, which
   replaces the old cache.

   - the shell (/driver/, whatever its ?lang=): network first, the last copy offline;
   - the static files (scripts, styles, Leaflet, ZXing, icons): cached at install, cache first;
   - today's route (GET /api/v1/driver/today/): network first, the last answer offline, marked
     with X-Driver-Offline so the app says it is a saved copy;
   - nothing else, and never a POST: actions wait in the app's own outbox (IndexedDB). */
"use strict";

const VERSION = "{{ version }}";
const SHELL = {{ shell|safe }};
const FILES = {{ files|safe }};
const TODAY = {{ today|safe }};
const STATIC_CACHE = "ct-driver-static-" + VERSION;
const DATA_CACHE = "ct-driver-data";

self.addEventListener("install", function (event) {
  event.waitUntil(
    caches.open(STATIC_CACHE)
      .then(function (cache) { return cache.addAll(FILES.concat([SHELL])); })
      .then(function () { return self.skipWaiting(); })
  );
});

self.addEventListener("activate", function (event) {
  event.waitUntil(
    caches.keys().then(function (names) {
      return Promise.all(names.filter(function (name) {
        return name.startsWith("ct-driver-static-") && name !== STATIC_CACHE;
      }).map(function (name) { return caches.delete(name); }));
    }).then(function () { return self.clients.claim(); })
  );
});

async function networkFirst(request, cacheName, key, mark) {
  const cache = await caches.open(cacheName);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(key, response.clone());
    return response;
  } catch (error) {
    const saved = await cache.match(key);
    if (!saved) throw error;
    if (!mark) return saved;
    const headers = new Headers(saved.headers);
    headers.set("X-Driver-Offline", "1");
    return new Response(await saved.blob(), { status: saved.status, headers: headers });
  }
}

async function cacheFirst(request) {
  const saved = await caches.match(request, { ignoreSearch: true });
  return saved || fetch(request);
}

self.addEventListener("fetch", function (event) {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate" && url.pathname === SHELL) {
    event.respondWith(networkFirst(request, STATIC_CACHE, SHELL, false));
  } else if (url.pathname === TODAY) {
    event.respondWith(networkFirst(request, DATA_CACHE, TODAY, true));
  } else if (FILES.includes(url.pathname)) {
    event.respondWith(cacheFirst(request));
  }
});
