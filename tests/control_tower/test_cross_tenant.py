"""The cross-tenant matrix: for every operation the OpenAPI schema lists, another organization's
owner (full rights there) and API key (all scopes) get 404 on our objects, see none of them in
lists, and cannot attach them through a foreign key. A new endpoint without a row here fails
`test_every_endpoint_is_in_the_matrix`."""

from __future__ import annotations

import datetime as dt

import pytest
from django.forms.models import model_to_dict
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from control_tower.tenancy.actors import actor_for_membership
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import dangerously_all_organizations, organization_scope
from tests.driver_app import DRIVER_APP_ISOLATION_TEST, DRIVER_APP_OPERATIONS
from tests.factories import (
    DeviceFactory,
    DriverFactory,
    HubFactory,
    RouteFactory,
    ShipmentFactory,
    VehicleFactory,
    stop_with_shipments,
)

pytestmark = pytest.mark.django_db

V1 = "/api/v1"


def _api_key(tenant, api_key_for):
    from control_tower.models import ApiKey

    api_key_for(tenant)
    return ApiKey.dangerously_unscoped.filter(organization=tenant.organization).latest("pk")


def _invitation(tenant):
    from control_tower import services

    with organization_scope(tenant.organization):
        invitation, _link = services.invitation_create(
            actor=actor_for_membership(tenant.members[Role.OWNER]),
            email="invited@example.com",
            role=Role.DISPATCHER,
        )
    return invitation


def _alert(tenant):
    from exceptions.services import alert_raise

    route = RouteFactory(organization=tenant.organization, carrier=tenant.carrier)
    return alert_raise(
        organization_id=tenant.organization.pk,
        kind="route_not_started",
        subject_type="route",
        subject_id=route.pk,
        severity="medium",
        started_at=timezone.now(),
        title="Route not started",
        route=route,
        carrier_id=tenant.carrier.pk,
    )


def _notification(tenant):
    from notifications.models import Notification

    shipment = ShipmentFactory(organization=tenant.organization, carrier=tenant.carrier)
    with organization_scope(tenant.organization):
        return Notification.objects.create(
            shipment=shipment,
            carrier=tenant.carrier,
            trigger="delivered",
            channel="email",
            audience="customer",
            address="ana@example.com",
            dedup_key=f"s{shipment.pk}:delivered::email",
        )


def _notification_template(tenant):
    from notifications.models import NotificationTemplate

    with organization_scope(tenant.organization):
        # get_or_create: the create case also calls this to learn the model.
        return NotificationTemplate.objects.get_or_create(
            trigger="delivered", channel="sms", language="es", defaults={"text": "Entregado."}
        )[0]


def _contact_preference(tenant):
    from notifications.models import ContactPreference

    with organization_scope(tenant.organization):
        return ContactPreference.objects.get_or_create(
            channel="sms", address="+56987654321", defaults={"state": "opted_out", "source": "api"}
        )[0]


def _scorecard_email(tenant):
    from carriers.sla.models import ScorecardEmail

    with organization_scope(tenant.organization):
        schedule = ScorecardEmail.objects.create(organization=tenant.organization)
        schedule.recipients.set([tenant.members[Role.OPS_MANAGER]])
    return schedule


# --- carrier feeds (tests/carrier_feeds/) ---------------------------------------------------


def _carrier_feed(tenant):
    from carriers.feeds.services import feed_create

    with organization_scope(tenant.organization):
        return feed_create(
            actor=actor_for_membership(tenant.members[Role.OWNER]),
            carrier=tenant.carrier,
            name=f"feed-{timezone.now().timestamp()}",
            adapter="native",
            config={},
        )


def _carrier_feed_event(tenant):
    from carriers.feeds.services import events_receive

    feed = _carrier_feed(tenant)
    payload = {
        "events": [{"barcode": "X", "status": "teleported", "occurred_at": "2026-11-20T10:00Z"}]
    }
    with organization_scope(tenant.organization):
        owner = actor_for_membership(tenant.members[Role.OWNER])
        return events_receive(actor=owner, feed=feed, payload=payload)[0].event


def _carrier_feed_import(tenant):
    from carriers.feeds.models import FeedImport

    feed = _carrier_feed(tenant)
    with organization_scope(tenant.organization):
        return FeedImport.objects.create(
            feed=feed, carrier=tenant.carrier, kind="status", file_name="s.csv", state="applied"
        )


