/* Evidence taken on the phone: photos downscaled on a canvas to at most 1600 px (JPEG) before
   they are queued (a phone photo of 4 MB becomes ~300 kB: fewer retries on a weak network), and
   a signature drawn with a finger or a pen on a canvas (pointer events), exported as PNG. */
(function () {
  "use strict";

  const MAX_SIDE = 1600;
  const JPEG_QUALITY = 0.85;

  function toBlob(canvas, type, quality) {
    return new Promise(function (resolve) { canvas.toBlob(resolve, type, quality); });
  }

  /** A File from <input type=file> → a JPEG Blob no larger than MAX_SIDE on its long side. */
  async function downscale(file) {
    const image = await createImageBitmap(file);
    const scale = Math.min(1, MAX_SIDE / Math.max(image.width, image.height));
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(image.width * scale));
    canvas.height = Math.max(1, Math.round(image.height * scale));
    const context = canvas.getContext("2d");
    context.fillStyle = "#fff";  // a transparent PNG must not turn black as a JPEG
    context.fillRect(0, 0, canvas.width, canvas.height);
    context.drawImage(image, 0, 0, canvas.width, canvas.height);
    image.close();
    return toBlob(canvas, "image/jpeg", JPEG_QUALITY);
  }

  /** A signature pad on `canvas`: draw with pointer events; `blob()` is null while empty. */
  function signaturePad(canvas) {
    const context = canvas.getContext("2d");
    let drawing = false;
    let inked = false;
    let last = null;

    function clear() {
      context.fillStyle = "#fff";
      context.fillRect(0, 0, canvas.width, canvas.height);
      inked = false;
      canvas.removeAttribute("data-inked");
    }

    function point(event) {
      const box = canvas.getBoundingClientRect();
      return { x: (event.clientX - box.left) * (canvas.width / box.width),
        y: (event.clientY - box.top) * (canvas.height / box.height) };
    }

    canvas.addEventListener("pointerdown", function (event) {
      event.preventDefault();
      canvas.setPointerCapture(event.pointerId);
      drawing = true;
      last = point(event);
    });
    canvas.addEventListener("pointermove", function (event) {
      if (!drawing) return;
      event.preventDefault();
      const next = point(event);
      context.strokeStyle = "#000";
      context.lineWidth = 4;
      context.lineCap = "round";
      context.lineJoin = "round";
      context.beginPath();
      context.moveTo(last.x, last.y);
      context.lineTo(next.x, next.y);
      context.stroke();
      last = next;
      inked = true;
      canvas.setAttribute("data-inked", "true");
    });
    ["pointerup", "pointercancel", "pointerleave"].forEach(function (name) {
      canvas.addEventListener(name, function () { drawing = false; });
    });
    clear();
    return {
      clear: clear,
      inked: function () { return inked; },
      blob: function () { return inked ? toBlob(canvas, "image/png") : Promise.resolve(null); },
    };
  }

  window.CTD.capture = { downscale: downscale, signaturePad: signaturePad };
})();
