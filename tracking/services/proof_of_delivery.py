"""Electronic proof of delivery: photos, signature, recipient, PIN, where and when.

`pod_capture` checks the PIN, cleans the images (tracking/ingest/image_sanitizer.py), measures
the distance from the delivery address in PostGIS, stores the files under random names, delivers
the shipment (completing its stop when one is given) and appends a `pod` entry to the chain of
custody whose evidence is the SHA-256 of each stored file. Replaying the same idempotency key
returns the first POD and changes nothing. Files are served only through short-lived signed
links (`pod_file_url`).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.contrib.gis.geos import Point
from django.core import signing
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from control_tower.errors import Conflict, DomainError, TooManyAttempts
from control_tower.events import catalog, emit
from control_tower.tenancy.actors import Actor
from tracking.geo import point_distance_m
from tracking.ingest.image_sanitizer import CleanImage
from tracking.models import (
    OPEN_STOP_STATUSES,
    FailureReason,
    PodFile,
    PodFileKind,
    PodOutcome,
    ProofOfDelivery,
    Shipment,
    Stop,
)
from tracking.models import ShipmentStatus as S
from tracking.services.custody import Custodian, CustodyKind, custody_append
from tracking.services.shipments import SHIPMENT_TRANSITIONS, shipment_transition
from tracking.services.stops import stop_complete, stop_fail

FILE_SIGNING_SALT = "tracking.pod-file"
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PodInput:
    idempotency_key: str
    captured_at: datetime
    recipient_name: str = ""
    pin: str | None = None
    location: Point | None = None
    note: str = ""
    stop: Stop | None = None
    outcome: str = PodOutcome.DELIVERED
    failure_reason: str = ""  # with outcome=attempt_failed
    left_at: str = ""  # a SafePlace, for deliveries


def _pin_failures_key(shipment: Shipment) -> str:
    return f"pod-pin-failures:{shipment.organization_id}:{shipment.pk}"


def _pin_failures(shipment: Shipment, *, add: bool = False, reset: bool = False) -> int:
    """Wrong PINs for a shipment in the last POD_PIN_LOCK_S seconds (in the cache, Redis).
    Without the cache the limit is not enforced (logged), rather than refusing deliveries."""
    key = _pin_failures_key(shipment)
    try:
        if reset:
            cache.delete(key)
            return 0
        if add:
            cache.add(key, 0, timeout=settings.POD_PIN_LOCK_S)
            return cache.incr(key)
        return cache.get(key, 0)
    except Exception:  # noqa: BLE001 - a cache outage must not block deliveries
        logger.warning("PIN attempt counter unavailable", exc_info=True)
        return 0


def _check_pin(shipment: Shipment, pin: str | None) -> bool | None:
    """A 4-digit PIN falls to 10,000 guesses: after POD_PIN_MAX_FAILURES wrong ones the
    shipment refuses PINs for POD_PIN_LOCK_S seconds (a dispatcher can still help)."""
    if not shipment.delivery_pin_hash:
        return None
    if not pin:
        raise DomainError(
            "This delivery needs the recipient's PIN.",
            fields={"pin": ["Required for this shipment."]},
            code="pin_required",
        )
    if _pin_failures(shipment) >= settings.POD_PIN_MAX_FAILURES:
        raise TooManyAttempts(
            "Too many wrong PINs for this shipment; try again later or call dispatch.",
            fields={"pin": ["Locked after repeated wrong PINs."]},
        )
    if not check_password(pin, shipment.delivery_pin_hash):
        _pin_failures(shipment, add=True)
        raise DomainError(
            "The PIN does not match.", fields={"pin": ["Wrong PIN."]}, code="pin_mismatch"
        )
    _pin_failures(shipment, reset=True)
    return True


def pod_capture(
    *,
    actor: Actor,
    shipment: Shipment,
    data: PodInput,
    photos: list[CleanImage],
    signature: CleanImage | None,
) -> tuple[ProofOfDelivery, bool]:
    """Store a proof of delivery. Returns (pod, created); a replay returns (first pod, False)."""
    existing = ProofOfDelivery.objects.filter(idempotency_key=data.idempotency_key).first()
    if existing is not None:
        return _replay(existing, shipment), False
    delivered = data.outcome == PodOutcome.DELIVERED
    # A PIN proves a handover; a failed attempt hands nothing over.
    pin_verified = _check_pin(shipment, data.pin) if delivered else None
    target = data.stop.location if data.stop is not None and data.stop.location else None
    target = shipment.location or target
    meters = point_distance_m(data.location, target) if data.location and target else None
    outside = meters is not None and meters > actor.organization.pod_geofence_m

    saved: list[str] = []
    try:
        with transaction.atomic():
            pod = ProofOfDelivery.objects.create(
                organization=actor.organization,
                idempotency_key=data.idempotency_key,
                shipment=shipment,
                stop=data.stop,
                device=actor.device,
                recipient_name=data.recipient_name,
                pin_verified=pin_verified,
                location=data.location,
                captured_at=data.captured_at,
                distance_m=meters,
                outside_geofence=outside,
                note=data.note,
                outcome=data.outcome,
                failure_reason=data.failure_reason if not delivered else "",
                left_at=data.left_at if delivered else "",
            )
            evidence = {}
            files = [(PodFileKind.PHOTO, image) for image in photos]
            if signature is not None:
                files.append((PodFileKind.SIGNATURE, signature))
            for number, (kind, image) in enumerate(files, start=1):
                name = default_storage.save(
                    f"pod/{actor.organization.pk}/{uuid.uuid4().hex}.{image.extension}",
                    ContentFile(image.data),
                )
                saved.append(name)
                PodFile.objects.create(
                    organization=actor.organization,
                    pod=pod,
                    kind=kind,
                    storage_name=name,
                    content_type=image.content_type,
                    size_bytes=len(image.data),
                    width=image.width,
                    height=image.height,
                    sha256=image.sha256,
                )
                label = "signature" if kind == PodFileKind.SIGNATURE else f"photo-{number}"
                evidence[label] = image.sha256
            if delivered:
                _deliver(actor, shipment, pod, data, evidence)
            else:
                _record_attempt(actor, shipment, pod, data, evidence)
            emit(catalog.pod_captured(pod, shipment=shipment))
    except IntegrityError:
        # The same key committed by a concurrent request: answer like a replay.
        _remove(saved)
        existing = ProofOfDelivery.objects.filter(idempotency_key=data.idempotency_key).first()
        if existing is None:
            raise
        return _replay(existing, shipment), False
    except Exception:
        _remove(saved)
        raise
    return pod, True


def _replay(existing: ProofOfDelivery, shipment: Shipment) -> ProofOfDelivery:
    """A replay is the same key *for the same shipment*. The same key for another shipment is
    a client bug, and answering with that POD could show one carrier another's evidence."""
    if existing.shipment_id != shipment.pk:
        raise Conflict(
            "This idempotency key was already used for another shipment; use a new key.",
            fields={"idempotency_key": ["Already used for another shipment."]},
            code="idempotency_key_reused",
        )
    return existing


