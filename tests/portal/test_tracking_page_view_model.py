"""The tracking page's view model (portal/tracking_page/selectors.py): the honest ETA window,
the timeline in plain words, "N stops before yours", when the driver's position may be shown,
"last seen", the proof of delivery and a failed attempt, in Spanish and English."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.contrib.gis.geos import Point
from django.utils import timezone, translation

from portal.tracking_page.privacy import coarse_distance_km, is_live
from portal.tracking_page.selectors import minutes_ago_text, state_fingerprint, tracking_state
from tests.factories import (
    DeviceFactory,
    DriverFactory,
    HubFactory,
    RouteFactory,
    ShipmentFactory,
    VehicleFactory,
    stop_with_shipments,
)
from tracking.eta_window import honest_window, rounding_step_min
from tracking.models import (
    DevicePosition,
    PodFile,
    ProofOfDelivery,
    ShipmentEvent,
    Stop,
    StopShipment,
)

SANTIAGO = ZoneInfo("America/Santiago")
NOW = dt.datetime(2026, 12, 7, 15, 0, tzinfo=dt.UTC)  # 12:00 in Santiago (UTC-3, summer)


# ---------------------------------------------------------------------------------------------
# Pure rules
# ---------------------------------------------------------------------------------------------


def test_window_is_rounded_outward_and_narrows_as_the_arrival_nears():
    far_start, far_end = honest_window(
        earliest=NOW + dt.timedelta(minutes=200, seconds=20),
        latest=NOW + dt.timedelta(minutes=251),
        now=NOW,
        zone=SANTIAGO,
    )
    # 15:20:20 → 15:00 (30-minute step, down), 16:11 → 16:30 (up)
    assert (far_start.strftime("%H:%M"), far_end.strftime("%H:%M")) == ("15:00", "16:30")
    near_start, near_end = honest_window(
        earliest=NOW + dt.timedelta(minutes=12, seconds=30),
        latest=NOW + dt.timedelta(minutes=31),
        now=NOW,
        zone=SANTIAGO,
    )
    assert (near_start.strftime("%H:%M"), near_end.strftime("%H:%M")) == ("12:10", "12:35")
    assert near_start <= NOW + dt.timedelta(minutes=12, seconds=30)  # never narrower
    assert near_end >= NOW + dt.timedelta(minutes=31)
    assert near_end - near_start < far_end - far_start
    assert [rounding_step_min(m) for m in (300, 90, 30, 5)] == [30, 15, 10, 5]


def test_window_is_never_narrower_than_ten_minutes_nor_in_the_past():
    start, end = honest_window(
        earliest=NOW - dt.timedelta(minutes=3),
        latest=NOW + dt.timedelta(minutes=1),
        now=NOW,
        zone=SANTIAGO,
    )
    assert start.strftime("%H:%M") == "12:00"
    assert end - start == dt.timedelta(minutes=10)


def test_live_only_when_next_or_within_the_live_minutes():
    common = {"route_running": True, "stop_open": True, "now": NOW, "live_minutes": 15}
    assert is_live(stops_before=0, eta=None, **common)
    assert is_live(stops_before=3, eta=NOW + dt.timedelta(minutes=14), **common)
    assert not is_live(stops_before=3, eta=NOW + dt.timedelta(minutes=16), **common)
    assert not is_live(stops_before=3, eta=None, **common)
    assert not is_live(**{**common, "route_running": False}, stops_before=0, eta=None)
    assert not is_live(**{**common, "stop_open": False}, stops_before=0, eta=None)


def test_coarse_distance_is_rounded_up():
    assert coarse_distance_km(-29.9, -71.25, -29.9, -71.2501) == 1
    assert coarse_distance_km(-29.9, -71.25, -29.93, -71.25) == 4  # 3.3 km
    assert coarse_distance_km(-29.9, -71.25, -30.0, -71.25) == 15  # 11.1 km


# ---------------------------------------------------------------------------------------------
# The view model over real rows
# ---------------------------------------------------------------------------------------------


def _route_with_stops(org, *, stops=3, status="in_progress", with_phone=True):
    driver = DriverFactory(organization=org, name="Camila Soto Díaz")
    vehicle = VehicleFactory(organization=org, carrier=driver.carrier)
    route = RouteFactory(
        organization=org,
        carrier=driver.carrier,
        hub=HubFactory(organization=org),
        driver=driver,
        vehicle=vehicle,
        status=status,
        date=NOW.astimezone(SANTIAGO).date(),
    )
    made = []
    for sequence in range(1, stops + 1):
        stop = stop_with_shipments(
            route=route,
            sequence=sequence,
            location=Point(-71.25 + sequence * 0.01, -29.9, srid=4326),
            eta=NOW + dt.timedelta(minutes=30 * sequence),
            eta_earliest=NOW + dt.timedelta(minutes=30 * sequence - 7),
            eta_latest=NOW + dt.timedelta(minutes=30 * sequence + 9),
        )
        made.append(stop)
    if with_phone:
        device = DeviceFactory(organization=org, carrier=driver.carrier, vehicle=vehicle)
        DevicePosition.objects.create(
            organization=org,
            device=device,
            fix_time=NOW - dt.timedelta(seconds=20),
            received_at=NOW,
            location=Point(-71.2123456, -29.8876543, srid=4326),
            source="native",
        )
    return route, made


def _shipment_of(stop):
    return stop.shipments.get()


def _out_for_delivery(shipment):
    for status in ("at_hub", "out_for_delivery"):
        ShipmentEvent.objects.create(
            organization=shipment.organization,
            shipment=shipment,
            from_status=shipment.status,
            to_status=status,
            occurred_at=NOW - dt.timedelta(hours=2),
        )
        shipment.status = status
    shipment.save(update_fields=["status"])


def test_a_later_stop_sees_a_window_a_count_and_no_position(scoped):
    org = scoped
    _route, stops = _route_with_stops(org)
    shipment = _shipment_of(stops[2])
    _out_for_delivery(shipment)
    state = tracking_state(shipment=shipment, organization=org, language="en", now=NOW)
    assert state["status_text"] == "Out for delivery"
    assert [s["state"] for s in state["timeline"]] == ["done", "done", "current", "todo"]
    assert state["eta"]["source"] == "eta"
    # 13:23..13:39 local, 83 minutes away → 15-minute steps: 13:15..13:45
    assert state["eta"]["text"] == "Between 1:15 p.m. and 1:45 p.m."
    assert state["stops_before"] == 2
    assert state["stops_before_text"] == "2 stops before yours"
    assert state["driver"] == {"first_name": "Camila"}
    assert state["live"] is False
    assert state["vehicle"] is None and state["destination"] is None
    assert state["distance_text"] == "The driver is about 2 km away"
    assert "-71.21" not in repr(state) and "-29.88" not in repr(state)


def test_the_next_stop_sees_the_driver_exactly_in_spanish(scoped):
    org = scoped
    _route, stops = _route_with_stops(org)
    Stop.objects.filter(pk=stops[0].pk).update(status="completed")
    shipment = _shipment_of(stops[1])
    _out_for_delivery(shipment)
    state = tracking_state(shipment=shipment, organization=org, language="es", now=NOW)
    assert state["status_text"] == "En reparto"
    assert state["stops_before_text"] == "Eres la próxima parada del conductor"
    assert state["live"] is True
    assert state["vehicle"]["lat"] == pytest.approx(-29.88765)
    assert state["vehicle"]["lon"] == pytest.approx(-71.21235)
    assert state["destination"] == {"lat": -29.9, "lon": -71.23}
    assert state["eta"]["text"].startswith("Entre las 12:")
    assert state["last_seen_text"] == ""


def test_within_the_live_minutes_is_live_even_with_stops_before(scoped):
    org = scoped
    org.tracking_live_minutes = 45
    _route, stops = _route_with_stops(org)
    shipment = _shipment_of(stops[1])  # ETA in 60 min, one stop before
    _out_for_delivery(shipment)
    assert not tracking_state(shipment=shipment, organization=org, language="en", now=NOW)["live"]
    later = NOW + dt.timedelta(minutes=20)
    assert tracking_state(shipment=shipment, organization=org, language="en", now=later)["live"]


def test_a_stale_fix_says_when_it_was_last_seen(scoped):
    org = scoped
    _route, stops = _route_with_stops(org)
    shipment = _shipment_of(stops[0])
    _out_for_delivery(shipment)
    later = NOW + dt.timedelta(minutes=7)
    state = tracking_state(shipment=shipment, organization=org, language="en", now=later)
    assert state["last_seen_text"] == "Last seen 7 minutes ago"
    es = tracking_state(shipment=shipment, organization=org, language="es", now=later)
    assert es["last_seen_text"] == "Visto por última vez hace 7 minutos"


@pytest.mark.parametrize(
    ("minutes", "en", "es"),
    [
        (119, "Last seen 119 minutes ago", "Visto por última vez hace 119 minutos"),
        (125, "Last seen 2 hours ago", "Visto por última vez hace 2 horas"),
        (21_289, "Last seen 14 days ago", "Visto por última vez hace 14 días"),
    ],
)
def test_a_long_silence_is_told_in_hours_or_days(minutes, en, es):
    with translation.override("en"):
        assert minutes_ago_text(minutes) == en
    with translation.override("es"):
        assert minutes_ago_text(minutes) == es


def test_before_the_route_starts_the_promise_is_shown(scoped):
    org = scoped
    shipment = ShipmentFactory(
        organization=org,
        promised_window_start=NOW + dt.timedelta(days=1),
        promised_window_end=NOW + dt.timedelta(days=1, hours=2),
    )
    state = tracking_state(shipment=shipment, organization=org, language="en", now=NOW)
    assert state["eta"] == {
        "source": "promise",
        "start": "2026-12-08T15:00:00+00:00",
        "end": "2026-12-08T17:00:00+00:00",
        "day": "tomorrow",
        "text": "Between noon and 2 p.m.",
        "width_min": 120,
    }
    assert state["timeline"][0] == {
        "key": "info_received",
        "label": "Order received",
        "state": "current",
        "at": state["timeline"][0]["at"],
    }
    assert state["stops_before"] is None and state["driver"] is None and not state["live"]


def test_after_delivery_the_proof_with_signed_links_and_no_driver(scoped):
    org = scoped
    _route, stops = _route_with_stops(org)
    shipment = _shipment_of(stops[0])
    _out_for_delivery(shipment)
    Stop.objects.filter(pk=stops[0].pk).update(status="completed")
    shipment.status = "delivered"
    shipment.save(update_fields=["status"])
    pod = ProofOfDelivery.objects.create(
        organization=org,
        idempotency_key="k1",
        shipment=shipment,
        stop=stops[0],
        recipient_name="Ana Pérez",
        captured_at=NOW - dt.timedelta(minutes=5),
        note="With the concierge",
    )
    for kind in ("photo", "signature"):
        PodFile.objects.create(
            organization=org,
            pod=pod,
            kind=kind,
            storage_name=f"pod/{kind}-x.webp",
            content_type="image/webp",
            size_bytes=10,
            width=1,
            height=1,
            sha256="0" * 64,
        )
    state = tracking_state(shipment=shipment, organization=org, language="en", now=NOW)
    assert state["timeline"][-1]["state"] == "done"
    assert state["eta"] is None and state["driver"] is None and state["vehicle"] is None
    assert state["pod"]["recipient_name"] == "Ana Pérez"
    assert state["pod"]["left"] == "With the concierge"
    assert state["pod"]["photos"][0].startswith("/pod-files/")
    assert state["pod"]["signature"].startswith("/pod-files/")
    # A new build signs new links: the fingerprint ignores them, the socket sends nothing new.
    again = tracking_state(shipment=shipment, organization=org, language="en", now=NOW)
    assert state_fingerprint(again) == state_fingerprint(state)
    # The driver app's safe place comes first, in the recipient's language; a failed attempt's
    # evidence is never shown as the proof of delivery.
    ProofOfDelivery.objects.filter(pk=pod.pk).update(left_at="reception")
    ProofOfDelivery.objects.create(
        organization=org,
        idempotency_key="k2",
        shipment=shipment,
        captured_at=NOW - dt.timedelta(minutes=1),
        outcome="attempt_failed",
        failure_reason="not_home",
    )
    spanish = tracking_state(shipment=shipment, organization=org, language="es", now=NOW)
    assert spanish["pod"]["left"] == "Recepción o conserjería · With the concierge"
    assert spanish["pod"]["recipient_name"] == "Ana Pérez"


def test_a_failed_attempt_says_why_and_what_happens_next(scoped):
    org = scoped
    _route, stops = _route_with_stops(org)
    shipment = _shipment_of(stops[0])
    _out_for_delivery(shipment)
    Stop.objects.filter(pk=stops[0].pk).update(status="failed", failure_reason="not_home")
    shipment.status = "attempt_failed"
    shipment.save(update_fields=["status"])
    state = tracking_state(shipment=shipment, organization=org, language="en", now=NOW)
    assert state["timeline"][-1] == {
        "key": "attempt_failed",
        "label": "Delivery attempt failed",
        "state": "failed",
        "at": state["timeline"][-1]["at"],
    }
    assert state["failure"]["reason"] == "Nobody was home"
    assert "next delivery day" in state["failure"]["next"]
    # A new attempt is planned for tomorrow on another route: the page says so.
    tomorrow = RouteFactory(
        organization=org,
        carrier=_route.carrier,
        hub=_route.hub,
        status="planned",
        date=(NOW + dt.timedelta(days=1)).astimezone(SANTIAGO).date(),
    )
    retry = Stop.objects.create(
        organization=org,
        route=tomorrow,
        sequence=1,
        location=stops[0].location,
        window_start=NOW + dt.timedelta(days=1),
        window_end=NOW + dt.timedelta(days=1, hours=3),
    )
    StopShipment.objects.create(organization=org, stop=retry, shipment=shipment)
    state = tracking_state(shipment=shipment, organization=org, language="es", now=NOW)
    assert state["failure"] == {
        "reason": "No había nadie en casa",
        "next": "Lo intentaremos de nuevo mañana.",
    }


def test_reads_are_a_fixed_handful_of_queries(scoped, django_assert_max_num_queries):
    org = scoped
    _route, stops = _route_with_stops(org, stops=30)
    shipment = _shipment_of(stops[20])
    _out_for_delivery(shipment)
    with django_assert_max_num_queries(8):
        tracking_state(shipment=shipment, organization=org, language="en", now=NOW)


def test_time_is_the_organizations_zone(scoped):
    org = scoped
    org.time_zone = "Europe/Madrid"
    _route, stops = _route_with_stops(org)
    shipment = _shipment_of(stops[0])
    _out_for_delivery(shipment)
    state = tracking_state(shipment=shipment, organization=org, language="es", now=NOW)
    # 15:23..15:39 UTC → 16:23..16:39 Madrid, 23 minutes away → 10-minute steps
    assert state["eta"]["text"] == "Entre las 16:20 y las 16:40"
    assert timezone.is_aware(dt.datetime.fromisoformat(state["eta"]["start"]))