# How to make an object of the victim organization for each detail path.
OBJECT_MAKERS = {
    # Carrier feeds.
    "carrier-feeds": lambda t, **_: _carrier_feed(t),
    "carrier-feed-events": lambda t, **_: _carrier_feed_event(t),
    "carrier-feed-imports": lambda t, **_: _carrier_feed_import(t),
    "memberships": lambda t, **_: t.members[Role.DISPATCHER],
    "invitations": lambda t, **_: _invitation(t),
    "api-keys": lambda t, api_key_for, **_: _api_key(t, api_key_for),
    "carriers": lambda t, **_: t.carrier,
    "drivers": lambda t, **_: DriverFactory(organization=t.organization, carrier=t.carrier),
    "vehicles": lambda t, **_: VehicleFactory(organization=t.organization, carrier=t.carrier),
    "devices": lambda t, **_: DeviceFactory(organization=t.organization, carrier=t.carrier),
    "hubs": lambda t, **_: HubFactory(organization=t.organization),
    "shipments": lambda t, **_: ShipmentFactory(organization=t.organization, carrier=t.carrier),
    "routes": lambda t, **_: RouteFactory(organization=t.organization, carrier=t.carrier),
    "stops": lambda t, **_: stop_with_shipments(
        route=RouteFactory(organization=t.organization, carrier=t.carrier)
    ),
    "alerts": lambda t, **_: _alert(t),
    "notifications": lambda t, **_: _notification(t),
    "notification-templates": lambda t, **_: _notification_template(t),
    "notification-contacts": lambda t, **_: _contact_preference(t),
    # Reports (helper "api").
    "scorecard-emails": lambda t, **_: _scorecard_email(t),
}

# A body that would be valid if the object were the caller's, so only the tenant check can
# refuse it.
DETAIL_BODIES = {
    ("memberships", "put"): {"role": "ops_manager"},
    ("memberships", "patch"): {"role": "ops_manager"},
    ("carriers", "put"): {"code": "x", "name": "x", "kind": "gig"},
    ("carriers", "patch"): {"name": "x"},
    ("drivers", "patch"): {"name": "x"},
    ("vehicles", "patch"): {"plate": "ZZ-1"},
    ("devices", "patch"): {"name": "x"},
    ("hubs", "patch"): {"name": "x"},
    ("shipments", "patch"): {"recipient_name": "x"},
    ("shipments", "post", "transition"): {"status": "at_hub"},
    ("routes", "patch"): {"code": "X1"},
    ("stops", "patch"): {"address": "x"},
    ("stops", "post", "fail"): {"reason": "not_home"},
    ("alerts", "post", "assign"): {"assignee": 1},
    ("alerts", "post", "snooze"): {"until": "2099-01-01T00:00:00Z"},
    ("alerts", "post", "resolve"): {"resolution_code": "fixed"},
    ("notification-templates", "put"): {
        "trigger": "delivered",
        "channel": "sms",
        "language": "es",
        "text": "x",
    },
    ("notification-templates", "patch"): {"text": "x"},
}


def _victim_refs(t):
    """Ids of the victim's objects a foreign key could point at."""
    shipment = ShipmentFactory(organization=t.organization, carrier=t.carrier)
    return {
        "carrier": t.carrier.pk,
        "hub": HubFactory(organization=t.organization).pk,
        "driver": DriverFactory(organization=t.organization, carrier=t.carrier).pk,
        "vehicle": VehicleFactory(organization=t.organization, carrier=t.carrier).pk,
        "route": RouteFactory(organization=t.organization, carrier=t.carrier).pk,
        "shipment": shipment.pk,
        "shipment_reference": shipment.reference,
        "organization": t.organization.pk,
    }


def _own_refs(t):
    return {
        "carrier": t.carrier.pk,
        "hub": HubFactory(organization=t.organization).pk,
    }


def _shipment_body(carrier, hub, n=1):
    return {
        "reference": f"X-{n}",
        "barcode": f"XB-{n}",
        "recipient_name": "A",
        "address_line1": "B",
        "city": "C",
        "country_code": "CL",
        "carrier": carrier,
        "hub": hub,
    }