def _how_far(pod: ProofOfDelivery) -> dict:
    """How far from the address the evidence was captured, as the custody chain records it."""
    meters = None if pod.distance_m is None else round(pod.distance_m, 1)
    return {"distance_m": meters, "outside_geofence": pod.outside_geofence}


def _deliver(actor, shipment, pod, data: PodInput, evidence: dict) -> None:
    """Deliver the shipment (through its stop when one is given) and add the POD to the chain."""
    if data.stop is not None and data.stop.status in OPEN_STOP_STATUSES:
        stop_complete(stop=data.stop, actor=actor, at=data.captured_at)
    custody = {
        "kind": CustodyKind.POD,
        "location": data.location,
        "evidence": evidence,
        "details": {
            "pod": pod.pk,
            "recipient_name": data.recipient_name,
            "pin_verified": pod.pin_verified,
            **_how_far(pod),
            "left_at": pod.left_at,
        },
    }
    locked = Shipment.objects.select_for_update(of=("self",)).get(pk=shipment.pk)
    if locked.status == S.DELIVERED:
        custody_append(
            shipment=locked,
            kind=CustodyKind.POD,
            actor=actor.label,
            occurred_at=data.captured_at,
            custodian=Custodian.recipient(data.recipient_name or locked.recipient_name),
            location=data.location,
            evidence=evidence,
            details=custody["details"],
        )
    elif S.DELIVERED in SHIPMENT_TRANSITIONS[locked.status]:
        shipment_transition(
            shipment=locked,
            to_status=S.DELIVERED,
            actor=actor,
            at=min(data.captured_at, timezone.now()),
            source="pod",
            note="Proof of delivery",
            custody=custody,
        )
    else:
        raise Conflict(
            f"Shipment {locked.reference} is {locked.get_status_display().lower()}: it cannot "
            "be delivered, so no proof of delivery was stored.",
            code="not_deliverable",
        )


