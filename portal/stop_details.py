"""Reads for the console's side panel and search box: one stop in detail (its shipments, a
timeline of scans, custody entries and stop events, proofs of delivery with signed file links)
and shipments by reference or barcode. The stop comes narrowed to the actor; search narrows
with `visible_to` (organization scope, carrier), so nothing here can widen what a person
sees."""

from __future__ import annotations

from django.db.models import Case, IntegerField, Prefetch, Q, Value, When

from control_tower.tenancy.carrier_scope import visible_to
from control_tower.times import iso
from notifications.selectors import notification_timeline
from tracking.models import (
    OPEN_STOP_STATUSES,
    CustodyEntry,
    PodFile,
    PodFileKind,
    ProofOfDelivery,
    Scan,
    Shipment,
    Stop,
    StopShipment,
    StopStatus,
)
from tracking.route_summary import shipment_brief, stop_fields
from tracking.services.proof_of_delivery import pod_file_url

SEARCH_MIN_CHARS = 2
SEARCH_MAX_RESULTS = 20


def _scan_actor(scan: Scan) -> str:
    if scan.device_id:
        return f"device {scan.device.name}"
    if scan.api_key_id:
        return f"API key {scan.api_key.name}"
    return ""


def _custody_text(entry: CustodyEntry) -> str:
    details = entry.details or {}
    if details.get("action") == "reassigned":
        before, after = details.get("from_route") or {}, details.get("to_route") or {}
        return f"Reassigned from route {before.get('code')} to route {after.get('code')}"
    if entry.kind in ("status", "scan") and details.get("to"):
        text = f"{details.get('from') or 'new'} → {details['to']}"
    else:
        text = entry.kind
    if entry.custodian:
        text += f" (custodian: {entry.custodian})"
    return text


def _status_events(stop: Stop) -> list[dict]:
    events = []
    if stop.actual_arrival is not None:
        events.append({"at": stop.actual_arrival, "text": "Arrived at the stop"})
    if stop.actual_departure is not None and stop.status in (
        StopStatus.COMPLETED,
        StopStatus.FAILED,
    ):
        text = "Stop completed" if stop.status == StopStatus.COMPLETED else "Attempt failed"
        if stop.failure_reason:
            text += f": {stop.get_failure_reason_display()}"
        events.append({"at": stop.actual_departure, "text": text})
    return [{**e, "kind": "status", "actor": "", "shipment": None} for e in events]


def stop_timeline(stop: Stop, shipments: list[Shipment]) -> list[dict]:
    """Scans, custody entries and notifications of the stop's shipments and the stop's own
    events, oldest first. With several shipments each line names its shipment."""
    ids = [s.pk for s in shipments]
    references = {s.pk: s.reference for s in shipments}
    prefix = len(ids) > 1
    items = []
    for scan in (
        Scan.objects.filter(shipment_id__in=ids)
        .select_related("device", "api_key")
        .order_by("occurred_at", "pk")
    ):
        text = f"Scan {scan.get_scan_type_display().lower()}: {scan.get_result_display().lower()}"
        items.append(
            {
                "at": scan.occurred_at,
                "kind": "scan",
                "text": text,
                "actor": _scan_actor(scan),
                "shipment": scan.shipment_id,
            }
        )
    for entry in CustodyEntry.objects.filter(shipment_id__in=ids).order_by(
        "occurred_at", "shipment_id", "sequence"
    ):
        items.append(
            {
                "at": entry.occurred_at,
                "kind": "custody",
                "text": _custody_text(entry),
                "actor": entry.actor,
                "shipment": entry.shipment_id,
            }
        )
    items.extend(_status_events(stop))
    items.extend(notification_timeline(ids))
    items.sort(key=lambda item: item["at"])
    for item in items:
        if prefix and item["shipment"]:
            item["text"] = f"{references[item['shipment']]}: {item['text']}"
        item["at"] = iso(item["at"])
    return items


def _link(request, pod_file: PodFile | None) -> tuple[str | None, str | None]:
    if pod_file is None:
        return None, None
    path, expires = pod_file_url(pod_file)
    return request.build_absolute_uri(path), iso(expires)