# Create operations: a payload that points at the victim's objects, and the field that must be
# named in the 400.
CREATE_CASES = {
    # Carrier feeds: a feed for the victim's carrier.
    "carrier-feeds": lambda v, o: (
        {"carrier": v["carrier"], "name": "f", "adapter": "native"},
        "carrier",
    ),
    "invitations": lambda v, o: (
        {"email": "new@example.com", "role": "carrier_user", "carrier": v["carrier"]},
        "carrier",
    ),
    "api-keys": lambda v, o: (
        {"name": "k", "scopes": ["shipments:read"], "carrier": v["carrier"]},
        "carrier",
    ),
    "drivers": lambda v, o: ({"name": "d", "carrier": v["carrier"]}, "carrier"),
    "vehicles": lambda v, o: ({"plate": "P-1", "carrier": v["carrier"]}, "carrier"),
    "devices": lambda v, o: (
        {"name": "p", "kind": "driver_app", "carrier": v["carrier"]},
        "carrier",
    ),
    "shipments": lambda v, o: (_shipment_body(v["carrier"], v["hub"]), "carrier"),
    "shipments/bulk": lambda v, o: (
        {
            "shipments": [
                _shipment_body(o["carrier"], o["hub"], 1),
                _shipment_body(v["carrier"], o["hub"], 2),
            ]
        },
        "shipments",
    ),
    "routes": lambda v, o: (
        {"date": str(timezone.localdate()), "code": "R1", "hub": v["hub"], "carrier": v["carrier"]},
        "hub",
    ),
    "routes/bulk": lambda v, o: (
        {
            "date": str(timezone.localdate()),
            "routes": [
                {
                    "code": "R1",
                    "hub": o["hub"],
                    "carrier": o["carrier"],
                    "stops": [{"shipment_references": [v["shipment_reference"]]}],
                }
            ],
        },
        "routes",
    ),
    "stops": lambda v, o: (
        {"route": v["route"], "sequence": 1, "location": {"lat": -29.9, "lon": -71.2}},
        "route",
    ),
    # Reports (helper "api"): the victim's carrier in a scheduled e-mail.
    "scorecard-emails": lambda v, o: ({"name": "x", "carriers": [v["carrier"]]}, "carriers"),
}
# Creates with no foreign key: the organization in the payload must be ignored.
CREATE_WITHOUT_FK = {
    "carriers": {"code": "c", "name": "c", "kind": "gig"},
    "hubs": {"code": "h", "name": "h", "location": {"lat": -29.9, "lon": -71.2}},
    "notification-templates": {
        "trigger": "delivered",
        "channel": "sms",
        "language": "es",
        "text": "x",
    },
    "notification-contacts": {"channel": "sms", "address": "+56987654321", "state": "opted_out"},
}
SINGLETONS = {
    ("/api/v1/me/", "get"),
    ("/api/v1/organization/", "get"),
    ("/api/v1/organization/", "patch"),
}
# Endpoints whose callers are devices or whose shape the generic cases above do not fit (ingest,
# custody, signed files): each has its own cross-tenant test, named here so that adding an
# endpoint without one still fails `test_every_endpoint_is_in_the_matrix`.
_WEBHOOKS_404 = (
    "tests/webhooks/test_api.py::test_other_organizations_ids_answer_404_like_missing_ones"
)
_WEBHOOKS_FK = "tests/webhooks/test_api.py::test_another_organizations_carrier_cannot_be_attached"
TESTED_ELSEWHERE: dict[tuple[str, str], str] = {
    # Webhooks (tests/webhooks/test_api.py).
    ("/api/v1/webhook-endpoints/", "get"): _WEBHOOKS_404,
    ("/api/v1/webhook-endpoints/", "post"): _WEBHOOKS_FK,
    ("/api/v1/webhook-endpoints/{id}/", "get"): _WEBHOOKS_404,
    ("/api/v1/webhook-endpoints/{id}/", "put"): _WEBHOOKS_404,
    ("/api/v1/webhook-endpoints/{id}/", "patch"): _WEBHOOKS_404,
    ("/api/v1/webhook-endpoints/{id}/", "delete"): _WEBHOOKS_404,
    ("/api/v1/webhook-endpoints/{id}/enable/", "post"): _WEBHOOKS_404,
    ("/api/v1/webhook-endpoints/{id}/replay/", "post"): _WEBHOOKS_404,
    ("/api/v1/webhook-endpoints/{id}/rotate-secret/", "post"): _WEBHOOKS_404,
    ("/api/v1/webhook-endpoints/{id}/test/", "post"): _WEBHOOKS_404,
    ("/api/v1/webhook-deliveries/", "get"): _WEBHOOKS_404,
    ("/api/v1/webhook-deliveries/{id}/", "get"): _WEBHOOKS_404,
    ("/api/v1/webhook-deliveries/{id}/replay/", "post"): _WEBHOOKS_404,
    ("/api/v1/webhook-settings/", "get"): _WEBHOOKS_404,
    ("/api/v1/webhook-settings/", "patch"): _WEBHOOKS_404,
    ("/api/v1/routes/plan/", "post"): "tests/tracking/test_route_planning.py::"
    "test_another_organizations_objects_cannot_be_planned",
    ("/api/v1/ingest/pod", "post"): "tests/tracking/test_proof_of_delivery.py::"
    "test_another_organization_can_neither_submit_nor_read",
    ("/api/v1/pods/", "get"): "tests/tracking/test_proof_of_delivery.py::"
    "test_another_organization_can_neither_submit_nor_read",
    ("/api/v1/pods/{id}/", "get"): "tests/tracking/test_proof_of_delivery.py::"
    "test_another_organization_can_neither_submit_nor_read",
    (
        "/api/v1/ingest/pings",
        "post",
    ): "tests/tracking/test_ingest_pings.py::test_the_token_decides_the_organization",
    (
        "/api/v1/ingest/gpx",
        "post",
    ): "tests/tracking/test_ingest_protocols.py::test_gpx_device_must_be_ours",
    ("/api/v1/positions/", "get"): "tests/tracking/test_ingest_pings.py::"
    "test_positions_and_pings_are_readable_by_the_organization_only",
    ("/api/v1/positions/{device}/", "get"): "tests/tracking/test_ingest_pings.py::"
    "test_positions_and_pings_are_readable_by_the_organization_only",
    ("/api/v1/pings/", "get"): "tests/tracking/test_ingest_pings.py::"
    "test_positions_and_pings_are_readable_by_the_organization_only",
    (
        "/api/v1/ingest/scans",
        "post",
    ): "tests/tracking/test_scans.py::test_another_organization_cannot_scan_our_shipments",
    (
        "/api/v1/scans/",
        "get",
    ): "tests/tracking/test_scans.py::test_another_organization_cannot_read_our_scans",
    (
        "/api/v1/scans/{id}/",
        "get",
    ): "tests/tracking/test_scans.py::test_another_organization_cannot_read_our_scans",
    # Dispatcher console, the live map.
    ("/api/v1/console/snapshot/", "get"): "tests/portal/test_console_snapshot.py::"
    "test_other_organizations_and_drivers_get_nothing",
    ("/api/v1/console/routes/{id}/", "get"): "tests/portal/test_console_snapshot.py::"
    "test_other_organizations_and_drivers_get_nothing",
    # Dispatcher console, actions.
    ("/api/v1/stops/{id}/reassign/", "post"): "tests/portal/test_reassign.py::"
    "test_another_organization_gets_404_both_ways",
    ("/api/v1/console/stops/{id}/", "get"): "tests/portal/test_console_details.py::"
    "test_who_may_read_stop_details",
    ("/api/v1/console/search/", "get"): "tests/portal/test_console_details.py::"
    "test_search_never_crosses_organizations_or_carriers",
    ("/api/v1/console/streets/", "get"): "tests/portal/test_streets.py::"
    "test_streets_need_a_logged_in_console_user",
    # Tracking links: the revoke path names a link under the shipment.
    ("/api/v1/shipments/{id}/tracking-links/{link_id}/", "delete"): (
        "tests/tracking/test_tracking_links_api.py::"
        "test_another_organization_cannot_revoke_our_links"
    ),
    # Notifications: the organization's one settings object and its triggers (by name), and
    # the template preview (renders the caller's own overrides).
    ("/api/v1/notification-settings/", "get"): "tests/notifications/test_api.py::"
    "test_settings_read_and_patch",
    ("/api/v1/notification-settings/", "patch"): "tests/notifications/test_api.py::"
    "test_settings_read_and_patch",
    ("/api/v1/notification-triggers/", "get"): "tests/notifications/test_api.py::"
    "test_triggers_list_and_patch",
    ("/api/v1/notification-triggers/{trigger}/", "get"): "tests/notifications/test_api.py::"
    "test_triggers_list_and_patch",
    ("/api/v1/notification-triggers/{trigger}/", "patch"): "tests/notifications/test_api.py::"
    "test_triggers_list_and_patch",
    ("/api/v1/notification-templates/preview/", "post"): "tests/notifications/test_api.py::"
    "test_templates_crud_preview_and_cross_tenant",
    # Incidents from the road: a device token or a person, on a route (404 if not theirs).
    ("/api/v1/incidents/", "post"): "tests/exceptions/test_rule_incident.py::"
    "test_refusals_are_json_errors",
}

