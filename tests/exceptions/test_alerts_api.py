"""`/api/v1/alerts/`: lists and filters, the four actions, their 4xx answers, and who may do what
(roles, key scopes, carrier users narrowed to their carrier)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from control_tower.events.models import OutboxEvent
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from exceptions.models import Alert, AlertTransition
from exceptions.services import alert_raise
from tests.factories import CarrierFactory, RouteFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/alerts/"


def raise_on(route, kind="route_not_started", severity="medium", minutes_ago=25):
    return alert_raise(
        organization_id=route.organization_id,
        kind=kind,
        subject_type="route",
        subject_id=route.pk,
        severity=severity,
        started_at=timezone.now() - timedelta(minutes=minutes_ago),
        title=f"{kind} on {route.code}",
        route=route,
        carrier_id=route.carrier_id,
    )


@pytest.fixture
def world(tenant):
    org = tenant.organization
    own = RouteFactory(organization=org, carrier=tenant.carrier)
    other_carrier = CarrierFactory(organization=org)
    foreign = RouteFactory(organization=org, carrier=other_carrier)
    return {
        "own": raise_on(own),
        "own_signal": raise_on(own, kind="signal_lost", severity="high"),
        "foreign": raise_on(foreign),
    }


@pytest.fixture
def dispatcher_api(tenant, api_client_for):
    return api_client_for(tenant.user(Role.DISPATCHER))


def ids(response):
    assert response.status_code == 200, response.json()
    return {row["id"] for row in response.json()["results"]}


def test_list_filters_and_ordering(world, dispatcher_api):
    assert ids(dispatcher_api.get(URL)) == {a.pk for a in world.values()}
    assert ids(dispatcher_api.get(URL, {"kind": "signal_lost"})) == {world["own_signal"].pk}
    assert ids(dispatcher_api.get(URL, {"severity": "high"})) == {world["own_signal"].pk}
    assert ids(dispatcher_api.get(URL, {"route": world["foreign"].route_id})) == {
        world["foreign"].pk
    }
    assert ids(dispatcher_api.get(URL, {"carrier": world["own"].carrier_id})) == {
        world["own"].pk,
        world["own_signal"].pk,
    }
    future = (timezone.now() + timedelta(minutes=1)).isoformat()
    assert ids(dispatcher_api.get(URL, {"since": future})) == set()
    ranked = dispatcher_api.get(URL, {"ordering": "-severity_rank"}).json()["results"]
    assert ranked[0]["severity"] == "high"
    body = dispatcher_api.get(f"{URL}{world['own'].pk}/").json()
    assert body["kind"] == "route_not_started" and body["state"] == "open"
    assert body["started_at"].endswith("+00:00")


def test_open_filter_and_state_filter(world, dispatcher_api):
    resolved = dispatcher_api.post(
        f"{URL}{world['own'].pk}/resolve/", {"resolution_code": "fixed"}, format="json"
    )
    assert resolved.status_code == 200, resolved.json()
    open_ids = ids(dispatcher_api.get(URL, {"open": "true"}))
    assert world["own"].pk not in open_ids and world["foreign"].pk in open_ids
    assert ids(dispatcher_api.get(URL, {"state": "resolved"})) == {world["own"].pk}
    assert ids(dispatcher_api.get(URL, {"open": "false"})) == {world["own"].pk}


def test_acknowledge_assign_snooze_resolve(tenant, world, dispatcher_api):
    alert = world["own"]
    base = f"{URL}{alert.pk}/"

    acknowledged = dispatcher_api.post(f"{base}acknowledge/", {"note": "on it"}, format="json")
    assert acknowledged.status_code == 200, acknowledged.json()
    body = acknowledged.json()
    assert body["state"] == "acknowledged"
    assert body["acknowledged_by"]["id"] == tenant.user(Role.DISPATCHER).pk

    carrier_user = tenant.user(Role.CARRIER_USER)
    assigned = dispatcher_api.post(f"{base}assign/", {"assignee": carrier_user.pk}, format="json")
    assert assigned.status_code == 200, assigned.json()
    assert assigned.json()["state"] == "assigned"
    assert assigned.json()["assigned_to"]["id"] == carrier_user.pk

    until = timezone.now() + timedelta(hours=1)
    snoozed = dispatcher_api.post(f"{base}snooze/", {"until": until.isoformat()}, format="json")
    assert snoozed.status_code == 200, snoozed.json()
    assert snoozed.json()["state"] == "snoozed" and snoozed.json()["snoozed_until"]

    resolved = dispatcher_api.post(
        f"{base}resolve/",
        {"resolution_code": "driver_contacted", "note": "driver was at lunch"},
        format="json",
    )
    assert resolved.status_code == 200, resolved.json()
    body = resolved.json()
    assert body["state"] == "resolved" and body["auto_resolved"] is False
    assert body["resolution_note"] == "driver was at lunch"

    with organization_scope(tenant.organization):
        rows = list(AlertTransition.objects.filter(alert_id=alert.pk).order_by("id"))
    assert [(r.from_state, r.to_state) for r in rows] == [
        ("", "open"),
        ("open", "acknowledged"),
        ("acknowledged", "assigned"),
        ("assigned", "snoozed"),
        ("snoozed", "resolved"),
    ]
    assert rows[1].actor == tenant.user(Role.DISPATCHER).email
    types = list(
        OutboxEvent.dangerously_unscoped.filter(aggregate_type="alert", aggregate_id=str(alert.pk))
        .order_by("id")
        .values_list("type", flat=True)
    )
    assert types == [
        "alert.raised",
        "alert.acknowledged",
        "alert.assigned",
        "alert.snoozed",
        "alert.resolved",
    ]


def test_illegal_transitions_are_409_with_a_message(world, dispatcher_api):
    base = f"{URL}{world['own'].pk}/"
    assert dispatcher_api.post(f"{base}acknowledge/").status_code == 200
    again = dispatcher_api.post(f"{base}acknowledge/")
    assert again.status_code == 409
    assert again.json()["error"] == "illegal_transition"
    assert "already acknowledged" in again.json()["detail"]

    assert (
        dispatcher_api.post(
            f"{base}resolve/", {"resolution_code": "fixed"}, format="json"
        ).status_code
        == 200
    )
    for action, body in [
        ("acknowledge", {}),
        ("snooze", {"until": (timezone.now() + timedelta(hours=1)).isoformat()}),
        ("resolve", {"resolution_code": "fixed"}),
    ]:
        answer = dispatcher_api.post(f"{base}{action}/", body, format="json")
        assert answer.status_code == 409, (action, answer.json())
        assert answer.json()["error"] == "illegal_transition"


def test_bad_input_is_400_json(tenant, world, dispatcher_api):
    base = f"{URL}{world['own'].pk}/"
    bad_code = dispatcher_api.post(f"{base}resolve/", {"resolution_code": "magic"}, format="json")
    assert bad_code.status_code == 400 and "resolution_code" in bad_code.json()["fields"]
    # The rules' own code is not one a person may pick.
    cleared = dispatcher_api.post(
        f"{base}resolve/", {"resolution_code": "condition_cleared"}, format="json"
    )
    assert cleared.status_code == 400

    past = dispatcher_api.post(
        f"{base}snooze/", {"until": (timezone.now() - timedelta(minutes=1)).isoformat()}
    )
    assert past.status_code == 400 and "until" in past.json()["fields"]
    too_long = dispatcher_api.post(
        f"{base}snooze/", {"until": (timezone.now() + timedelta(days=8)).isoformat()}
    )
    assert too_long.status_code == 400

    driver = tenant.user(Role.DRIVER)
    no_rights = dispatcher_api.post(f"{base}assign/", {"assignee": driver.pk}, format="json")
    assert no_rights.status_code == 400 and "assignee" in no_rights.json()["fields"]
    # A carrier user may only be handed their own carrier's alerts.
    carrier_user = tenant.user(Role.CARRIER_USER)
    foreign = dispatcher_api.post(
        f"{URL}{world['foreign'].pk}/assign/", {"assignee": carrier_user.pk}, format="json"
    )
    assert foreign.status_code == 400
    missing = dispatcher_api.post(f"{base}assign/", {}, format="json")
    assert missing.status_code == 400 and "assignee" in missing.json()["fields"]
    with organization_scope(tenant.organization):
        unchanged = Alert.objects.get(pk=world["own"].pk)
    assert unchanged.state == "open" and unchanged.assigned_to_id is None


def test_carrier_user_sees_and_works_only_their_carriers_alerts(tenant, world, api_client_for):
    api = api_client_for(tenant.user(Role.CARRIER_USER))
    assert ids(api.get(URL)) == {world["own"].pk, world["own_signal"].pk}
    assert api.get(f"{URL}{world['foreign'].pk}/").status_code == 404
    assert api.post(f"{URL}{world['foreign'].pk}/acknowledge/").status_code == 404
    assert api.post(f"{URL}{world['own'].pk}/acknowledge/").status_code == 200


def test_roles_and_key_scopes(tenant, world, api_client_for, api_key_for):
    ops = api_client_for(tenant.user(Role.OPS_MANAGER))
    assert ops.get(URL).status_code == 200
    assert ops.post(f"{URL}{world['own'].pk}/acknowledge/").status_code == 403
    driver = api_client_for(tenant.user(Role.DRIVER))
    assert driver.get(URL).status_code == 403

    reader = api_client_for(key=api_key_for(tenant, scopes=["alerts:read"]))
    assert reader.get(URL).status_code == 200
    assert reader.post(f"{URL}{world['own'].pk}/acknowledge/").status_code == 403
    writer = api_client_for(key=api_key_for(tenant, scopes=["alerts:write"]))
    answer = writer.post(f"{URL}{world['own'].pk}/acknowledge/")
    assert answer.status_code == 200 and answer.json()["acknowledged_by"] is None
    routes_only = api_client_for(key=api_key_for(tenant, scopes=["routes:read"]))
    assert routes_only.get(URL).status_code == 403


def test_other_organizations_alerts_are_404(world, other_tenant, api_client_for):
    other = api_client_for(other_tenant.user(Role.DISPATCHER))
    assert ids(other.get(URL)) == set()
    assert other.get(f"{URL}{world['own'].pk}/").status_code == 404
    assert other.post(f"{URL}{world['own'].pk}/acknowledge/").status_code == 404


def test_the_list_costs_the_same_queries_for_many_alerts(tenant, dispatcher_api):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def count():
        with CaptureQueriesContext(connection) as captured:
            response = dispatcher_api.get(URL, {"page_size": 100})
        assert response.status_code == 200
        return len(captured), response.json()["count"]

    org = tenant.organization
    raise_on(RouteFactory(organization=org, carrier=tenant.carrier))
    few, rows = count()
    assert rows == 1
    for _ in range(8):
        alert = raise_on(RouteFactory(organization=org, carrier=tenant.carrier))
        dispatcher_api.post(
            f"{URL}{alert.pk}/assign/",
            {"assignee": tenant.user(Role.DISPATCHER).pk},
            format="json",
        )
    many, rows = count()
    assert rows == 9
    assert many == few