def stop_proofs(stop: Stop, shipments: list[Shipment], request) -> list[dict]:
    """Proofs of delivery of the stop (or of its shipments), newest first, with signed links
    to the first photo and the signature (short-lived: fetch the details again for fresh
    ones)."""
    pods = (
        ProofOfDelivery.objects.filter(
            Q(stop_id=stop.pk) | Q(shipment_id__in=[s.pk for s in shipments])
        )
        .prefetch_related(Prefetch("files", queryset=PodFile.objects.order_by("kind", "pk")))
        .order_by("-captured_at", "-pk")
    )
    proofs = []
    for pod in pods:
        files = list(pod.files.all())
        photo = next((f for f in files if f.kind == PodFileKind.PHOTO), None)
        signature = next((f for f in files if f.kind == PodFileKind.SIGNATURE), None)
        photo_url, photo_expires = _link(request, photo)
        signature_url, signature_expires = _link(request, signature)
        proofs.append(
            {
                "id": pod.pk,
                "shipment": pod.shipment_id,
                "captured_at": iso(pod.captured_at),
                "recipient_name": pod.recipient_name,
                "photo_url": photo_url,
                "signature_url": signature_url,
                "links_expire_at": photo_expires or signature_expires,
                "outside_geofence": pod.outside_geofence,
                # A failed attempt's evidence (the driver app's photo of a closed gate) is
                # shown beside the proofs, labelled as what it is.
                "outcome": pod.outcome,
                "failure_reason": pod.get_failure_reason_display() if pod.failure_reason else "",
                "left_at": pod.get_left_at_display() if pod.left_at else "",
            }
        )
    return proofs


def stop_details(stop: Stop, request) -> dict:
    """`stop` comes with `route__carrier`, `route__driver` and `route__vehicle` loaded."""
    shipments = list(stop.shipments.order_by("pk"))
    route = stop.route
    return {
        **stop_fields(stop, shipments),
        "kind": stop.kind,
        "planned_arrival": iso(stop.planned_arrival),
        "actual_arrival": iso(stop.actual_arrival),
        "actual_departure": iso(stop.actual_departure),
        "failure_reason": stop.failure_reason or None,
        "notes": stop.notes,
        "route": {"id": route.pk, "code": route.code, "status": route.status},
        "carrier": {"id": route.carrier_id, "code": route.carrier.code, "name": route.carrier.name},
        "driver": None
        if route.driver_id is None
        else {"id": route.driver_id, "name": route.driver.name, "phone": route.driver.phone},
        "vehicle": None
        if route.vehicle_id is None
        else {"id": route.vehicle_id, "label": route.vehicle.plate},
        "timeline": stop_timeline(stop, shipments),
        "proofs": stop_proofs(stop, shipments, request),
    }


def shipments_search(*, actor, text: str) -> list[dict]:
    """Shipments whose reference or barcode equals `text` (first) or starts with it,
    case-insensitively, at most SEARCH_MAX_RESULTS, each with its current stop and route (an
    open stop first, else the latest)."""
    matches = list(
        visible_to(actor, Shipment)
        .filter(Q(reference__istartswith=text) | Q(barcode__istartswith=text))
        .annotate(
            exact=Case(
                When(Q(reference__iexact=text) | Q(barcode__iexact=text), then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            )
        )
        .order_by("exact", "reference", "pk")[:SEARCH_MAX_RESULTS]
    )
    # A carrier user sees only the stops of its carrier's routes.
    links = (
        visible_to(actor, StopShipment)
        .filter(shipment_id__in=[s.pk for s in matches])
        .select_related("stop")
        .order_by("-stop__route__date", "-stop_id")
    )
    best: dict[int, Stop] = {}
    for link in links:
        current = best.get(link.shipment_id)
        is_open = link.stop.status in OPEN_STOP_STATUSES
        if current is None or (is_open and current.status not in OPEN_STOP_STATUSES):
            best[link.shipment_id] = link.stop
    results = []
    for shipment in matches:
        stop = best.get(shipment.pk)
        results.append(
            {
                "shipment": shipment_brief(shipment),
                "stop": stop.pk if stop else None,
                "route": stop.route_id if stop else None,
            }
        )
    return results