# The driver app: the phone's own session and day (tests/driver_app).
TESTED_ELSEWHERE.update(dict.fromkeys(DRIVER_APP_OPERATIONS, DRIVER_APP_ISOLATION_TEST))
# Reports take ids as parameters, not paths: another organization's are refused like unknown
# ones, its rows never appear (tests/sla/test_api*.py); scorecard e-mails: the generic cases.
for _report in (
    "scorecard",
    "trend",
    "failure-reasons",
    "exceptions",
    "lateness",
    "drilldown",
    "planning-history",
):
    TESTED_ELSEWHERE[(f"/api/v1/reports/{_report}/", "get")] = (
        "tests/sla/test_api.py::test_another_organization_sees_none_of_our_rows"
    )
TESTED_ELSEWHERE[("/api/v1/reports/eta-accuracy/", "get")] = (
    "tests/sla/test_eta_accuracy.py::test_another_organization_sees_none_of_our_rows"
)
TESTED_ELSEWHERE[("/api/v1/reports/recompute/", "post")] = (
    "tests/sla/test_api_params.py::test_recompute_needs_reports_write_and_valid_dates"
)


def schema_operations() -> set[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {
        (path, method)
        for path, operations in schema["paths"].items()
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    }


def classify(path: str, method: str):
    rest = path.removeprefix(V1 + "/").strip("/").split("/")
    resource = rest[0]
    if "{id}" in rest:
        action = rest[2] if len(rest) > 2 else None
        return "detail", resource, action
    if len(rest) == 2:
        return "create", f"{resource}/{rest[1]}", None
    return ("list" if method == "get" else "create"), resource, None


def test_every_endpoint_is_in_the_matrix():
    missing = []
    for path, method in schema_operations():
        if (path, method) in SINGLETONS or (path, method) in TESTED_ELSEWHERE:
            continue
        kind, resource, _ = classify(path, method)
        known = {
            "detail": OBJECT_MAKERS,
            "list": OBJECT_MAKERS,
            "create": {**CREATE_CASES, **CREATE_WITHOUT_FK},
        }[kind]
        if resource not in known:
            missing.append(f"{method.upper()} {path}")
    assert not missing, f"add these to the cross-tenant matrix: {missing}"


# API keys never manage people or other keys: 403 for any id, so nothing is revealed either.
KEY_FORBIDDEN = {"memberships", "invitations", "api-keys"}


def _callers(attacker, api_client_for, api_key_for, resource=None):
    yield "owner", api_client_for(attacker.user(Role.OWNER)), None
    key_client = api_client_for(key=api_key_for(attacker))
    yield "api key", key_client, 403 if resource in KEY_FORBIDDEN else None


def _snapshot(obj):
    with dangerously_all_organizations():  # the test looks at both organizations
        obj = type(obj).dangerously_unscoped.get(pk=obj.pk)
        return model_to_dict(obj)


def test_endpoints_tested_elsewhere_name_a_real_test():
    import importlib
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2]
    for operation, where in TESTED_ELSEWHERE.items():
        module_path, _, test_name = where.partition("::")
        assert operation in schema_operations(), f"{operation} is not in the schema any more"
        assert (root / module_path).exists(), where
        module = importlib.import_module(module_path.removesuffix(".py").replace("/", "."))
        assert callable(getattr(module, test_name, None)), where


