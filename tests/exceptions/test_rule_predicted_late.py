"""predicted_late through the outbox relay: `stop.eta_changed` against the promised window."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from control_tower.events import catalog, emit, relay
from exceptions.models import Alert, AlertState
from tests.factories import RouteFactory, StopFactory
from tracking.services.stops import stop_complete

pytestmark = pytest.mark.django_db


@pytest.fixture
def stop(scoped, tenant):
    route = RouteFactory(organization=scoped, carrier=tenant.carrier, status="in_progress")
    end = timezone.now() + timedelta(hours=1)
    return StopFactory(
        organization=scoped, route=route, window_start=end - timedelta(hours=2), window_end=end
    )


def predict(stop, *, p50_past_end_min: float, p90_past_end_min: float):
    """Store a new ETA on the stop and emit its event, as the ETA engine does; then relay."""
    end = stop.window_end
    stop.eta = end + timedelta(minutes=p50_past_end_min)
    stop.eta_latest = end + timedelta(minutes=p90_past_end_min)
    stop.eta_earliest = stop.eta - timedelta(minutes=5)
    stop.eta_updated_at = timezone.now()
    stop.save()
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


def unresolved():
    return list(Alert.objects.filter(kind="predicted_late").exclude(state=AlertState.RESOLVED))


def test_p90_past_the_window_is_at_risk_then_p50_is_late_one_alert(stop):
    predict(stop, p50_past_end_min=-10, p90_past_end_min=5)
    (alert,) = unresolved()
    assert alert.severity == "medium" and alert.detail["state"] == "at_risk"
    assert alert.subject_type == "stop" and alert.subject_id == str(stop.pk)
    assert alert.route_id == stop.route_id and alert.stop_id == stop.pk

    predict(stop, p50_past_end_min=3, p90_past_end_min=20)
    predict(stop, p50_past_end_min=4, p90_past_end_min=21)  # the same condition again

    (alert,) = unresolved()
    assert alert.severity == "high" and alert.detail["state"] == "late"
    assert Alert.objects.count() == 1


def test_quiet_at_the_boundary_and_inside(stop):
    predict(stop, p50_past_end_min=-10, p90_past_end_min=0)  # exactly the window end: inside
    predict(stop, p50_past_end_min=-30, p90_past_end_min=-20)
    assert Alert.objects.count() == 0


def test_clears_only_past_the_hysteresis_margin(stop):
    predict(stop, p50_past_end_min=-10, p90_past_end_min=5)
    predict(stop, p50_past_end_min=-10, p90_past_end_min=-1)  # inside, within the margin
    assert len(unresolved()) == 1

    predict(stop, p50_past_end_min=-10, p90_past_end_min=-3)

    assert unresolved() == []
    (alert,) = Alert.objects.all()
    assert alert.auto_resolved and alert.resolution_note == "back inside the window"


def test_clears_when_the_stop_is_done(stop):
    predict(stop, p50_past_end_min=5, p90_past_end_min=15)
    assert len(unresolved()) == 1

    stop_complete(stop=stop, actor=None)
    relay.relay_pending()

    assert unresolved() == []


def test_stale_event_decides_from_the_stop_as_it_is_now(stop):
    """A replayed or late event carrying an old, late ETA raises nothing once the stored ETA
    is back inside the window: the rule reads the current row, not the event's copy."""
    end = stop.window_end
    stop.eta, stop.eta_latest = end - timedelta(minutes=30), end - timedelta(minutes=20)
    stop.eta_updated_at = timezone.now()
    stop.save()
    emit(
        catalog.stop_eta_changed(
            stop.route,
            stop_id=stop.pk,
            sequence=stop.sequence,
            eta=end + timedelta(minutes=10),
            earliest=end,
            latest=end + timedelta(minutes=30),
        )
    )
    relay.relay_pending()

    assert Alert.objects.count() == 0


def test_a_stale_eta_never_raises(stop):
    end = stop.window_end
    stop.eta, stop.eta_latest = end + timedelta(minutes=10), end + timedelta(minutes=30)
    stop.eta_updated_at = timezone.now() - timedelta(minutes=16)
    stop.save()
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
