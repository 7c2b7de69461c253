"""What recipients do through their link: each action through its service, with its events,
its audit row, idempotency by key, validation and the per-link rate limit."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from carriers.models import Driver
from control_tower.errors import Conflict, TooManyAttempts
from control_tower.events.models import OutboxEvent
from control_tower.ratelimit import ratelimit_reset
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from tests.factories import RouteFactory, ShipmentFactory, stop_with_shipments
from tracking.errors import InvalidInput
from tracking.models import (
    CustodyEntry,
    CustomerAction,
    DeliveryRating,
    Shipment,
    Stop,
    StopShipment,
)
from tracking.services import customer_actions as actions
from tracking.services import shipment_transition, stop_arrive, stop_complete
from tracking.services.custody import custody_verify
from tracking.services.tracking_links import link_issue, link_resolve

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_limits():
    ratelimit_reset()
    yield
    ratelimit_reset()


class Scene:
    """An in-progress route of today whose stop 1 hands over two parcels (ours and a
    neighbour's) and stop 2 one; a tracking link to ours."""

    def __init__(self, tenant):
        self.org = tenant.organization
        with organization_scope(self.org):
            # The tenant's person with the driver role drives it (the driver app's API).
            self.driver = Driver.objects.get(user=tenant.user(Role.DRIVER))
            self.route = RouteFactory(
                organization=self.org,
                carrier=tenant.carrier,
                driver=self.driver,
                status="in_progress",
            )
            self.stop = stop_with_shipments(route=self.route, sequence=1, count=2)
            self.alone = stop_with_shipments(route=self.route, sequence=2, count=1)
            self.shipment, self.neighbour = list(self.stop.shipments.order_by("pk"))
            self.lonely = self.alone.shipments.get()
            for shipment in (self.shipment, self.neighbour, self.lonely):
                shipment_transition(shipment=shipment, to_status="out_for_delivery", actor=None)
            self.link, self.raw = link_issue(self.shipment, actor=None)
            self.lonely_link, _ = link_issue(self.lonely, actor=None)
        OutboxEvent.dangerously_unscoped.all().delete()  # the set-up's own events

    def events(self, type_name):
        return list(
            OutboxEvent.dangerously_unscoped.filter(type=type_name)
            .order_by("id")
            .values_list("payload", flat=True)
        )

    def reload(self, obj):
        return type(obj).dangerously_unscoped.get(pk=obj.pk)


@pytest.fixture
def scene(tenant):
    return Scene(tenant)


def test_instructions_are_stored_audited_and_announced_without_their_text(scene):
    shipment = actions.customer_set_instructions(
        scene.link, text="  Gate code 4711\x07, leave with the neighbour  ", key="form-key-0001"
    )
    assert shipment.delivery_instructions == "Gate code 4711, leave with the neighbour"
    action = CustomerAction.dangerously_unscoped.get(kind="instructions")
    assert action.link_id == scene.link.pk and action.shipment_id == scene.shipment.pk
    assert action.details["after"] == "Gate code 4711, leave with the neighbour"
    [event] = scene.events("shipment.customer_updated")
    assert event["fields"] == ["delivery_instructions"]
    assert "4711" not in str(event)
    # The same form sent twice changes nothing more.
    again = actions.customer_set_instructions(scene.link, text="other", key="form-key-0001")
    assert again.delivery_instructions == "Gate code 4711, leave with the neighbour"
    assert CustomerAction.dangerously_unscoped.count() == 1
    assert len(scene.events("shipment.customer_updated")) == 1


def test_instructions_are_validated(scene):
    with pytest.raises(InvalidInput) as too_long:
        actions.customer_set_instructions(scene.link, text="x" * 1001, key="form-key-0002")
    assert "text" in too_long.value.fields
    with pytest.raises(InvalidInput) as no_key:
        actions.customer_set_instructions(scene.link, text="ok", key="")
    assert "key" in no_key.value.fields
    assert not CustomerAction.dangerously_unscoped.exists()


def test_the_driver_and_the_console_read_instructions_and_not_home(scene, tenant, api_client_for):
    actions.customer_set_instructions(scene.link, text="Blue door", key="form-key-0003")
    actions.customer_not_home(scene.link, key="form-key-0004")
    # A person with the driver role reads their route's stops (the driver app's API).
    driver = api_client_for(tenant.user(Role.DRIVER))
    stop = driver.get(f"/api/v1/stops/{scene.stop.pk}/").json()
    assert stop["recipient_away_at"] is not None
    assert {"id": scene.shipment.pk, "delivery_instructions": "Blue door"} in [
        {k: s[k] for k in ("id", "delivery_instructions")} for s in stop["deliveries"]
    ]
    # The console's stop details.
    console = api_client_for(tenant.user(Role.DISPATCHER))
    details = console.get(f"/api/v1/console/stops/{scene.stop.pk}/").json()
    assert details["recipient_away_at"] is not None
    assert details["instructions"] == ["Blue door"]


def test_reschedule_offers_the_policys_windows_in_the_organizations_time_zone(scene):
    org = scene.org
    org.reschedule_days_ahead = 3
    org.reschedule_weekdays = [0, 1, 2, 3, 4, 5, 6]
    org.reschedule_windows = [["09:00", "13:00"], ["14:00", "18:00"]]
    org.save()
    now = dt.datetime(2026, 12, 7, 22, 30, tzinfo=dt.UTC)  # 19:30 in Santiago (UTC-3)
    # What the page does on each request: resolve the link (fresh organization settings).
    options = actions.customer_reschedule_options(link_resolve(scene.raw), now=now)
    assert [o.id for o in options] == [
        "20261208-0900-1300",
        "20261208-1400-1800",
        "20261209-0900-1300",
        "20261209-1400-1800",
        "20261210-0900-1300",
        "20261210-1400-1800",
    ]
    assert options[0].start.utcoffset() == dt.timedelta(hours=-3)
    org.reschedule_weekdays = [0]  # Mondays only: none in the next three days
    org.save()
    assert actions.customer_reschedule_options(link_resolve(scene.raw), now=now) == []


def _first_option(link):
    return actions.customer_reschedule_options(link)[0]


def test_reschedule_takes_the_parcel_off_todays_route_and_sets_the_new_window(scene):
    option = _first_option(scene.link)
    shipment = actions.customer_reschedule(scene.link, option_id=option.id, key="form-key-0005")
    assert shipment.promised_window_start == option.start
    assert shipment.promised_window_end == option.end
    assert shipment.status == "at_hub"  # back to be planned again, like a cancelled route's
    # Off the stop; the neighbour's parcel stays; the stop is still visited.
    assert not StopShipment.dangerously_unscoped.filter(shipment=scene.shipment).exists()
    assert scene.reload(scene.stop).status == "pending"
    with organization_scope(scene.org):
        assert list(scene.stop.shipments.values_list("pk", flat=True)) == [scene.neighbour.pk]
    # The dispatcher sees it: route.changed, the event, the custody chain (still valid).
    assert [e["id"] for e in scene.events("route.changed")] == [scene.route.pk]
    [event] = scene.events("shipment.rescheduled")
    assert event["taken_off_route"] == scene.route.pk and event["taken_off_stop"] == scene.stop.pk
    entries = CustodyEntry.dangerously_unscoped.filter(shipment=scene.shipment)
    assert entries.filter(details__action="taken_off_route").exists()
    assert entries.filter(actor=f"recipient (tracking link {scene.link.pk})").exists()
    with organization_scope(scene.org):
        assert custody_verify(scene.shipment).valid
    # Idempotent.
    actions.customer_reschedule(scene.link, option_id=option.id, key="form-key-0005")
    assert CustomerAction.dangerously_unscoped.filter(kind="reschedule").count() == 1
    assert len(scene.events("shipment.rescheduled")) == 1


def test_a_stop_left_without_parcels_is_skipped(scene):
    option = _first_option(scene.lonely_link)
    actions.customer_reschedule(scene.lonely_link, option_id=option.id, key="form-key-0006")
    assert scene.reload(scene.alone).status == "skipped"
    assert [e["status"] for e in scene.events("stop.status_changed")] == ["skipped"]


def test_reschedule_is_refused_for_unknown_windows_after_arrival_and_when_final(scene):
    with pytest.raises(InvalidInput) as unknown:
        actions.customer_reschedule(scene.link, option_id="20990101-0000-2359", key="form-key-07")
    assert "option" in unknown.value.fields
    option = _first_option(scene.link)
    with organization_scope(scene.org):
        stop_arrive(stop=scene.stop, actor=None)
    assert actions.customer_reschedule_options(scene.link) == []
    with pytest.raises(Conflict):
        actions.customer_reschedule(scene.link, option_id=option.id, key="form-key-0008")
    assert StopShipment.dangerously_unscoped.filter(shipment=scene.shipment).exists()
    assert not CustomerAction.dangerously_unscoped.exists()


def test_not_home_marks_the_stop_for_driver_and_dispatcher(scene):
    actions.customer_not_home(scene.link, key="form-key-0009")
    stop = scene.reload(scene.stop)
    assert stop.recipient_away_at is not None and stop.status == "pending"
    [event] = scene.events("stop.recipient_away")
    assert event["id"] == stop.pk and event["shipment"] == scene.shipment.pk
    [changed] = scene.events("route.changed")
    assert changed["reasons"] == ["recipient"]
    actions.customer_not_home(scene.link, key="form-key-0009")
    assert len(scene.events("stop.recipient_away")) == 1
    assert CustomerAction.dangerously_unscoped.filter(kind="not_home").count() == 1


def test_not_home_needs_a_route_and_a_driver_not_yet_there(scene, tenant):
    with organization_scope(scene.org):
        unplanned = ShipmentFactory(organization=scene.org, carrier=tenant.carrier)
        link, _ = link_issue(unplanned, actor=None)
        stop_arrive(stop=scene.stop, actor=None)
    with pytest.raises(Conflict) as no_route:
        actions.customer_not_home(link, key="form-key-0010")
    assert no_route.value.code == "not_on_route"
    with pytest.raises(Conflict) as arrived:
        actions.customer_not_home(scene.link, key="form-key-0011")
    assert arrived.value.code == "driver_arrived"


def test_rating_only_after_delivery_once_with_who_delivered(scene):
    with pytest.raises(Conflict) as early:
        actions.customer_rate(scene.link, stars=5, comment="", key="form-key-0012")
    assert early.value.code == "not_delivered"
    with organization_scope(scene.org):
        stop_complete(stop=scene.stop, actor=None)
    with pytest.raises(InvalidInput):
        actions.customer_rate(scene.link, stars=6, comment="", key="form-key-0013")
    with pytest.raises(InvalidInput):
        actions.customer_rate(scene.link, stars=True, comment="", key="form-key-0013")
    rating = actions.customer_rate(scene.link, stars=4, comment="Kind driver", key="form-key-0014")
    assert (rating.stars, rating.comment) == (4, "Kind driver")
    assert rating.carrier_id == scene.route.carrier_id and rating.driver_id == scene.driver.pk
    assert rating.delivered_at == scene.reload(scene.shipment).status_changed_at
    # A replay answers the first; a second rating is refused.
    again = actions.customer_rate(scene.link, stars=1, comment="", key="form-key-0014")
    assert again.pk == rating.pk and again.stars == 4
    with pytest.raises(Conflict) as twice:
        actions.customer_rate(scene.link, stars=1, comment="", key="form-key-0015")
    assert twice.value.code == "already_rated"
    assert DeliveryRating.dangerously_unscoped.count() == 1
    [event] = scene.events("shipment.rated")
    assert event["stars"] == 4 and event["driver"] == scene.driver.pk
    assert "Kind driver" not in str(event)


def test_final_shipments_take_no_instructions(scene):
    with organization_scope(scene.org):
        stop_complete(stop=scene.stop, actor=None)
    with pytest.raises(Conflict):
        actions.customer_set_instructions(scene.link, text="late", key="form-key-0016")
    assert Shipment.dangerously_unscoped.get(pk=scene.shipment.pk).delivery_instructions == ""


def test_actions_are_rate_limited_per_link(scene, settings):
    settings.TRACKING_ACTIONS_PER_LINK = 3
    for n in range(3):
        actions.customer_set_instructions(scene.link, text=f"note {n}", key=f"form-key-10{n:02d}")
    with pytest.raises(TooManyAttempts):
        actions.customer_set_instructions(scene.link, text="one more", key="form-key-1099")
    # Another link is counted on its own.
    actions.customer_set_instructions(scene.lonely_link, text="fine", key="form-key-2000")


def test_a_form_key_is_never_reused_across_shipments(scene):
    actions.customer_set_instructions(scene.link, text="a", key="form-key-3000")
    with pytest.raises(Conflict):
        actions.customer_set_instructions(scene.lonely_link, text="b", key="form-key-3000")


def test_the_recipient_actor_is_granted_nothing(scene):
    actor = actions.RecipientActor(organization=scene.org, link_id=scene.link.pk)
    assert not actor.can("shipments", "read")
    assert actor.label == f"recipient (tracking link {scene.link.pk})"


def test_the_stops_away_flag_is_per_stop(scene):
    actions.customer_not_home(scene.link, key="form-key-4000")
    assert Stop.dangerously_unscoped.get(pk=scene.alone.pk).recipient_away_at is None
    assert timezone.now() - scene.reload(scene.stop).recipient_away_at < dt.timedelta(minutes=1)