def _record_attempt(actor, shipment, pod, data: PodInput, evidence: dict) -> None:
    """Fail the attempt (through its stop when one is given, which fails every shipment of the
    stop with the reason) and add the evidence to the chain; the custodian does not change."""
    if data.stop is not None and data.stop.status in OPEN_STOP_STATUSES:
        stop_fail(
            stop=data.stop,
            actor=actor,
            reason=data.failure_reason,
            at=data.captured_at,
            note=data.note,
        )
    locked = Shipment.objects.select_for_update(of=("self",)).get(pk=shipment.pk)
    if locked.status != S.ATTEMPT_FAILED:
        if S.ATTEMPT_FAILED not in SHIPMENT_TRANSITIONS[locked.status]:
            raise Conflict(
                f"Shipment {locked.reference} is {locked.get_status_display().lower()}: no "
                "delivery attempt can fail now, so no evidence was stored.",
                code="not_attemptable",
            )
        shipment_transition(
            shipment=locked,
            to_status=S.ATTEMPT_FAILED,
            actor=actor,
            at=min(data.captured_at, timezone.now()),
            source="pod",
            note=FailureReason(data.failure_reason).label,
        )
    custody_append(
        shipment=locked,
        kind=CustodyKind.ATTEMPT,
        actor=actor.label,
        occurred_at=data.captured_at,
        location=data.location,
        evidence=evidence,
        details={
            "pod": pod.pk,
            "reason": data.failure_reason,
            **_how_far(pod),
        },
    )


def _remove(names: list[str]) -> None:
    for name in names:
        default_storage.delete(name)


# ---------------------------------------------------------------------------------------------
# Signed links
# ---------------------------------------------------------------------------------------------


def pod_file_url(pod_file: PodFile) -> tuple[str, datetime]:
    """A link to the file that works for `POD_URL_TTL_S` seconds, and when it expires. It is
    only handed out in API answers to people and keys allowed to read the POD."""
    token = signing.TimestampSigner(salt=FILE_SIGNING_SALT).sign(
        f"{pod_file.organization_id}.{pod_file.pk}"
    )
    expires = timezone.now() + timedelta(seconds=settings.POD_URL_TTL_S)
    return reverse("pod-file", kwargs={"token": token}), expires


def pod_file_for_token(token: str) -> PodFile | None:
    """The file a signed link points at, or None when expired, altered or gone."""
    try:
        value = signing.TimestampSigner(salt=FILE_SIGNING_SALT).unsign(
            token, max_age=settings.POD_URL_TTL_S
        )
        organization_id, file_id = (int(part) for part in value.split("."))
    except (signing.BadSignature, ValueError):
        return None
    # The signature names the organization: the one sanctioned unscoped read of this module.
    return PodFile.dangerously_unscoped.filter(pk=file_id, organization_id=organization_id).first()