@pytest.mark.parametrize(
    "operation",
    sorted(schema_operations() - set(TESTED_ELSEWHERE)),
    ids=lambda o: f"{o[1]} {o[0]}",
)
def test_another_organization_cannot_reach_our_data(
    operation, tenant, other_tenant, api_client_for, api_key_for
):
    path, method = operation
    victim, attacker = tenant, other_tenant
    if operation in SINGLETONS:
        for _label, client, _ in _callers(attacker, api_client_for, api_key_for):
            response = getattr(client, method)(path, {"name": "Renamed"}, format="json")
            if response.status_code == 403:  # key without organization write: fine
                continue
            assert response.status_code == 200
            assert response.json()["organization" if path.endswith("me/") else "slug"] != (
                victim.organization.slug
            ) or path.endswith("me/")
        victim.organization.refresh_from_db()
        assert victim.organization.name == "Acme"
        return

    kind, resource, action = classify(path, method)
    if kind == "detail":
        obj = OBJECT_MAKERS[resource](victim, api_key_for=api_key_for)
        before = _snapshot(obj)
        url = path.replace("{id}", str(obj.pk))
        body = DETAIL_BODIES.get((resource, method, action)) or DETAIL_BODIES.get(
            (resource, method), {}
        )
        for label, client, forbidden in _callers(attacker, api_client_for, api_key_for, resource):
            response = getattr(client, method)(url, body, format="json")
            expected = forbidden or 404
            assert response.status_code == expected, (label, response.status_code, response.content)
            assert response.json()["error"] in {"not_found", "permission_denied"}
        assert _snapshot(obj) == before
    elif kind == "list":
        obj = OBJECT_MAKERS[resource](victim, api_key_for=api_key_for)
        for label, client, forbidden in _callers(attacker, api_client_for, api_key_for, resource):
            response = client.get(path)
            if forbidden:
                assert response.status_code == forbidden
                continue
            assert response.status_code == 200, (label, response.content)
            ids = {row["id"] for row in response.json()["results"]}
            assert obj.pk not in ids, label
    elif resource in CREATE_WITHOUT_FK:
        body = {**CREATE_WITHOUT_FK[resource], "organization": victim.organization.pk}
        client = api_client_for(attacker.user(Role.OWNER))
        response = client.post(path, body, format="json")
        assert response.status_code == 201, response.content
        model = OBJECT_MAKERS[resource](attacker).__class__
        created = model.dangerously_unscoped.get(pk=response.json()["id"])
        assert created.organization_id == attacker.organization.pk
    else:
        victim_refs = _victim_refs(victim)
        own_refs = _own_refs(attacker)
        body, field = CREATE_CASES[resource](victim_refs, own_refs)
        for label, client, forbidden in _callers(attacker, api_client_for, api_key_for, resource):
            response = client.post(path, body, format="json")
            if forbidden:
                assert response.status_code == forbidden
                continue
            assert response.status_code == 400, (label, response.content)
            payload = response.json()
            assert payload["error"] == "validation_error"
            assert field in payload["fields"], (label, payload)


