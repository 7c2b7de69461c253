"""Stop <-> shipment links go through tracking/services/stop_shipments.py: through the stops API
they record custody, queue the route's ETA recompute (a real Celery worker) and push
`route.changed` (the real Redis Pub/Sub channel); a shipment is never on two open routes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from control_tower.realtime import organization_group
from control_tower.tenancy.actors import actor_for_membership
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from tests.conftest import wait_for
from tests.factories import (
    DriverFactory,
    HubFactory,
    RouteFactory,
    ShipmentFactory,
    VehicleFactory,
    stop_with_shipments,
)
from tests.portal.road_loop import grid, load_loop_network
from tracking.errors import InvalidInput
from tracking.models import CustodyEntry, Shipment, Stop, StopShipment
from tracking.services.custody import custody_verify
from tracking.services.stop_shipments import shipments_on_open_routes, stop_shipments_set


def planned_route(tenant, code="R1", **fields):
    organization = tenant.organization
    return RouteFactory(
        organization=organization,
        code=code,
        carrier=tenant.carrier,
        hub=HubFactory(organization=organization, location=grid(0, 0)),
        driver=DriverFactory(organization=organization, carrier=tenant.carrier),
        vehicle=VehicleFactory(organization=organization, carrier=tenant.carrier),
        planned_start=timezone.now() + timedelta(hours=1),
        planned_end=timezone.now() + timedelta(hours=5),
        **fields,
    )


@pytest.mark.django_db(transaction=True)
def test_a_stop_created_with_shipments_records_custody_recomputes_etas_and_announces(
    tenant, celery_worker, api_client_for
):
    from tests.portal.live_listener import LiveListener

    load_loop_network()
    route = planned_route(tenant)
    parcel = ShipmentFactory(organization=tenant.organization, carrier=tenant.carrier)
    listener = LiveListener(organization_group(tenant.organization.pk))

    response = api_client_for(tenant.user(Role.DISPATCHER)).post(
        "/api/v1/stops/",
        {
            "route": route.pk,
            "sequence": 1,
            "location": {"lat": -29.998, "lon": -69.996},
            "shipments": [parcel.pk],
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    (entry,) = CustodyEntry.dangerously_unscoped.filter(shipment=parcel)
    dispatcher = actor_for_membership(tenant.members[Role.DISPATCHER])
    assert entry.kind == "route" and entry.actor == dispatcher.label
    assert entry.details == {
        "action": "put_on_route",
        "stop": response.json()["id"],
        "route": "R1",
        "date": route.date.isoformat(),
    }
    with organization_scope(tenant.organization):
        assert custody_verify(parcel).valid
    stop = wait_for(
        lambda: Stop.dangerously_unscoped.filter(
            pk=response.json()["id"], eta__isnull=False
        ).first(),
        timeout=20,
    )
    assert stop.eta_earliest <= stop.eta <= stop.eta_latest
    while True:
        event = listener.next_event(timeout=10)
        if event["type"] == "route.changed":
            break
    assert event["data"]["id"] == route.pk
    listener.close()


@pytest.mark.django_db
def test_changing_a_stops_shipments_records_who_came_and_who_left(tenant, api_client_for):
    route = planned_route(tenant)
    stop = stop_with_shipments(route=route, location=grid(1, 0))
    kept = Shipment.dangerously_unscoped.get(stops=stop)
    added = ShipmentFactory(organization=tenant.organization, carrier=tenant.carrier)
    api = api_client_for(tenant.user(Role.DISPATCHER))

    response = api.patch(f"/api/v1/stops/{stop.pk}/", {"shipments": [added.pk]}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["shipments"] == [added.pk]
    actions = dict(
        CustodyEntry.dangerously_unscoped.filter(shipment__in=[kept, added]).values_list(
            "shipment_id", "details__action"
        )
    )
    assert actions == {kept.pk: "taken_off_route", added.pk: "put_on_route"}
    same = api.patch(f"/api/v1/stops/{stop.pk}/", {"shipments": [added.pk]}, format="json")
    assert same.status_code == 200
    assert CustodyEntry.dangerously_unscoped.filter(shipment=added).count() == 1  # no-op


@pytest.mark.django_db
def test_a_shipment_on_an_open_route_cannot_join_another_stop(tenant, api_client_for):
    first = planned_route(tenant, "R1")
    taken = stop_with_shipments(route=first, location=grid(1, 0))
    parcel = Shipment.dangerously_unscoped.get(stops=taken)
    second = planned_route(tenant, "R2")
    other_stop = stop_with_shipments(route=second, location=grid(2, 0))
    api = api_client_for(tenant.user(Role.DISPATCHER))

    created = api.post(
        "/api/v1/stops/",
        {
            "route": second.pk,
            "sequence": 2,
            "location": {"lat": -29.998, "lon": -69.996},
            "shipments": [parcel.pk],
        },
        format="json",
    )
    edited = api.patch(f"/api/v1/stops/{other_stop.pk}/", {"shipments": [parcel.pk]}, format="json")

    for response in (created, edited):
        assert response.status_code == 400, response.content
        assert response.json()["error"] == "validation_error"
        assert "already on an open route (R1)" in str(response.json()["fields"]["shipments"])
    assert not Stop.dangerously_unscoped.filter(route=second, sequence=2).exists()
    assert list(StopShipment.dangerously_unscoped.filter(shipment=parcel)) == list(
        StopShipment.dangerously_unscoped.filter(stop=taken)
    )
    assert not CustodyEntry.dangerously_unscoped.filter(shipment=parcel).exists()


@pytest.mark.django_db
def test_the_service_refuses_final_shipments_finished_routes_and_other_tenants(
    tenant, other_tenant
):
    actor = actor_for_membership(tenant.members[Role.DISPATCHER])
    route = planned_route(tenant)
    stop = stop_with_shipments(route=route, count=0, location=grid(1, 0))
    delivered = ShipmentFactory(organization=tenant.organization, status="delivered")
    foreign = ShipmentFactory(organization=other_tenant.organization)
    fresh = ShipmentFactory(organization=tenant.organization)
    with organization_scope(tenant.organization):
        with pytest.raises(InvalidInput, match="is delivered"):
            stop_shipments_set(stop=stop, shipments=[delivered], actor=actor)
        with pytest.raises(InvalidInput, match="does not exist"):
            stop_shipments_set(stop=stop, shipments=[foreign], actor=actor)
        route.status = "completed"
        route.save(update_fields=["status"])
        with pytest.raises(InvalidInput, match="is completed"):
            stop_shipments_set(stop=stop, shipments=[fresh], actor=actor)
        assert not StopShipment.objects.filter(stop=stop).exists()
        assert not CustodyEntry.objects.exists()
        # A finished route's shipments are free to be planned again.
        assert shipments_on_open_routes([fresh.pk, delivered.pk]) == {}


@pytest.mark.django_db(transaction=True)
def test_a_stop_edit_and_a_days_plan_racing_for_one_shipment_cannot_both_win(tenant):
    """Both lock the shipment before checking: the second sees the first's link and refuses."""
    import threading

    from django.db import connection

    from tracking.services.routes import route_plan_create

    actor = actor_for_membership(tenant.members[Role.DISPATCHER])
    route = planned_route(tenant, "R1")
    stop = stop_with_shipments(route=route, count=0, location=grid(1, 0))
    parcel = ShipmentFactory(organization=tenant.organization, carrier=tenant.carrier)
    other = planned_route(tenant, "R0")  # its hub, carrier and crew for the plan
    plan = [
        {
            "code": "R2",
            "hub": other.hub,
            "carrier": tenant.carrier,
            "stops": [{"location": grid(2, 0), "shipments": [parcel]}],
        }
    ]
    barrier, outcomes = threading.Barrier(2), []

    def run(write):
        try:
            with organization_scope(tenant.organization):
                barrier.wait()
                write()
            outcomes.append("stored")
        except InvalidInput as exc:
            outcomes.append(str(exc.fields))
        finally:
            connection.close()

    threads = [
        threading.Thread(
            target=run,
            args=(lambda: stop_shipments_set(stop=stop, shipments=[parcel], actor=actor),),
        ),
        threading.Thread(
            target=run,
            args=(lambda: route_plan_create(actor=actor, date=route.date, routes=plan),),
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(o == "stored" for o in outcomes) == [False, True], outcomes
    assert "already on an open route" in next(o for o in outcomes if o != "stored")
    assert StopShipment.dangerously_unscoped.filter(shipment=parcel).count() == 1


@pytest.mark.django_db
def test_stop_edits_keep_their_rules_through_the_service(tenant, scoped):
    from tracking.services.stop_edits import stop_create, stop_update

    actor = actor_for_membership(tenant.members[Role.DISPATCHER])
    route = planned_route(tenant)
    parcel = ShipmentFactory(organization=tenant.organization)
    stop = stop_create(
        actor=actor,
        data={"route": route, "sequence": 1, "location": grid(1, 0)},
        shipments=[parcel],
    )
    assert list(stop.shipments.all()) == [parcel]
    assert CustodyEntry.objects.get(shipment=parcel).details["action"] == "put_on_route"
    for data, field in (
        ({"route": route, "sequence": 1, "location": grid(2, 0)}, "sequence"),
        (
            {
                "route": route,
                "sequence": 2,
                "location": grid(2, 0),
                "window_start": timezone.now(),
                "window_end": timezone.now() - timedelta(hours=1),
            },
            "window_end",
        ),
    ):
        with pytest.raises(InvalidInput) as refused:
            stop_create(actor=actor, data=data)
        assert field in refused.value.fields
    with pytest.raises(InvalidInput, match="reassignment"):
        stop_update(stop=stop, actor=actor, data={"route": planned_route(tenant, "R2")})
    stop_update(stop=stop, actor=actor, data={"notes": "Gate 3"})
    route.status = "cancelled"
    route.save(update_fields=["status"])
    with pytest.raises(InvalidInput, match="The route is cancelled"):
        stop_update(stop=stop, actor=actor, data={"notes": "too late"})
    stop.refresh_from_db()
    assert stop.notes == "Gate 3" and Stop.objects.filter(route=route).count() == 1
