/* The outbox: every action the driver takes is stored first (IndexedDB, with its client event
   id and the time it happened) and sent afterwards, in order, by one sender: after each new
   action, when the phone comes back online, and on a timer. The server's answer decides
   (docs/DRIVER_APP.md, "The outbox"):
     2xx                 done: removed;
     401                 the session is over: stop, sign out, keep everything;
     other 4xx           refused for good: kept under "needs attention" with the server's words,
                         and the sender moves on (408 and 429 excepted: they are retried);
     network error, 5xx  retried later with a growing pause, never overtaken by later items.
   Every call is idempotent on replay (event ids, idempotency keys, same-status transitions), so
   an item whose answer was lost is simply sent again. */
(function () {
  "use strict";

  const CTD = window.CTD;
  const store = CTD.store;
  const api = CTD.config.api;
  const PING_BATCH = 100;
  const RETRY_MAX_MS = 60000;
  const TIMER_MS = 10000;
  const CALL_TIMEOUT_MS = 30000;
  const UPLOAD_TIMEOUT_MS = 120000;

  let token = null;
  let driver = null;  // whose actions these are: the signed-in driver's id
  let running = false;
  let again = false;
  const listeners = { change: [], result: [], signedout: [] };

  function emit(name, ...args) {
    listeners[name].forEach(function (listener) { listener(...args); });
  }

  function isoNow() { return new Date().toISOString(); }

  /** Store a new action and try to send it at once; `id` is its client event id (made here
      unless the caller needs it first). */
  async function enqueue(kind, payload, files, id) {
    const item = {
      id: id || crypto.randomUUID(),
      driver: driver,
      kind: kind,
      created_at: isoNow(),
      payload: payload,
      files: files || null,
      attempts: 0,
      last_error: "",
      state: "waiting",
      progress: 0,
      next_try_at: 0,
    };
    item.seq = await store.add(item);
    emit("change");
    drain();
    return item;
  }

  // ------------------------------------------------------------------------------------------
  // One action → the API calls it makes
  // ------------------------------------------------------------------------------------------

  function json(url, body) { return { url: url, body: JSON.stringify(body), json: true }; }

  function podForm(item, shipment) {
    const p = item.payload;
    const form = new FormData();
    form.append("shipment", String(shipment));
    form.append("stop", String(p.stop));
    form.append("idempotency_key", item.id + ":" + shipment);
    form.append("captured_at", p.captured_at);
    if (p.lat != null && p.lon != null) {
      form.append("lat", String(p.lat));
      form.append("lon", String(p.lon));
    }
    ["recipient_name", "pin", "left_at", "note", "outcome", "reason"].forEach(function (name) {
      if (p[name]) form.append(name, p[name]);
    });
    const files = item.files || {};
    (files.photos || []).forEach(function (blob, index) {
      form.append("photos", blob, "photo-" + (index + 1) + ".jpg");
    });
    if (files.signature) form.append("signature", files.signature, "signature.png");
    return { url: api.pod, body: form, json: false };
  }

  /** The calls for an item (or a run of pings), in order; a POD makes one per shipment. */
  function calls(batch) {
    const item = batch[0];
    const p = item.payload;
    const at = { occurred_at: p.occurred_at };
    switch (item.kind) {
      case "ping":
        return [json(api.pings, batch.map(function (ping) {
          return Object.assign({ event_id: ping.id }, ping.payload);
        }))];
      case "start_route":
        return [json(api.routes + p.route + "/start/", at)];
      case "arrive":
      case "complete":
        return [json(api.stops + p.stop + "/" + item.kind + "/", at)];
      case "skip":
        return [json(api.stops + p.stop + "/skip/",
          { occurred_at: p.occurred_at, reason: p.reason || "", note: p.note || "" })];
      case "fail":
        return [json(api.stops + p.stop + "/fail/",
          { occurred_at: p.occurred_at, reason: p.reason, note: p.note || "" })];
      case "scan": {
        const scan = { event_id: item.id, barcode: p.barcode, scan_type: p.scan_type,
          occurred_at: p.occurred_at };
        if (p.lat != null) scan.location = { lat: p.lat, lon: p.lon };
        return [json(api.scans, { scans: [scan] })];
      }
      case "pod":
      case "fail_pod":
        return p.shipments.map(function (shipment) { return podForm(item, shipment); });
      case "incident":
        return [json(api.incidents, { route: p.route, kind: p.kind, note: p.note || "" })];
      default:
        throw new Error("unknown outbox item kind " + item.kind);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Sending
  // ------------------------------------------------------------------------------------------

  /** fetch with the device token; resolves to {status, body}, rejects on network errors. */
  async function call(request, method) {
    const headers = { Authorization: "Device " + token, "Accept-Language": CTD.config.language };
    if (request.json) headers["Content-Type"] = "application/json";
    // A call that hangs on a weak network must not hold the outbox: give up, retry later.
    const controller = new AbortController();
    const timer = setTimeout(function () { controller.abort(); },
      request.json === false ? UPLOAD_TIMEOUT_MS : CALL_TIMEOUT_MS);
    let response;
    try {
      response = await fetch(request.url, {
        method: method || "POST", headers: headers, body: request.body, cache: "no-store",
        credentials: "omit", signal: controller.signal,
      });
    } finally {
      clearTimeout(timer);
    }
    let body = null;
    try { body = await response.json(); } catch (_error) { body = null; }
    // X-Driver-Offline: the service worker answered with its saved copy (sw.js).
    return { status: response.status, body: body,
      saved: response.headers.get("X-Driver-Offline") === "1" };
  }

  function message(answer) {
    const body = answer.body || {};
    let text = body.detail || body.error || body.code || "";
    if (body.fields) {
      const first = Object.keys(body.fields)[0];
      if (first && !text) text = first + ": " + JSON.stringify(body.fields[first]);
    }
    return text || "HTTP " + answer.status;
  }

  function verdict(status) {
    if (status >= 200 && status < 300) return "done";
    if (status === 401) return "signedout";
    if (status === 408 || status === 429 || status >= 500) return "retry";
    return "rejected";
  }

  async function retryLater(batch, error) {
    const item = batch[0];
    item.attempts += 1;
    item.state = "retrying";
    item.last_error = error;
    item.next_try_at = Date.now() + Math.min(RETRY_MAX_MS, 2000 * 2 ** (item.attempts - 1));
    await store.put(item);
    emit("change");
  }

  /** Send the head of the outbox; true when the next item may go. */
  async function sendHead(waiting) {
    const head = waiting[0];
    if (head.next_try_at && head.next_try_at > Date.now()) return false;
    let batch = [head];
    if (head.kind === "ping") {
      const run = waiting.findIndex((item) => item.kind !== "ping");
      batch = waiting.slice(0, Math.min(run === -1 ? waiting.length : run, PING_BATCH));
    }
    head.state = "sending";
    await store.put(head);
    emit("change");
    const requests = calls(batch);
    let answer = null;
    for (let index = head.progress || 0; index < requests.length; index += 1) {
      try {
        answer = await call(requests[index]);
      } catch (_error) {
        await retryLater(batch, CTD.t("network_error"));
        return false;
      }
      const outcome = verdict(answer.status);
      if (outcome === "signedout") {
        head.state = "waiting";
        await store.put(head);
        token = null;
        emit("signedout");  // the driver stays: the same person signs in again
        return false;
      }
      if (outcome === "retry") {
        await retryLater(batch, message(answer));
        return false;
      }
      if (outcome === "rejected" && head.kind === "ping") {
        // Positions the server will never take are of no use to keep or to show.
        for (const item of batch) await store.drop(item.seq);
        emit("change");
        return true;
      }
      if (outcome === "rejected") {
        for (const item of batch) {
          item.state = "rejected";
          item.last_error = message(answer);
          await store.put(item);
        }
        emit("change");
        emit("result", head, answer.body, false);
        return true;
      }
      if (index + 1 < requests.length) {  // a POD of several shipments: remember how far
        head.progress = index + 1;
        await store.put(head);
      }
    }
    for (const item of batch) await store.drop(item.seq);
    emit("change");
    emit("result", head, answer && answer.body, true);
    return true;
  }

  /** Actions made by another driver on this phone are never sent with this driver's token
      (they would count as this driver's): kept aside, under "needs attention". */
  async function setAsideOthers(items) {
    const others = items.filter((item) => item.state !== "rejected" && item.driver !== driver);
    for (const item of others) {
      if (item.kind === "ping") {  // another driver's positions: of no use to anyone now
        await store.drop(item.seq);
        continue;
      }
      item.state = "rejected";
      item.last_error = CTD.t("other_driver");
      await store.put(item);
    }
    if (others.length) emit("change");
  }

  async function drainOnce() {
    await setAsideOthers(await store.items());
    for (;;) {
      if (!token) return;
      const waiting = (await store.items()).filter((item) => item.state !== "rejected");
      if (!waiting.length) return;
      if (!(await sendHead(waiting))) return;
    }
  }

  /** Send what can be sent; one sender at a time (in this tab, and across tabs by a lock). */
  async function drain() {
    if (running) { again = true; return; }
    running = true;
    try {
      do {
        again = false;
        if (navigator.locks) {
          await navigator.locks.request("ct-driver-outbox", { ifAvailable: true },
            function (lock) { return lock ? drainOnce() : null; });
        } else {
          await drainOnce();
        }
      } while (again);
    } finally {
      running = false;
    }
  }

  /** Back online: whatever was pausing can go now. */
  async function retryNow() {
    for (const item of await store.items()) {
      if (item.state === "retrying") {
        item.next_try_at = 0;
        await store.put(item);
      }
    }
    drain();
  }

  async function dismiss(seq) {
    await store.drop(seq);
    emit("change");
  }

  window.addEventListener("online", retryNow);
  setInterval(drain, TIMER_MS);

  CTD.outbox = {
    enqueue: enqueue,
    drain: drain,
    retryNow: retryNow,
    dismiss: dismiss,
    items: store.items,
    call: call,
    /** Who is signed in (null: nobody): the token to send with, the driver whose actions go. */
    setSession: function (value) {
      token = value ? value.token : null;
      driver = value ? value.driver.id : null;
      if (token) drain();
    },
    on: function (name, listener) { listeners[name].push(listener); },
  };
})();
