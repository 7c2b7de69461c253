"""The demo's route for a person: DRV-001 (the login driver@demo.example) gets one planned route
of the day, a handful of stops near the La Serena hub, to work by hand in the driver app
(/driver/): scan the parcels, start, arrive, deliver with a photo (one parcel asks for a PIN),
fail or skip. The fleet simulator never drives it (the rule is `worked_in_the_driver_app`,
tracking/simulation/runner.py); the console shows it like any other route."""

from __future__ import annotations

from datetime import date as Date
from datetime import datetime, timedelta

from django.contrib.auth.hashers import check_password

from tracking.geo import point_distance_m
from tracking.models import Route, Shipment

PERSON_DRIVER = "DRV-001"
PERSON_EMAIL = "driver@demo.example"
PERSON_HUB = "LSR"
PERSON_STOPS = 6
# The recipient's PIN of one parcel (only its hash is stored): printed by `demo_driver_route`,
# and told to the driver by the world's recipient when a history replay plays the route out.
PERSON_PIN = "4321"
# Planned to leave when the demo is loaded (today's other routes left two hours earlier) and
# given the whole afternoon: the person works at their own pace.
PERSON_START_AFTER = timedelta(hours=2)
PERSON_WINDOW = timedelta(hours=6)


def person_route_code(hub_code: str = PERSON_HUB) -> str:
    return f"{hub_code}-APP"


def take_person_items(items: list[dict], hubs: dict, day_start: datetime) -> list[dict]:
    """The PERSON_STOPS shipments of the day's `items` nearest the La Serena hub (at most a
    third of that hub's: the fleet's routes of a small day stay long enough for the world's
    mishaps), each now promised in the person's afternoon; the second one asks for PERSON_PIN
    at the door. Returns the items chosen (still in `items`: they are received at the hub with
    the others)."""
    hub = hubs[PERSON_HUB]
    at_hub = [item for item in items if item["hub"] == hub]
    near = sorted(at_hub, key=lambda item: point_distance_m(hub.location, item["location"]))
    near = near[: min(PERSON_STOPS, len(at_hub) // 3)]
    start = day_start + PERSON_START_AFTER
    for index, item in enumerate(near):
        item["promised_window_start"] = start
        item["promised_window_end"] = start + PERSON_WINDOW
        if index == 1:
            item["delivery_pin"] = PERSON_PIN
    return near


def person_parcels(day: Date) -> tuple[Route | None, list[tuple[int, str, Shipment, str]]]:
    """PERSON_DRIVER's route of `day` and its parcels: (stop sequence, address, shipment,
    its PIN or "") in stop order. For `manage.py demo_driver_route`."""
    route = (
        Route.objects.filter(date=day, driver__external_id=PERSON_DRIVER)
        .order_by("planned_start", "code")
        .first()
    )
    if route is None:
        return None, []
    parcels = []
    for stop in route.stops.order_by("sequence").prefetch_related("shipments"):
        for shipment in sorted(stop.shipments.all(), key=lambda s: s.pk):
            pin = (
                PERSON_PIN
                if shipment.delivery_pin_hash
                and check_password(PERSON_PIN, shipment.delivery_pin_hash)
                else ""
            )
            parcels.append((stop.sequence, stop.address, shipment, pin))
    return route, parcels
