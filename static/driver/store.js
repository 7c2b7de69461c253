/* What the app keeps on the phone, in IndexedDB (survives reloads, offline, sign-out):
   - "kv": the session (token, driver), the install id, the last route of the day;
   - "outbox": the actions waiting to be sent, in the order they were made (auto-increment key),
     with their photos and signatures as Blobs. */
(function () {
  "use strict";

  const DB_NAME = "ct-driver";
  let opening = null;

  function open() {
    if (opening) return opening;
    opening = new Promise(function (resolve, reject) {
      const request = indexedDB.open(DB_NAME, 1);
      request.onupgradeneeded = function () {
        const db = request.result;
        db.createObjectStore("kv");
        db.createObjectStore("outbox", { keyPath: "seq", autoIncrement: true });
      };
      request.onsuccess = function () { resolve(request.result); };
      request.onerror = function () { reject(request.error); };
    });
    return opening;
  }

  async function run(storeName, mode, work) {
    const db = await open();
    return new Promise(function (resolve, reject) {
      const transaction = db.transaction(storeName, mode);
      const store = transaction.objectStore(storeName);
      let result;
      const request = work(store);
      if (request) request.onsuccess = function () { result = request.result; };
      transaction.oncomplete = function () { resolve(result); };
      transaction.onerror = function () { reject(transaction.error); };
      transaction.onabort = function () { reject(transaction.error); };
    });
  }

  const store = {
    get: function (key) { return run("kv", "readonly", (s) => s.get(key)); },
    set: function (key, value) { return run("kv", "readwrite", (s) => s.put(value, key)); },
    remove: function (key) { return run("kv", "readwrite", (s) => s.delete(key)); },
    /** Every outbox item, oldest first. */
    items: function () { return run("outbox", "readonly", (s) => s.getAll()); },
    add: function (item) { return run("outbox", "readwrite", (s) => s.add(item)); },
    put: function (item) { return run("outbox", "readwrite", (s) => s.put(item)); },
    drop: function (seq) { return run("outbox", "readwrite", (s) => s.delete(seq)); },
  };

  /** The id this installation sends when signing in (the same device on every sign-in). */
  store.installId = async function () {
    let id = await store.get("install_id");
    if (!id) {
      id = crypto.randomUUID();
      await store.set("install_id", id);
    }
    return id;
  };

  window.CTD.store = store;
})();
