"""predicted_late through the outbox relay: `stop.eta_changed` against the promised window.

Every time is explicit, on a past day (T0): the rule must judge an ETA by the route's own
times, never by the wall clock (a replay or a late relay delivers long after the fact).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from control_tower.events import catalog, emit, relay
from exceptions.models import Alert, AlertState
from exceptions.rules import predicted_late as rule
from tests.factories import DeviceFactory, DriverFactory, RouteFactory, StopFactory
from tracking.models import DevicePosition, EtaRevision
from tracking.services.stops import stop_arrive, stop_complete

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # months before the wall clock of any run
END = T0 + timedelta(minutes=20)  # the window closes 20 min after T0: a short horizon


@pytest.fixture
def stop(scoped, tenant):
    driver = DriverFactory(organization=scoped, carrier=tenant.carrier)
    route = RouteFactory(
        organization=scoped,
        carrier=tenant.carrier,
        driver=driver,
        status="in_progress",
        date=T0.date(),
        planned_start=T0 - timedelta(hours=2),
        started_at=T0 - timedelta(hours=2),
    )
    DeviceFactory(organization=scoped, carrier=tenant.carrier, driver=driver)
    return StopFactory(
        organization=scoped,
        route=route,
        window_start=END - timedelta(hours=2),
        window_end=END,
    )


def heard(stop, at: datetime) -> None:
    """The route's phone reported a good fix taken at `at`."""
    device = stop.route.driver.devices.get()
    DevicePosition.objects.update_or_create(
        device=device,
        defaults={
            "organization_id": device.organization_id,
            "fix_time": at,
            "received_at": at,
            "location": stop.location,
            "source": "native",
        },
    )


def predict(stop, at: datetime, *, p50_past_end_min: float, p90_past_end_min: float, fix=True):
    """What the ETA engine does at `at` (its `now`): store the ETA on the stop, keep a revision,
    emit `stop.eta_changed`; then the relay delivers (now, on the wall clock). `fix`: the phone
    reported at `at` (the position the ETA rests on)."""
    if fix:
        heard(stop, at)
    stop.eta = END + timedelta(minutes=p50_past_end_min)
    stop.eta_latest = END + timedelta(minutes=p90_past_end_min)
    stop.eta_earliest = stop.eta - timedelta(minutes=5)
    stop.eta_updated_at = at
    stop.save()
    EtaRevision.objects.create(
        organization_id=stop.organization_id,
        stop=stop,
        computed_at=at,
        eta=stop.eta,
        earliest=stop.eta_earliest,
        latest=stop.eta_latest,
        method="test",
    )
    emit(
        catalog.stop_eta_changed(
            stop.route,
            stop_id=stop.pk,
            sequence=stop.sequence,
            eta=stop.eta,
            earliest=stop.eta_earliest,
            latest=stop.eta_latest,
        )
    )
    relay.relay_pending()


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def unresolved():
    return list(Alert.objects.filter(kind="predicted_late").exclude(state=AlertState.RESOLVED))


def test_margin_grows_with_the_time_still_to_go():
    assert rule.margin(at(20), at(20)) == rule.LATE_MARGIN
    assert rule.margin(at(120), at(20)) == rule.LATE_MARGIN + timedelta(minutes=100) * 0.2
    assert rule.margin(at(0), at(20)) == rule.LATE_MARGIN  # already overdue: no negative share


def test_p90_past_is_at_risk_then_p50_past_is_late_one_alert(stop):
    # The margin is 5 + 0.2 x (P50 - computed_at): 7, 6, 5 min, then 8.4, 7.6, 6.8 min.
    assert rule.CONFIRMATIONS == 3
    predict(stop, at(0), p50_past_end_min=-10, p90_past_end_min=15)
    predict(stop, at(5), p50_past_end_min=-10, p90_past_end_min=16)
    assert unresolved() == []
    predict(stop, at(10), p50_past_end_min=-10, p90_past_end_min=17)
    (alert,) = unresolved()
    assert alert.severity == "medium" and alert.detail["state"] == "at_risk"
    assert alert.subject_type == "stop" and alert.subject_id == str(stop.pk)
    assert alert.route_id == stop.route_id and alert.stop_id == stop.pk
    assert alert.started_at == at(10)  # the confirming prediction, in the route's time

    predict(stop, at(15), p50_past_end_min=12, p90_past_end_min=25)
    predict(stop, at(20), p50_past_end_min=13, p90_past_end_min=26)
    assert unresolved()[0].severity == "medium"  # "late" twice is not confirmed yet
    predict(stop, at(25), p50_past_end_min=14, p90_past_end_min=27)

    (alert,) = unresolved()
    assert alert.severity == "high" and alert.detail["state"] == "late"
    assert Alert.objects.count() == 1


def test_quiet_on_the_boundary(stop):
    """Exactly the margin past the window is not past it: with the ETA m past the window end,
    computed c before it, m = 5 + 0.2 x (c + m), so m = (5 + 0.2 c) / 0.8."""
    for minute, boundary in ((0, 11.25), (5, 10.0), (10, 8.75)):
        predict(stop, at(minute), p50_past_end_min=boundary, p90_past_end_min=boundary)
        stop.refresh_from_db()
        assert stop.eta - END == rule.margin(stop.eta, at(minute))
    assert Alert.objects.count() == 0


