/* Scanning parcels: the camera (ZXing, loaded on first use from this site) or a typed barcode.
   Before anything is queued the app warns about a barcode that is not on today's route and, for
   a scan at the door, about a parcel that belongs to another stop than the open one; the driver
   may send it anyway. After sending, each scan shows the server's result in words. */
(function () {
  "use strict";

  const CTD = window.CTD;
  const t = CTD.t;
  const dialog = document.getElementById("scan-dialog");
  const typeSelect = document.getElementById("scan-type");
  const video = document.getElementById("scan-video");
  const cameraButton = document.getElementById("scan-camera");
  const codeInput = document.getElementById("scan-code");
  const warning = document.getElementById("scan-warning");
  const warningText = document.getElementById("scan-warning-text");
  const results = document.getElementById("scan-results");
  let zxing = null;
  let reader = null;
  let pending = null;  // the barcode waiting for "send anyway"
  let context = null;  // {lookup(barcode), openStop(), position()} from app.js

  function loadZxing() {
    if (zxing) return zxing;
    zxing = new Promise(function (resolve, reject) {
      const script = document.createElement("script");
      script.src = CTD.config.zxing;
      script.onload = function () { resolve(window.ZXing); };
      script.onerror = function () { zxing = null; reject(new Error("ZXing")); };
      document.head.appendChild(script);
    });
    return zxing;
  }

  function stopCamera() {
    if (reader) reader.reset();  // stops the camera's tracks
    reader = null;
    video.parentElement.hidden = true;
    cameraButton.textContent = t("start_camera");
  }

  async function startCamera() {
    try {
      const ZXing = await loadZxing();
      const hints = new Map();
      hints.set(ZXing.DecodeHintType.POSSIBLE_FORMATS,
        [ZXing.BarcodeFormat.CODE_128, ZXing.BarcodeFormat.QR_CODE]);
      hints.set(ZXing.DecodeHintType.TRY_HARDER, true);
      reader = new ZXing.BrowserMultiFormatReader(hints, 200);
      video.parentElement.hidden = false;
      cameraButton.textContent = t("stop_camera");
      CTD.announce(t("camera_on"));
      // `error` is a NotFoundException on every frame without a barcode: nothing to say.
      await reader.decodeFromVideoDevice(null, video, function (result) {
        if (!result) return;
        stopCamera();
        check(result.getText());
      });
    } catch (error) {
      stopCamera();
      CTD.announce(t("camera_failed", { detail: error && error.message ? error.message : "" }));
    }
  }

  function resultLine(key, values) {
    const item = document.createElement("li");
    item.textContent = t(key, values);
    results.prepend(item);
    return item;
  }

  function warn(text, barcode) {
    pending = barcode;
    warningText.textContent = text;
    warning.hidden = false;
    document.getElementById("scan-anyway").focus();
  }

  /** The client-side checks; queue the scan when nothing is odd. */
  function check(raw) {
    const barcode = (raw || "").trim();
    if (!barcode) return;
    const scanType = typeSelect.value;
    const found = context.lookup(barcode);
    if (!found) {
      warn(t("scan_unknown", { barcode: barcode }), barcode);
      return;
    }
    const open = context.openStop();
    if (scanType !== "loaded" && open && found.stop.id !== open.id) {
      warn(t("scan_wrong_stop", { barcode: barcode, belongs: found.stop.sequence,
        open: open.sequence }), barcode);
      return;
    }
    send(barcode);
  }

  async function send(barcode) {
    warning.hidden = true;
    pending = null;
    const here = context.position();
    const payload = { barcode: barcode, scan_type: typeSelect.value,
      occurred_at: new Date().toISOString() };
    if (here) { payload.lat = here.lat; payload.lon = here.lon; }
    // The line carries the scan's id before it is queued: the answer may come at once.
    const id = crypto.randomUUID();
    resultLine("scan_waiting", { barcode: barcode }).setAttribute("data-item", id);
    await CTD.outbox.enqueue("scan", payload, null, id);
  }

  /** The server's answer for a scan (from the outbox), in words on its line. */
  function showResult(item, body, accepted) {
    const line = results.querySelector('[data-item="' + item.id + '"]') ||
      resultLine("scan_waiting", { barcode: item.payload.barcode });
    const answer = accepted && body && body.results ? body.results[0] : null;
    if (!answer) {
      line.textContent = t("item_rejected", { error: item.last_error });
      line.className = "result-illegal";
      return;
    }
    const status = answer.shipment ? t("shipment_" + answer.shipment.status) : "";
    line.textContent = t("result_" + answer.result, { barcode: answer.barcode,
      status: status, detail: answer.detail });
    line.className = "result-" + answer.result;
    line.setAttribute("data-result", answer.result);
  }

  cameraButton.addEventListener("click", function () {
    if (reader) stopCamera(); else startCamera();
  });
  document.getElementById("scan-add").addEventListener("click", function () {
    check(codeInput.value);
    codeInput.value = "";
  });
  codeInput.addEventListener("keydown", function (event) {
    if (event.key === "Enter") {
      event.preventDefault();
      check(codeInput.value);
      codeInput.value = "";
    }
  });
  document.getElementById("scan-anyway").addEventListener("click", function () {
    if (pending) send(pending);
  });
  document.getElementById("scan-cancel").addEventListener("click", function () {
    pending = null;
    warning.hidden = true;
    codeInput.focus();
  });
  dialog.addEventListener("close", stopCamera);

  CTD.scanner = {
    init: function (value) { context = value; },
    /** Open the scanner; `scanTypes` are [value, label] pairs, `preferred` the one chosen. */
    open: function (scanTypes, preferred) {
      typeSelect.replaceChildren(...scanTypes.map(function (pair) {
        const option = new Option(pair[1], pair[0]);
        option.selected = pair[0] === preferred;
        return option;
      }));
      warning.hidden = true;
      dialog.showModal();
    },
    showResult: showResult,
  };
})();
