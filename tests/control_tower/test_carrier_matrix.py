"""The carrier matrix: for every operation the OpenAPI schema lists, a carrier user and a
carrier-bound API key (all scopes) of carrier A see and touch only carrier A's rows. Carrier B's
rows (same organization) answer exactly like missing ones (404, absent from lists), and a write
that references one of them is refused with 400 and changes nothing. A new endpoint without a
row here fails `test_every_endpoint_is_in_the_carrier_matrix`.

The rule lives in one place (control_tower/tenancy/carrier_scope.py); this file checks that
every path reaches it.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.gis.geos import Point
from django.forms.models import model_to_dict
from django.utils import timezone

from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import dangerously_all_organizations, organization_scope
from exceptions.services import alert_raise
from tests.control_tower.test_cross_tenant import V1, classify, schema_operations
from tests.driver_app import DRIVER_APP_ISOLATION_TEST, DRIVER_APP_OPERATIONS
from tests.factories import (
    CarrierFactory,
    DeviceFactory,
    DriverFactory,
    HubFactory,
    RouteFactory,
    ShipmentFactory,
    VehicleFactory,
    stop_with_shipments,
)
from tests.tracking.test_proof_of_delivery import jpeg, upload
from tracking.models import Route, Scan, Shipment, Stop

pytestmark = pytest.mark.django_db


def _unscoped(model):
    return model.dangerously_unscoped


def _snapshot(obj):
    with dangerously_all_organizations():
        return model_to_dict(type(obj).dangerously_unscoped.get(pk=obj.pk))


def _counts():
    with dangerously_all_organizations():
        return {m.__name__: _unscoped(m).count() for m in (Route, Stop, Shipment, Scan)}


class World:
    """One organization, carrier A (the caller's) and carrier B (the other), each with a crew,
    a hub shared by both, shipments, a route with a stop."""

    def __init__(self, tenant):
        org = tenant.organization
        self.tenant = tenant
        self.org = org
        self.a = tenant.carrier
        self.b = CarrierFactory(organization=org, code="other-fleet", name="Other fleet")
        self.hub = HubFactory(organization=org)
        self.rows = {}
        for name, carrier in (("a", self.a), ("b", self.b)):
            driver = DriverFactory(organization=org, carrier=carrier)
            vehicle = VehicleFactory(organization=org, carrier=carrier)
            route = RouteFactory(
                organization=org,
                carrier=carrier,
                hub=self.hub,
                driver=driver,
                vehicle=vehicle,
                code=f"R-{name.upper()}",
            )
            stop = stop_with_shipments(route=route)
            self.rows[name] = {
                "carriers": carrier,
                "drivers": driver,
                "vehicles": vehicle,
                "devices": DeviceFactory(organization=org, carrier=carrier, driver=driver),
                "shipments": ShipmentFactory(
                    organization=org,
                    carrier=carrier,
                    hub=self.hub,
                    reference=f"ORD-{name.upper()}",
                    barcode=f"BC-{name.upper()}",
                ),
                "routes": route,
                "stops": stop,
                "alerts": alert_raise(
                    organization_id=org.pk,
                    kind="route_not_started",
                    subject_type="route",
                    subject_id=route.pk,
                    severity="medium",
                    started_at=timezone.now(),
                    title=f"Route {route.code} not started",
                    route=route,
                    carrier_id=carrier.pk,
                ),
            }

    def of(self, name, resource):
        return self.rows[name][resource]


@pytest.fixture
def world(tenant):
    return World(tenant)


@pytest.fixture
def callers(tenant, api_client_for, api_key_for):
    """Carrier A's person and carrier A's key (every scope), with what each is granted."""
    found = []
    for label, client in (
        ("carrier user", api_client_for(tenant.user(Role.CARRIER_USER))),
        ("carrier key", api_client_for(key=api_key_for(tenant, carrier=tenant.carrier))),
    ):
        me = client.get(f"{V1}/me/").json()
        assert me["carrier"] == tenant.carrier.pk, label
        found.append((label, client, me["permissions"]))
    return found


# The grant each path needs (tenancy/roles.py); actions named here belong to another resource.
RESOURCE_OF = {
    "carriers": "carriers",
    "drivers": "fleet",
    "vehicles": "fleet",
    "devices": "fleet",
    "hubs": "hubs",
    "shipments": "shipments",
    "routes": "routes",
    "stops": "routes",
    "memberships": "memberships",
    "invitations": "memberships",
    "api-keys": "api_keys",
    "alerts": "alerts",
}
ACTION_RESOURCE = {
    ("stops", "reassign"): "console",
    **{("stops", a): "route_progress" for a in ("arrive", "complete", "fail", "skip")},
    **{("routes", a): "route_progress" for a in ("start", "complete")},
}


def allowed(permissions, resource, action, method) -> bool:
    needed = ACTION_RESOURCE.get((resource, action), RESOURCE_OF[resource])
    # API keys never manage people or keys, whatever their scopes (api/views.py).
    granted = set(permissions.get(needed, ()))
    return ("read" if method == "get" else "write") in granted


def forbidden_for_keys(label, resource) -> bool:
    return label == "carrier key" and resource in {"memberships", "invitations", "api-keys"}


# Bodies valid for an own row, so only the carrier check can refuse them on B's.
DETAIL_BODIES = {
    ("carriers", "put"): {"code": "x", "name": "x", "kind": "gig"},
    ("carriers", "patch"): {"name": "x"},
    ("drivers", "put"): {"name": "x"},
    ("drivers", "patch"): {"name": "x"},
    ("vehicles", "put"): {"plate": "ZZ-1"},
    ("vehicles", "patch"): {"plate": "ZZ-1"},
    ("devices", "put"): {"name": "x", "kind": "driver_app"},
    ("devices", "patch"): {"name": "x"},
    ("shipments", "patch"): {"recipient_name": "x"},
    ("shipments", "post", "transition"): {"status": "at_hub"},
    ("routes", "patch"): {"code": "X1"},
    ("stops", "patch"): {"address": "x"},
    ("hubs", "put"): {"code": "hx", "name": "x", "location": {"lat": -29.9, "lon": -71.2}},
    ("hubs", "patch"): {"name": "x"},
    ("stops", "post", "fail"): {"reason": "not_home"},
    ("stops", "post", "reassign"): {"route": "own-route"},
    ("alerts", "post", "assign"): {"assignee": 1},
    ("alerts", "post", "snooze"): {"until": "2099-01-01T00:00:00Z"},
    ("alerts", "post", "resolve"): {"resolution_code": "fixed"},
}
# Operations whose callers or shapes the generic cases do not fit: each has a test below.
SPECIFIC = {
    ("/api/v1/routes/plan/", "post"): "test_route_planning_ignores_other_carriers_rows",
    ("/api/v1/ingest/pod", "post"): "test_proofs_of_delivery_only_for_own_shipments",
    ("/api/v1/pods/", "get"): "test_proofs_of_delivery_only_for_own_shipments",
    ("/api/v1/pods/{id}/", "get"): "test_proofs_of_delivery_only_for_own_shipments",
    ("/api/v1/ingest/pings", "post"): "test_pings_need_a_device_token",
    ("/api/v1/ingest/gpx", "post"): "test_gpx_of_another_carriers_device_is_refused",
    ("/api/v1/positions/", "get"): "test_positions_and_pings_of_own_devices_only",
    ("/api/v1/positions/{device}/", "get"): "test_positions_and_pings_of_own_devices_only",
    ("/api/v1/pings/", "get"): "test_positions_and_pings_of_own_devices_only",
    ("/api/v1/ingest/scans", "post"): "test_scans_of_other_carriers_barcodes_are_unknown",
    ("/api/v1/scans/", "get"): "test_scans_of_other_carriers_barcodes_are_unknown",
    ("/api/v1/scans/{id}/", "get"): "test_scans_of_other_carriers_barcodes_are_unknown",
    ("/api/v1/console/snapshot/", "get"): "test_console_reads_show_only_own_carrier",
    ("/api/v1/console/routes/{id}/", "get"): "test_console_reads_show_only_own_carrier",
    ("/api/v1/console/stops/{id}/", "get"): "test_console_reads_show_only_own_carrier",
    ("/api/v1/console/search/", "get"): "test_console_reads_show_only_own_carrier",
    ("/api/v1/console/streets/", "get"): "test_console_reads_show_only_own_carrier",
    ("/api/v1/carriers/", "post"): "test_creates_without_a_reference",
    ("/api/v1/hubs/", "post"): "test_creates_without_a_reference",
    ("/api/v1/me/", "get"): "test_callers_are_bound_to_carrier_a",
    ("/api/v1/organization/", "get"): "test_callers_are_bound_to_carrier_a",
    ("/api/v1/organization/", "patch"): "test_callers_are_bound_to_carrier_a",
    ("/api/v1/incidents/", "post"): "test_incidents_only_on_own_carriers_routes",
    (
        "/api/v1/shipments/{id}/tracking-links/{link_id}/",
        "delete",
    ): "test_tracking_links_of_other_carriers_are_out_of_reach",
}

# The notification endpoints: their own test below (messages by carrier; the policy is the
# organization's).
NOTIFICATION_OPERATIONS = [
    ("/api/v1/notifications/", "get"),
    ("/api/v1/notifications/{id}/", "get"),
    ("/api/v1/notification-settings/", "get"),
    ("/api/v1/notification-settings/", "patch"),
    ("/api/v1/notification-triggers/", "get"),
    ("/api/v1/notification-triggers/{trigger}/", "get"),
    ("/api/v1/notification-triggers/{trigger}/", "patch"),
    ("/api/v1/notification-templates/", "get"),
    ("/api/v1/notification-templates/", "post"),
    ("/api/v1/notification-templates/{id}/", "get"),
    ("/api/v1/notification-templates/{id}/", "put"),
    ("/api/v1/notification-templates/{id}/", "patch"),
    ("/api/v1/notification-templates/{id}/", "delete"),
    ("/api/v1/notification-templates/preview/", "post"),
    ("/api/v1/notification-contacts/", "get"),
    ("/api/v1/notification-contacts/", "post"),
    ("/api/v1/notification-contacts/{id}/", "get"),
]
for _operation in NOTIFICATION_OPERATIONS:
    SPECIFIC[_operation] = "test_notifications_of_other_carriers_are_out_of_reach"

# Webhooks: endpoints bound to a carrier, their deliveries; the allow list is the
# organization's (tests/webhooks/test_api.py).
for _operation in [
    ("/api/v1/webhook-endpoints/", "get"),
    ("/api/v1/webhook-endpoints/", "post"),
    ("/api/v1/webhook-endpoints/{id}/", "get"),
    ("/api/v1/webhook-endpoints/{id}/", "put"),
    ("/api/v1/webhook-endpoints/{id}/", "patch"),
    ("/api/v1/webhook-endpoints/{id}/", "delete"),
    ("/api/v1/webhook-endpoints/{id}/enable/", "post"),
    ("/api/v1/webhook-endpoints/{id}/replay/", "post"),
    ("/api/v1/webhook-endpoints/{id}/rotate-secret/", "post"),
    ("/api/v1/webhook-endpoints/{id}/test/", "post"),
    ("/api/v1/webhook-deliveries/", "get"),
    ("/api/v1/webhook-deliveries/{id}/", "get"),
    ("/api/v1/webhook-deliveries/{id}/replay/", "post"),
    ("/api/v1/webhook-settings/", "get"),
    ("/api/v1/webhook-settings/", "patch"),
]:
    SPECIFIC[_operation] = (
        "tests/webhooks/test_api.py::test_carrier_matrix_endpoints_and_deliveries"
    )

# Carrier feeds: feeds, their webhook and file imports, the event log and the imports log
# (tests/carrier_feeds/test_access.py).
for _operation in [
    ("/api/v1/carrier-feeds/", "get"),
    ("/api/v1/carrier-feeds/", "post"),
    ("/api/v1/carrier-feeds/{id}/", "get"),
    ("/api/v1/carrier-feeds/{id}/", "put"),
    ("/api/v1/carrier-feeds/{id}/", "patch"),
    ("/api/v1/carrier-feeds/{id}/", "delete"),
    ("/api/v1/carrier-feeds/{id}/events/", "post"),
    ("/api/v1/carrier-feeds/{id}/imports/", "post"),
    ("/api/v1/carrier-feeds/{id}/reprocess/", "post"),
    ("/api/v1/carrier-feed-events/", "get"),
    ("/api/v1/carrier-feed-events/{id}/", "get"),
    ("/api/v1/carrier-feed-events/{id}/reprocess/", "post"),
    ("/api/v1/carrier-feed-imports/", "get"),
    ("/api/v1/carrier-feed-imports/{id}/", "get"),
]:
    SPECIFIC[_operation] = "tests/carrier_feeds/test_access.py::test_carrier_matrix_feeds"


# Reports (issue 16, helper "api"): a carrier user or carrier key gets only its carrier's rows
# and a 400 naming `carrier` for another carrier's id; scheduled e-mails are the
# organization's (none visible, none writable); recompute needs reports write.
for _report in (
    "scorecard",
    "trend",
    "failure-reasons",
    "exceptions",
    "lateness",
    "drilldown",
    "planning-history",
):
    SPECIFIC[(f"/api/v1/reports/{_report}/", "get")] = (
        "tests/sla/test_api.py::test_a_carrier_user_and_key_see_only_their_carrier"
    )
SPECIFIC[("/api/v1/reports/eta-accuracy/", "get")] = (
    "tests/sla/test_eta_accuracy.py::test_a_carrier_user_and_key_see_only_their_carrier"
)
SPECIFIC[("/api/v1/reports/recompute/", "post")] = (
    "tests/sla/test_api_params.py::test_recompute_needs_reports_write_and_valid_dates"
)
for _operation in [
    ("/api/v1/scorecard-emails/", "get"),
    ("/api/v1/scorecard-emails/", "post"),
    ("/api/v1/scorecard-emails/{id}/", "get"),
    ("/api/v1/scorecard-emails/{id}/", "put"),
    ("/api/v1/scorecard-emails/{id}/", "patch"),
    ("/api/v1/scorecard-emails/{id}/", "delete"),
    ("/api/v1/scorecard-emails/{id}/send-now/", "post"),
]:
    SPECIFIC[_operation] = (
        "tests/sla/test_api_emails.py::test_carrier_users_and_keys_neither_see_nor_manage_them"
    )


# The driver app: the phone's own session and day (tests/driver_app).
SPECIFIC.update(dict.fromkeys(DRIVER_APP_OPERATIONS, DRIVER_APP_ISOLATION_TEST))


# Covered where the machinery already is (the socket needs a transactional database).
ELSEWHERE = {
    "websocket": "tests/portal/test_events_socket.py::"
    "test_carrier_user_gets_only_their_carriers_events",
}


def test_the_socket_case_names_a_real_test():
    import importlib

    for where in ELSEWHERE.values():
        module_path, _, name = where.partition("::")
        module = importlib.import_module(module_path.removesuffix(".py").replace("/", "."))
        assert callable(getattr(module, name, None)), where


def _create_cases(world: World) -> dict[str, list[tuple[dict, str]]]:
    """Per create path: bodies that reference carrier B's rows, and the field named in the
    400 (bodies are otherwise valid for carrier A)."""
    a, b = world.rows["a"], world.rows["b"]
    today = str(timezone.localdate())

    def shipment(carrier, n):
        return {
            "reference": f"NEW-{n}",
            "barcode": f"NEWB-{n}",
            "recipient_name": "A",
            "address_line1": "B",
            "city": "C",
            "country_code": "CL",
            "carrier": carrier.pk,
            "hub": world.hub.pk,
        }

    def plan(carrier, references, **crew):
        return {
            "date": today,
            "routes": [
                {
                    "code": "NEW-R",
                    "hub": world.hub.pk,
                    "carrier": carrier.pk,
                    **crew,
                    "stops": [{"shipment_references": references}],
                }
            ],
        }

    location = {"lat": -29.9, "lon": -71.2}
    return {
        "memberships": [({"email": "n@example.com", "role": "carrier_user"}, "")],
        "invitations": [({"email": "n@example.com", "role": "carrier_user"}, "")],
        "api-keys": [({"name": "k", "scopes": ["shipments:read"]}, "")],
        "drivers": [({"name": "d", "carrier": b["carriers"].pk}, "carrier")],
        "vehicles": [({"plate": "P-1", "carrier": b["carriers"].pk}, "carrier")],
        "devices": [({"name": "p", "kind": "driver_app", "carrier": b["carriers"].pk}, "carrier")],
        "shipments": [(shipment(b["carriers"], 1), "carrier")],
        "shipments/bulk": [
            ({"shipments": [shipment(world.a, 1), shipment(b["carriers"], 2)]}, "shipments")
        ],
        "routes": [
            (
                {"date": today, "code": "N1", "hub": world.hub.pk, "carrier": b["carriers"].pk},
                "carrier",
            ),
            (
                {
                    "date": today,
                    "code": "N2",
                    "hub": world.hub.pk,
                    "carrier": world.a.pk,
                    "driver": b["drivers"].pk,
                },
                "driver",
            ),
        ],
        "routes/bulk": [
            (plan(world.a, [b["shipments"].reference]), "routes"),
            (plan(b["carriers"], [a["shipments"].reference]), "routes"),
            (plan(world.a, [a["shipments"].reference], vehicle=b["vehicles"].pk), "routes"),
        ],
        "stops": [
            ({"route": b["routes"].pk, "sequence": 5, "location": location}, "route"),
            (
                {
                    "route": a["routes"].pk,
                    "sequence": 5,
                    "location": location,
                    "shipments": [b["shipments"].pk],
                },
                "shipments",
            ),
        ],
    }


def _update_cases(world: World) -> list[tuple[str, object, dict, str]]:
    """Own rows patched to point at carrier B's rows: 400 naming the field."""
    a, b = world.rows["a"], world.rows["b"]
    return [
        ("drivers", a["drivers"], {"carrier": b["carriers"].pk}, "carrier"),
        ("vehicles", a["vehicles"], {"carrier": b["carriers"].pk}, "carrier"),
        ("devices", a["devices"], {"driver": b["drivers"].pk}, "driver"),
        ("shipments", a["shipments"], {"carrier": b["carriers"].pk}, "carrier"),
        ("routes", a["routes"], {"driver": b["drivers"].pk}, "driver"),
        ("routes", a["routes"], {"vehicle": b["vehicles"].pk}, "vehicle"),
        ("stops", a["stops"], {"route": b["routes"].pk}, "route"),
        ("stops", a["stops"], {"shipments": [b["shipments"].pk]}, "shipments"),
    ]


def test_every_endpoint_is_in_the_carrier_matrix():
    missing = []
    for path, method in schema_operations():
        if (path, method) in SPECIFIC:
            continue
        kind, resource, _ = classify(path, method)
        base = resource.split("/")[0]
        if base not in RESOURCE_OF:
            missing.append(f"{method.upper()} {path}")
    assert not missing, f"add these to the carrier matrix: {missing}"


def test_specific_cases_name_a_test_of_this_file():
    import importlib

    operations = schema_operations()
    for operation, name in SPECIFIC.items():
        assert operation in operations, f"{operation} is not in the schema any more"
        module_path, _, test_name = name.rpartition("::")
        if module_path:  # a test of another file: "tests/app/test_x.py::test_name"
            module = importlib.import_module(module_path.removesuffix(".py").replace("/", "."))
            assert callable(getattr(module, test_name, None)), name
        else:
            assert callable(globals().get(name)), name


GENERIC = sorted(schema_operations() - set(SPECIFIC))


@pytest.mark.parametrize("operation", GENERIC, ids=lambda o: f"{o[1]} {o[0]}")
def test_another_carriers_rows_are_out_of_reach(operation, world, callers):
    path, method = operation
    kind, resource, action = classify(path, method)
    base = resource.split("/")[0]
    if kind == "detail":
        if base in {"memberships", "invitations", "api-keys"}:
            row = None  # people and keys: no carrier user or key may manage them at all
        elif base == "hubs":
            row = HubFactory(organization=world.org)  # shared: reachable, unlike B's rows
        else:
            row = world.of("b", base)
        before = _snapshot(row) if row is not None else None
        url = path.replace("{id}", str(row.pk if row is not None else 1))
        body = DETAIL_BODIES.get((base, method, action)) or DETAIL_BODIES.get((base, method), {})
        if body.get("route") == "own-route":
            body = {"route": world.of("a", "routes").pk}
        for label, client, permissions in callers:
            response = getattr(client, method)(url, body, format="json")
            may = allowed(permissions, base, action, method) and not forbidden_for_keys(label, base)
            if not may:
                assert response.status_code == 403, (label, response.content)
            elif base == "hubs":  # shared by every carrier of the organization
                assert response.status_code in (200, 204), (label, response.content)
                continue
            else:
                assert response.status_code == 404, (label, response.status_code, response.content)
                assert response.json()["error"] == "not_found"
        if row is not None and base != "hubs":
            assert _snapshot(row) == before
    elif kind == "list":
        for label, client, permissions in callers:
            response = client.get(path)
            if not allowed(permissions, base, None, "get") or forbidden_for_keys(label, base):
                assert response.status_code == 403, (label, response.content)
                continue
            assert response.status_code == 200, (label, response.content)
            ids = {row["id"] for row in response.json()["results"]}
            if base == "hubs":
                assert world.hub.pk in ids
                continue
            assert world.of("a", base).pk in ids, label
            assert world.of("b", base).pk not in ids, label
            if "carrier" in response.json()["results"][0]:
                assert {row["carrier"] for row in response.json()["results"]} == {world.a.pk}
    else:
        cases = _create_cases(world)[resource]
        assert cases, resource
        for body, field in cases:
            for label, client, permissions in callers:
                before = _counts()
                response = client.post(path, body, format="json")
                if not allowed(permissions, base, None, "post") or forbidden_for_keys(label, base):
                    assert response.status_code == 403, (label, response.content)
                    continue
                assert response.status_code == 400, (label, body, response.content)
                payload = response.json()
                assert payload["error"] == "validation_error"
                assert field in payload["fields"], (label, payload)
                assert _counts() == before


def test_updates_cannot_point_at_another_carriers_rows(world, callers):
    for resource, row, body, field in _update_cases(world):
        before = _snapshot(row)
        for label, client, permissions in callers:
            response = client.patch(f"{V1}/{resource}/{row.pk}/", body, format="json")
            if not allowed(permissions, resource, None, "patch"):
                assert response.status_code == 403, (label, resource)
                continue
            assert response.status_code == 400, (label, resource, body, response.content)
            assert field in response.json()["fields"], (label, resource, response.json())
        assert _snapshot(row) == before, resource


def test_creates_without_a_reference(world, callers):
    """Carriers and hubs have no carrier reference to forge; a carrier user may not create
    them, and nothing of carrier B changes whoever creates them."""
    before = _snapshot(world.b)
    for label, client, permissions in callers:
        for resource, body in (
            ("carriers", {"code": f"c-{label[-3:]}", "name": "c", "kind": "gig"}),
            ("hubs", {"code": f"h-{label[-3:]}", "name": "h", "location": {"lat": 1, "lon": 1}}),
        ):
            response = client.post(f"{V1}/{resource}/", body, format="json")
            expected = 201 if allowed(permissions, resource, None, "post") else 403
            assert response.status_code == expected, (label, resource, response.content)
    assert _snapshot(world.b) == before


def test_callers_are_bound_to_carrier_a(world, callers, tenant):
    for label, client, _permissions in callers:
        me = client.get(f"{V1}/me/").json()
        assert me["carrier"] == world.a.pk, label
        assert client.get(f"{V1}/organization/").json()["slug"] == tenant.organization.slug
        # Renaming the organization needs organization write, which neither has.
        assert client.patch(f"{V1}/organization/", {"name": "x"}, format="json").status_code == 403


# --- reproductions of the holes: bulk create and route planning with a carrier-bound key ------


def test_bulk_create_refuses_another_carriers_id(world, tenant, api_client_for, api_key_for):
    client = api_client_for(key=api_key_for(tenant, carrier=tenant.carrier))
    body = _create_cases(world)["shipments/bulk"][0][0]
    response = client.post(f"{V1}/shipments/bulk/", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["fields"]["shipments"]["1"]["carrier"]
    with dangerously_all_organizations():
        assert not Shipment.dangerously_unscoped.filter(reference__startswith="NEW-").exists()


def test_route_bulk_refuses_another_carriers_shipments(world, tenant, api_client_for, api_key_for):
    client = api_client_for(key=api_key_for(tenant, carrier=tenant.carrier))
    body = _create_cases(world)["routes/bulk"][0][0]
    response = client.post(f"{V1}/routes/bulk/", body, format="json")
    assert response.status_code == 400, response.content
    assert "Unknown shipment reference" in str(response.json()["fields"]["routes"])
    with dangerously_all_organizations():
        assert not Route.dangerously_unscoped.filter(code="NEW-R").exists()


def test_route_planning_ignores_other_carriers_rows(world, tenant, api_client_for, api_key_for):
    client = api_client_for(key=api_key_for(tenant, carrier=tenant.carrier))
    a, b = world.rows["a"], world.rows["b"]
    start = timezone.now() + dt.timedelta(hours=1)
    own_shift = {
        "vehicle": a["vehicles"].pk,
        "driver": a["drivers"].pk,
        "shift_start": start.isoformat(),
        "shift_end": (start + dt.timedelta(hours=8)).isoformat(),
    }
    date = str(timezone.localdate())
    before = _counts()
    for shift, field in (
        ({**own_shift, "vehicle": b["vehicles"].pk}, "vehicle"),
        ({**own_shift, "driver": b["drivers"].pk}, "driver"),
    ):
        response = client.post(
            f"{V1}/routes/plan/",
            {"hub": world.hub.pk, "date": date, "vehicles": [shift], "dry_run": True},
            format="json",
        )
        assert response.status_code == 400, response.content
        assert field in response.json()["fields"]["vehicles"]["0"]
    response = client.post(
        f"{V1}/routes/plan/",
        {
            "hub": world.hub.pk,
            "date": date,
            "vehicles": [own_shift],
            "shipments": [a["shipments"].pk, b["shipments"].pk],
        },
        format="json",
    )
    assert response.status_code == 400, response.content
    assert str(b["shipments"].pk) in str(response.json()["fields"]["shipments"])
    # With no list, the hub's waiting shipments are the caller's carrier's only.
    response = client.post(
        f"{V1}/routes/plan/",
        {"hub": world.hub.pk, "date": date, "vehicles": [own_shift], "dry_run": True},
        format="json",
    )
    assert response.status_code == 200, response.content
    planned = {pk for r in response.json()["routes"] for s in r["stops"] for pk in s["shipments"]}
    assert a["shipments"].pk in planned and b["shipments"].pk not in planned
    assert _counts() == before


# --- tracking: scans, proofs, pings, positions ------------------------------------------------


def test_scans_of_other_carriers_barcodes_are_unknown(world, callers):
    at = (timezone.now() - dt.timedelta(minutes=5)).isoformat()
    theirs = world.of("b", "shipments")
    before = _snapshot(theirs)
    for n, (label, client, _permissions) in enumerate(callers):
        response = client.post(
            f"{V1}/ingest/scans",
            {
                "scans": [
                    {"barcode": theirs.barcode, "scan_type": "arrived_at_hub", "occurred_at": at},
                    {"reference": theirs.reference, "scan_type": "exception", "occurred_at": at},
                    {
                        "barcode": world.of("a", "shipments").barcode,
                        "scan_type": "arrived_at_hub",
                        "occurred_at": at,
                        "event_id": f"own-{n}",
                    },
                ]
            },
            format="json",
        )
        assert response.status_code == 200, (label, response.content)
        mine, *foreign = reversed(response.json()["results"])
        assert all(r["result"] == "unknown_barcode" and r["shipment"] is None for r in foreign)
        assert mine["shipment"]["id"] == world.of("a", "shipments").pk, label
    assert _snapshot(theirs) == before
    # A scan of B's made by B's own key is not listed for A.
    with dangerously_all_organizations():
        assert not Scan.dangerously_unscoped.filter(shipment=theirs).exists()
    own_scan = None
    for label, client, _permissions in callers:
        rows = client.get(f"{V1}/scans/").json()["results"]
        shown = {r["shipment"] for r in rows}
        assert rows and shown <= {None, world.of("a", "shipments").pk}, label
        own_scan = rows[0]["id"]
        assert client.get(f"{V1}/scans/{own_scan}/").status_code == 200, label
    foreign_scan = Scan.dangerously_unscoped.create(
        organization=world.org,
        barcode=theirs.barcode,
        shipment=theirs,
        scan_type="arrived_at_hub",
        result="applied",
        occurred_at=timezone.now(),
        event_id="theirs-1",
        idempotency_key="theirs-1",
    )
    for label, client, _permissions in callers:
        assert client.get(f"{V1}/scans/{foreign_scan.pk}/").status_code == 404, label
        ids = {r["id"] for r in client.get(f"{V1}/scans/").json()["results"]}
        assert foreign_scan.pk not in ids, label


def test_proofs_of_delivery_only_for_own_shipments(world, callers, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    from tracking.models import ProofOfDelivery

    theirs = world.of("b", "shipments")
    _unscoped(Shipment).filter(pk=theirs.pk).update(
        status="out_for_delivery", location=Point(-71.25, -29.9, srid=4326)
    )
    for label, client, _permissions in callers:
        for ref in ({"shipment": theirs.pk}, {"shipment_reference": theirs.reference}):
            body = {**ref, "idempotency_key": f"k-{label}", "recipient_name": "x"}
            body["photos"] = [upload("p.jpg", jpeg())]
            response = client.post(f"{V1}/ingest/pod", body, format="multipart")
            assert response.status_code == 404, (label, response.content)
    assert not _unscoped(ProofOfDelivery).exists()
    pod = _unscoped(ProofOfDelivery).create(
        organization=world.org,
        shipment=theirs,
        idempotency_key="theirs",
        captured_at=timezone.now(),
        recipient_name="x",
    )
    for label, client, _permissions in callers:
        assert client.get(f"{V1}/pods/").json()["count"] == 0, label
        assert client.get(f"{V1}/pods/{pod.pk}/").status_code == 404, label


def test_pings_need_a_device_token(world, callers):
    from tracking.models import Ping

    fix = {"time": timezone.now().isoformat(), "lat": -29.9, "lon": -71.2}
    for label, client, _permissions in callers:
        response = client.post(f"{V1}/ingest/pings", [fix], format="json")
        assert response.status_code in (401, 403), (label, response.content)
    assert not _unscoped(Ping).exists()


def test_gpx_of_another_carriers_device_is_refused(world, callers):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tracking.models import Ping

    gpx = (
        b'<?xml version="1.0"?><gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1">'
        b'<trk><trkseg><trkpt lat="-29.9" lon="-71.2"><time>2026-01-01T10:00:00Z</time>'
        b"</trkpt></trkseg></trk></gpx>"
    )
    for label, client, _permissions in callers:
        response = client.post(
            f"{V1}/ingest/gpx",
            {
                "device": world.of("b", "devices").pk,
                "file": SimpleUploadedFile("t.gpx", gpx, "application/gpx+xml"),
            },
            format="multipart",
        )
        assert response.status_code == 400, (label, response.content)
        assert "device" in response.json()["fields"]
    assert not _unscoped(Ping).exists()


def test_positions_and_pings_of_own_devices_only(world, callers, device_for, device_client_for):
    now = timezone.now().replace(microsecond=0)
    devices = {}
    for name in ("a", "b"):
        device, token = device_for(world.tenant, carrier=world.of(name, "carriers"))
        fix = {"time": (now - dt.timedelta(seconds=30)).isoformat(), "lat": -29.9, "lon": -71.2}
        response = device_client_for(token).post(f"{V1}/ingest/pings", [fix], format="json")
        assert response.status_code == 200, response.content
        devices[name] = device
    own, theirs = devices["a"], devices["b"]
    for label, client, _permissions in callers:
        positions = client.get(f"{V1}/positions/").json()["results"]
        assert [p["device"] for p in positions] == [own.pk], label
        assert client.get(f"{V1}/positions/{own.pk}/").status_code == 200, label
        assert client.get(f"{V1}/positions/{theirs.pk}/").status_code == 404, label
        pings = client.get(f"{V1}/pings/", {"device": own.pk}).json()["results"]
        assert len(pings) == 1, label
        assert client.get(f"{V1}/pings/", {"device": theirs.pk}).json()["results"] == [], label


# --- the console ------------------------------------------------------------------------------


def test_console_reads_show_only_own_carrier(world, callers):
    a, b = world.rows["a"], world.rows["b"]
    for label, client, _permissions in callers:
        snapshot = client.get(f"{V1}/console/snapshot/").json()
        assert [c["id"] for c in snapshot["carriers"]] == [world.a.pk], label
        assert {r["id"] for r in snapshot["routes"]} == {a["routes"].pk}, label
        assert {v["id"] for v in snapshot["vehicles"]} == {a["vehicles"].pk}, label
        assert [h["id"] for h in snapshot["hubs"]] == [world.hub.pk]  # shared
        assert client.get(f"{V1}/console/routes/{a['routes'].pk}/").status_code == 200
        assert client.get(f"{V1}/console/routes/{b['routes'].pk}/").status_code == 404, label
        assert client.get(f"{V1}/console/stops/{a['stops'].pk}/").status_code == 200
        assert client.get(f"{V1}/console/stops/{b['stops'].pk}/").status_code == 404, label
        found = client.get(f"{V1}/console/search/", {"q": "ORD-"}).json()["results"]
        assert [r["shipment"]["id"] for r in found] == [a["shipments"].pk], label
        box = {"bbox": "-71.3,-30,-71.2,-29.9", "zoom": 15}
        streets = client.get(f"{V1}/console/streets/", box)
        assert streets.status_code == 200, label  # shared road lines, no tenant rows


def test_reassign_never_crosses_carriers(world, callers):
    a, b = world.rows["a"], world.rows["b"]
    second = RouteFactory(organization=world.org, carrier=world.a, hub=world.hub, code="R-A2")
    before = {s.pk: _snapshot(s) for s in (a["stops"], b["stops"])}
    for label, client, _permissions in callers:
        to_theirs = client.post(
            f"{V1}/stops/{a['stops'].pk}/reassign/", {"route": b["routes"].pk}, format="json"
        )
        assert to_theirs.status_code == 404 and "route" in to_theirs.json()["fields"], label
        from_theirs = client.post(
            f"{V1}/stops/{b['stops'].pk}/reassign/", {"route": second.pk}, format="json"
        )
        assert from_theirs.status_code == 404, label
    assert {s: _snapshot(Stop(pk=s)) for s in before} == before


# --- the declarations themselves ----------------------------------------------------------------


def test_every_tenant_model_declares_how_it_reaches_a_carrier():
    from django.apps import apps

    from control_tower.tenancy import carrier_scope
    from control_tower.tenancy.models import TenantModel

    undecided = [
        model._meta.label
        for model in apps.get_models()
        if issubclass(model, TenantModel)
        and model._meta.label not in carrier_scope.CARRIER_PATHS
        and model._meta.label not in carrier_scope.ORGANIZATION_ONLY
    ]
    assert not undecided, f"declare these in tenancy/carrier_scope.py: {undecided}"


def test_declared_paths_end_at_a_carrier_or_a_driver():
    from django.apps import apps

    from carriers.models import Carrier, Driver
    from control_tower.tenancy import carrier_scope

    def target(model, path):
        if path == "pk":
            return model
        for step in path.split("__"):
            model = model._meta.get_field(step).related_model
        return model

    for label, paths in carrier_scope.CARRIER_PATHS.items():
        if paths == carrier_scope.SHARED:
            continue
        for path in paths if isinstance(paths, tuple) else (paths,):
            assert target(apps.get_model(label), path) is Carrier, (label, path)
    for label, path in carrier_scope.DRIVER_PATHS.items():
        if path != carrier_scope.SHARED:
            assert target(apps.get_model(label), path) is Driver, (label, path)


def test_a_driver_sees_their_routes_and_the_shared_hubs_only(world, tenant, api_client_for):
    from carriers.models import Driver

    client = api_client_for(tenant.user(Role.DRIVER))
    with dangerously_all_organizations():
        driver = Driver.dangerously_unscoped.get(user=tenant.user(Role.DRIVER))
    mine = RouteFactory(organization=world.org, carrier=world.a, hub=world.hub, driver=driver)
    routes = {r["id"] for r in client.get(f"{V1}/routes/").json()["results"]}
    assert routes == {mine.pk}
    assert client.get(f"{V1}/routes/{world.of('a', 'routes').pk}/").status_code == 404
    assert world.hub.pk in {h["id"] for h in client.get(f"{V1}/hubs/").json()["results"]}


def test_filtering_by_another_carriers_id_answers_like_a_missing_id(world, callers):
    """A foreign-key filter validates its id: another carrier's id must get the same 400 as an
    id that does not exist, not an empty 200 that tells it exists."""
    b = world.rows["b"]
    cases = [
        ("drivers", "carrier", b["carriers"].pk),
        ("vehicles", "carrier", b["carriers"].pk),
        ("devices", "driver", b["drivers"].pk),
        ("shipments", "carrier", b["carriers"].pk),
        ("routes", "driver", b["drivers"].pk),
        ("routes", "vehicle", b["vehicles"].pk),
        ("stops", "route", b["routes"].pk),
        ("scans", "shipment", b["shipments"].pk),
    ]
    for label, client, _permissions in callers:
        for resource, name, value in cases:
            theirs = client.get(f"{V1}/{resource}/", {name: value})
            missing = client.get(f"{V1}/{resource}/", {name: 987654321})
            assert theirs.status_code == missing.status_code, (label, resource, theirs.content)
            assert theirs.json() == missing.json(), (label, resource)
            if resource != "scans":  # a plain number filter there: both are an empty 200
                assert theirs.status_code == 400, (label, resource, name)
        # Their own ids still filter.
        own = client.get(f"{V1}/drivers/", {"carrier": world.a.pk})
        assert own.status_code == 200, label
        assert world.of("a", "drivers").pk in {d["id"] for d in own.json()["results"]}, label


def test_incidents_only_on_own_carriers_routes(world, callers):
    """An incident names a route: carrier B's answers like a missing one, and raises nothing."""
    from exceptions.models import Alert

    def incidents():
        with dangerously_all_organizations():
            return Alert.dangerously_unscoped.filter(kind="incident").count()

    for label, client, permissions in callers:
        foreign = client.post(
            f"{V1}/incidents/",
            {"route": world.of("b", "routes").pk, "kind": "breakdown"},
            format="json",
        )
        if "write" not in permissions.get("tracking", ()):
            assert foreign.status_code == 403, (label, foreign.content)
            continue
        assert foreign.status_code == 404, (label, foreign.content)
        assert foreign.json()["error"] == "not_found"
        assert incidents() == 0, label
    own = callers[0][1].post(
        f"{V1}/incidents/",
        {"route": world.of("a", "routes").pk, "kind": "breakdown"},
        format="json",
    )
    assert own.status_code == 201, own.content
    assert own.json()["carrier"] == world.a.pk


def test_tracking_links_of_other_carriers_are_out_of_reach(world, callers):
    """Carrier B's shipment's links: not listed, not issued, not revoked (404 like a missing
    shipment); a carrier user (shipments read) may list their own but not issue or revoke."""
    from tracking.models import TrackingLink
    from tracking.services.tracking_links import link_issue, link_resolve

    with organization_scope(world.org):
        theirs, their_raw = link_issue(world.of("b", "shipments"), actor=None)
        ours, _ = link_issue(world.of("a", "shipments"), actor=None)
    for label, client, permissions in callers:
        may_write = "write" in permissions.get("shipments", ())
        for shipment, link in ((world.of("b", "shipments"), theirs),):
            base = f"{V1}/shipments/{shipment.pk}/tracking-links/"
            assert client.get(base).status_code == 404, label
            expected = 404 if may_write else 403
            assert client.post(base, {}, format="json").status_code == expected, label
            assert client.delete(f"{base}{link.pk}/").status_code == expected, label
        own = f"{V1}/shipments/{world.of('a', 'shipments').pk}/tracking-links/"
        assert [r["id"] for r in client.get(own).json()] == [ours.pk], label
        # B's link id under A's own shipment is not found either.
        response = client.delete(f"{own}{theirs.pk}/")
        assert response.status_code == (404 if may_write else 403), label
    assert link_resolve(their_raw) is not None
    with dangerously_all_organizations():
        assert (
            TrackingLink.dangerously_unscoped.filter(shipment=world.of("b", "shipments")).count()
            == 1
        )


def test_notifications_of_other_carriers_are_out_of_reach(world, tenant, callers):
    """Messages are narrowed to the caller's carrier; the organization's notification policy
    (settings, triggers, templates, contacts) is never a carrier's to read or change."""
    from notifications.models import ContactPreference, Notification, NotificationTemplate
    from tests.notifications.fixtures import create_shipment, no_quiet_hours

    no_quiet_hours(world.org)
    create_shipment(tenant, reference="N-A", barcode="NA", carrier=world.a)
    create_shipment(tenant, reference="N-B", barcode="NB", carrier=world.b)
    from control_tower.events import relay

    relay.relay_pending(budget_s=10)
    with organization_scope(world.org):
        own = set(Notification.objects.filter(carrier=world.a).values_list("pk", flat=True))
        other = set(Notification.objects.filter(carrier=world.b).values_list("pk", flat=True))
        template = NotificationTemplate.objects.create(
            organization=world.org, trigger="delivered", channel="sms", language="es", text="x"
        )
        contact = ContactPreference.objects.create(
            organization=world.org,
            channel="sms",
            address="+56987654321",
            state="opted_out",
            source="api",
        )
    assert own and other
    for label, client, _permissions in callers:
        listed = client.get(f"{V1}/notifications/", {"page_size": 100}).json()["results"]
        assert {m["id"] for m in listed} == own, label
        for pk in other:
            assert client.get(f"{V1}/notifications/{pk}/").status_code == 404, label
        for pk in own:
            assert client.get(f"{V1}/notifications/{pk}/").status_code == 200, label
        for method, path, body in (
            ("get", "/notification-settings/", None),
            ("patch", "/notification-settings/", {"sender_name": "x"}),
            ("get", "/notification-triggers/", None),
            ("get", "/notification-triggers/delivered/", None),
            ("patch", "/notification-triggers/delivered/", {"enabled": False}),
            ("post", "/notification-templates/", {"trigger": "delivered", "text": "y"}),
            ("put", f"/notification-templates/{template.pk}/", {"text": "y"}),
            ("patch", f"/notification-templates/{template.pk}/", {"text": "y"}),
            ("delete", f"/notification-templates/{template.pk}/", None),
            ("post", "/notification-templates/preview/", {"trigger": "delivered"}),
            ("post", "/notification-contacts/", {"channel": "sms", "address": "+56987654321"}),
        ):
            response = getattr(client, method)(f"{V1}{path}", body, format="json")
            assert response.status_code in (403, 404), (label, method, path, response.status_code)
        for path in (
            "/notification-templates/",
            "/notification-contacts/",
            f"/notification-templates/{template.pk}/",
            f"/notification-contacts/{contact.pk}/",
        ):
            assert client.get(f"{V1}{path}").status_code == 403, (label, path)
    with organization_scope(world.org):
        assert NotificationTemplate.objects.get(pk=template.pk).text == "x"