def test_jumps_do_not_raise_three_in_a_row_do(stop):
    predict(stop, at(0), p50_past_end_min=-15, p90_past_end_min=-5)
    predict(stop, at(5), p50_past_end_min=25, p90_past_end_min=40)  # one recompute jumps
    predict(stop, at(10), p50_past_end_min=-15, p90_past_end_min=-5)
    predict(stop, at(15), p50_past_end_min=25, p90_past_end_min=40)  # two in a row
    predict(stop, at(20), p50_past_end_min=26, p90_past_end_min=41)
    assert Alert.objects.count() == 0

    predict(stop, at(25), p50_past_end_min=27, p90_past_end_min=42)

    (alert,) = unresolved()
    assert alert.severity == "high" and alert.started_at == at(25)


def test_far_ahead_a_small_overrun_is_not_late(stop):
    """Two and a half hours ahead the margin is 5 + 0.2 x 160 = 37 min: 20 min past (and
    even the P90 20 min past) raises nothing."""
    stop.window_end = END + timedelta(hours=2)
    stop.save()
    for minute in (0, 5, 10, 15):
        # END here is the fixture's: window_end - 2 h; the ETA is 20 min past the new end.
        predict(stop, at(minute), p50_past_end_min=140, p90_past_end_min=140)
    assert Alert.objects.count() == 0


def confirmed_late(stop):
    for minute in (0, 5, 10):
        predict(stop, at(minute), p50_past_end_min=12, p90_past_end_min=25)


def test_clears_only_past_the_hysteresis(stop):
    confirmed_late(stop)
    assert len(unresolved()) == 1

    predict(stop, at(15), p50_past_end_min=-3, p90_past_end_min=5)  # inside, not by 5 min
    assert len(unresolved()) == 1

    predict(stop, at(20), p50_past_end_min=-6, p90_past_end_min=3)

    assert unresolved() == []
    (alert,) = Alert.objects.all()
    assert alert.auto_resolved and alert.resolution_note == "back inside the window"


def test_clears_when_the_stop_is_done(stop):
    confirmed_late(stop)
    assert len(unresolved()) == 1

    stop_complete(stop=stop, actor=None, at=at(30))
    relay.relay_pending()

    assert unresolved() == []


def test_no_new_alert_once_at_the_door(stop):
    """Arrived past the window: the lateness is a fact on the map, not a prediction."""
    stop_arrive(stop=stop, actor=None, at=at(30))
    relay.relay_pending()
    stop.refresh_from_db()
    predict(stop, at(31), p50_past_end_min=11, p90_past_end_min=12)
    predict(stop, at(36), p50_past_end_min=16, p90_past_end_min=17)
    predict(stop, at(41), p50_past_end_min=21, p90_past_end_min=22)

    assert Alert.objects.count() == 0


def test_a_late_relay_still_raises(stop):
    """The relay delivers months after the prediction (this test's wall clock): the ETA was
    fresh when computed, so the alert is raised. (The wall-clock check silenced this.)"""
    confirmed_late(stop)

    assert len(unresolved()) == 1


def test_no_raise_from_an_eta_without_a_recent_fix(stop):
    """The phone went silent at T0; ETAs computed 20 min later extrapolate from old data."""
    heard(stop, at(0))
    predict(stop, at(20), p50_past_end_min=12, p90_past_end_min=25, fix=False)
    predict(stop, at(25), p50_past_end_min=13, p90_past_end_min=26, fix=False)
    predict(stop, at(30), p50_past_end_min=14, p90_past_end_min=27, fix=False)

    assert Alert.objects.count() == 0


def test_no_raise_from_an_eta_the_vehicle_has_overtaken(stop):
    """Three late ETAs, computed at T0, +5, +10; the vehicle has reported 20 min since without a
    recompute when the third is delivered: the stored ETA no longer says where it is."""
    predict(stop, at(0), p50_past_end_min=12, p90_past_end_min=25)
    predict(stop, at(5), p50_past_end_min=12, p90_past_end_min=25)
    heard(stop, at(10))
    stop.eta, stop.eta_latest = END + timedelta(minutes=12), END + timedelta(minutes=25)
    stop.eta_updated_at = at(10)
    stop.save()
    EtaRevision.objects.create(
        organization_id=stop.organization_id,
        stop=stop,
        computed_at=at(10),
        eta=stop.eta,
        earliest=stop.eta,
        latest=stop.eta_latest,
        method="test",
    )
    heard(stop, at(30))  # newer fixes, no recompute
    emit(
        catalog.stop_eta_changed(
            stop.route,
            stop_id=stop.pk,
            sequence=stop.sequence,
            eta=stop.eta,
            earliest=stop.eta,
            latest=stop.eta_latest,
        )
    )
    relay.relay_pending()

    assert Alert.objects.count() == 0


def test_a_late_old_event_decides_from_the_stop_as_it_is_now(stop):
    """A replayed or late event carrying an old, late ETA raises nothing once the stored ETA
    is back inside the window: the rule reads the current row, not the event's copy."""
    for minute in (0, 5, 10):
        predict(stop, at(minute), p50_past_end_min=-30, p90_past_end_min=-20)
    emit(
        catalog.stop_eta_changed(
            stop.route,
            stop_id=stop.pk,
            sequence=stop.sequence,
            eta=END + timedelta(minutes=30),
            earliest=END,
            latest=END + timedelta(minutes=45),
        )
    )
    relay.relay_pending()

    assert Alert.objects.count() == 0