def test_patch_cannot_move_our_object_onto_their_carrier(tenant, other_tenant, api_client_for):
    driver = DriverFactory(organization=tenant.organization, carrier=tenant.carrier)
    client = api_client_for(tenant.user(Role.OWNER))
    response = client.patch(
        f"{V1}/drivers/{driver.pk}/", {"carrier": other_tenant.carrier.pk}, format="json"
    )
    assert response.status_code == 400
    assert "carrier" in response.json()["fields"]


def test_session_user_cannot_pick_an_organization_they_do_not_belong_to(
    tenant, other_tenant, api_client_for
):
    client = api_client_for(
        tenant.user(Role.OWNER), organization_slug=other_tenant.organization.slug
    )
    response = client.get(f"{V1}/carriers/")
    assert response.status_code == 403
    assert response.json()["error"] == "permission_denied"


def test_window_of_time_does_not_matter(tenant, other_tenant, api_client_for):
    """Objects of the victim from another day are just as invisible."""
    route = RouteFactory(
        organization=tenant.organization,
        carrier=tenant.carrier,
        date=timezone.localdate() - dt.timedelta(days=30),
    )
    client = api_client_for(other_tenant.user(Role.OWNER))
    response = client.get(f"{V1}/routes/", {"date": str(route.date)})
    assert response.json()["count"] == 0
