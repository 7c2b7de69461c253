/* The forms of a stop and of the route: proof of delivery (photos, signature, recipient, PIN,
   where it was left), failed attempt (reason, optional photo), skip (reason), report a problem.
   Each one only queues an action in the outbox; nothing here talks to the server. */
(function () {
  "use strict";

  const CTD = window.CTD;
  const t = CTD.t;
  const $ = (id) => document.getElementById(id);
  const signature = CTD.capture.signaturePad($("pod-signature"));
  let stop = null;
  let photos = [];
  let failPhoto = null;
  // Downscaling takes a moment: a form sent meanwhile waits for it (never goes without).
  let reading = Promise.resolve();

  function options(select, pairs, blank) {
    const items = pairs.map((pair) => new Option(pair[1], pair[0]));
    if (blank !== undefined) items.unshift(new Option(blank, ""));
    select.replaceChildren(...items);
  }

  function here() {
    const position = CTD.position.latest();
    return position ? { lat: position.lat, lon: position.lon } : {};
  }

  function stopLine() {
    return t("stop", { n: stop.sequence }) + " · " + stop.address;
  }

  async function readPhotos(input, status) {
    const blobs = [];
    for (const file of input.files) {
      try {
        blobs.push(await CTD.capture.downscale(file));
      } catch (_error) {
        status.textContent = t("photo_failed");
      }
    }
    return blobs;
  }

  function thumbnails(blobs) {
    const box = $("pod-thumbs");
    box.querySelectorAll("img").forEach((image) => URL.revokeObjectURL(image.src));
    box.replaceChildren(...blobs.map(function (blob, index) {
      const image = new Image(96, 72);
      image.src = URL.createObjectURL(blob);
      image.alt = t("photo_added", { n: index + 1 });
      return image;
    }));
  }

  // ------------------------------------------------------------------------------------------
  // Proof of delivery
  // ------------------------------------------------------------------------------------------

  function openPod() {
    const choices = CTD.app.choices();
    $("pod-form").reset();
    photos = [];
    thumbnails(photos);
    signature.clear();
    $("pod-stop").textContent = stopLine();
    $("pod-photo-status").textContent = "";
    $("pod-error").textContent = "";
    $("pod-pin-field").hidden = !stop.shipments.some((shipment) => shipment.requires_pin);
    options($("pod-left-at"), choices.safe_places || []);
    const names = stop.shipments.map((shipment) => shipment.recipient_name).filter(Boolean);
    $("pod-recipient").value = names.length ? names[0] : "";
    $("pod-dialog").showModal();
  }

  $("pod-photos").addEventListener("change", function () {
    const status = $("pod-photo-status");
    reading = readPhotos(this, status).then(function (blobs) {
      photos = photos.concat(blobs);
      thumbnails(photos);
      status.textContent = t("photo_added", { n: photos.length });
    });
  });
  $("pod-signature-clear").addEventListener("click", signature.clear);

  $("pod-form").addEventListener("submit", async function (event) {
    event.preventDefault();
    await reading;
    const policy = CTD.app.podPolicy();
    const error = $("pod-error");
    const pin = $("pod-pin").value.trim();
    if (policy.photo_required && !photos.length) { error.textContent = t("photo_required"); return; }
    if (policy.signature_required && !signature.inked()) {
      error.textContent = t("signature_required");
      return;
    }
    if (!$("pod-pin-field").hidden && !pin) { error.textContent = t("pin_required"); return; }
    if (!photos.length && !signature.inked()) { error.textContent = t("photo_required"); return; }
    const payload = Object.assign({
      shipments: stop.shipments.map((shipment) => shipment.id),
      captured_at: new Date().toISOString(),
      recipient_name: $("pod-recipient").value.trim(),
      pin: pin,
      left_at: $("pod-left-at").value,
      note: $("pod-note").value.trim(),
    }, here());
    const files = { photos: photos, signature: await signature.blob() };
    const target = stop;
    $("pod-dialog").close();
    await CTD.app.stopAction("pod", target, payload, files);
  });

  // ------------------------------------------------------------------------------------------
  // Failed attempt, skip, problem
  // ------------------------------------------------------------------------------------------

  function openFail() {
    $("fail-form").reset();
    failPhoto = null;
    $("fail-stop").textContent = stopLine();
    $("fail-error").textContent = "";
    options($("fail-reason"), CTD.app.choices().failure_reasons || [], "—");
    $("fail-dialog").showModal();
  }

  $("fail-photo").addEventListener("change", function () {
    reading = readPhotos(this, $("fail-error")).then(function (blobs) {
      failPhoto = blobs.length ? blobs[0] : null;
    });
  });

  $("fail-form").addEventListener("submit", async function (event) {
    event.preventDefault();
    await reading;
    const reason = $("fail-reason").value;
    if (!reason) { $("fail-error").textContent = t("reason_required"); return; }
    const note = $("fail-note").value.trim();
    const target = stop;
    $("fail-dialog").close();
    if (failPhoto) {  // the photo is evidence: it goes with the POD endpoint
      await CTD.app.stopAction("fail_pod", target, Object.assign({
        shipments: target.shipments.map((shipment) => shipment.id),
        captured_at: new Date().toISOString(), outcome: "attempt_failed", reason: reason,
        note: note }, here()), { photos: [failPhoto], signature: null });
    } else {
      await CTD.app.stopAction("fail", target, { reason: reason, note: note });
    }
  });

  function openSkip() {
    $("skip-form").reset();
    $("skip-stop").textContent = stopLine();
    const choices = CTD.app.choices();
    options($("skip-reason"), choices.skip_reasons || choices.failure_reasons || [], "—");
    $("skip-dialog").showModal();
  }

  $("skip-form").addEventListener("submit", async function (event) {
    event.preventDefault();
    const target = stop;
    $("skip-dialog").close();
    await CTD.app.stopAction("skip", target, { reason: $("skip-reason").value,
      note: $("skip-note").value.trim() });
  });

  function openProblem() {
    $("problem-form").reset();
    $("problem-error").textContent = "";
    options($("problem-kind"), CTD.app.choices().incident_kinds || []);
    $("problem-dialog").showModal();
  }

  $("problem-form").addEventListener("submit", async function (event) {
    event.preventDefault();
    const route = CTD.app.activeRoute();
    if (!route) { $("problem-error").textContent = t("no_routes"); return; }
    $("problem-dialog").close();
    await CTD.outbox.enqueue("incident", { route: route.id, kind: $("problem-kind").value,
      note: $("problem-note").value.trim() });
    CTD.announce(t("queued"));
  });

  document.querySelectorAll("dialog [data-close]").forEach(function (button) {
    button.addEventListener("click", function () { button.closest("dialog").close(); });
  });

  CTD.forms = {
    /** Open a form: "deliver", "fail", "skip" for `target` (a stop), or "problem". */
    open: function (name, target) {
      stop = target || null;
      if (name === "deliver") openPod();
      else if (name === "fail") openFail();
      else if (name === "skip") openSkip();
      else if (name === "problem") openProblem();
    },
  };
})();
