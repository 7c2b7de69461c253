"""Finding 5 of issue 18: the OpenAPI schema tells the truth — blank emails/URLs/colours and an
empty logo as the API returns them, every error answer with the one error body, the native fix
body described field by field — and the 500s the fuzzer found answer 4xx."""

from __future__ import annotations

import json

import pytest
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer

from control_tower.tenancy.roles import Role
from tests.factories import DriverFactory, ShipmentFactory
from tracking.ingest.protocols import NATIVE_FIELDS

ERROR_REF = {"$ref": "#/components/schemas/Error"}


@pytest.fixture(scope="module")
def document() -> dict:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(schema))


def _property(document, component: str, name: str) -> dict:
    return document["components"]["schemas"][component]["properties"][name]


def _allows_blank(prop: dict) -> bool:
    """ "" passes: no top-level format/pattern, and an anyOf branch takes the empty string."""
    if "format" in prop or "pattern" in prop:
        return False
    return any(branch.get("maxLength") == 0 for branch in prop.get("anyOf", []))


@pytest.mark.django_db
def test_blank_emails_the_api_returns_are_allowed_by_the_schema(document, tenant, api_client_for):
    ShipmentFactory(organization=tenant.organization, recipient_email="")
    DriverFactory(organization=tenant.organization, carrier=tenant.carrier, email="")
    client = api_client_for(tenant.user(Role.OWNER))
    shipment = client.get("/api/v1/shipments/").json()["results"][0]
    carrier = client.get(f"/api/v1/carriers/{tenant.carrier.pk}/").json()
    drivers = client.get("/api/v1/drivers/").json()["results"]
    organization = client.get("/api/v1/organization/").json()

    assert shipment["recipient_email"] == "" and carrier["contact_email"] == ""
    assert "" in {driver["email"] for driver in drivers}
    assert organization["support_email"] == organization["support_url"] == ""
    assert organization["accent_color"] == ""
    for component, name in [
        ("Shipment", "recipient_email"),
        ("ShipmentRequest", "recipient_email"),
        ("Carrier", "contact_email"),
        ("Driver", "email"),
        ("Organization", "support_email"),
        ("Organization", "support_url"),
        ("Organization", "accent_color"),
        ("Membership", "email"),  # read-only, from the user's (blank-able) email
    ]:
        prop = _property(document, component, name)
        assert _allows_blank(prop), (component, name, prop)
    # A non-blank value is still checked as an email.
    assert {"format": "email"} in _property(document, "Shipment", "recipient_email")["anyOf"]


@pytest.mark.django_db
def test_an_organization_without_logo_reads_null_and_the_schema_says_nullable(
    document, tenant, api_client_for
):
    body = api_client_for(tenant.user(Role.OWNER)).get("/api/v1/organization/").json()
    assert body["logo"] is None
    assert _property(document, "Organization", "logo")["nullable"] is True


def test_wall_clock_times_are_not_rfc3339_times(document):
    # "21:00:00" (what DRF writes) is no JSON Schema `time`, which needs an offset.
    prop = _property(document, "NotificationSettings", "quiet_hours_start")
    assert "format" not in prop and prop["pattern"].startswith("^")


def test_every_operation_documents_its_error_answers_with_one_error_body(document):
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error", "detail", "fields"]
    operations = [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]
    assert len(operations) > 150
    for path, method, operation in operations:
        responses = operation["responses"]
        for code in ("401", "403", "429"):
            assert code in responses, (method, path, code)
        if "{" in path:
            assert "404" in responses, (method, path)
        if method != "get":
            assert "409" in responses, (method, path)
        if "requestBody" in operation:
            assert "400" in responses, (method, path)
    shipment = document["paths"]["/api/v1/shipments/{id}/"]
    assert shipment["patch"]["responses"]["400"]["content"]["application/json"]["schema"] == (
        ERROR_REF
    )
    assert shipment["get"]["responses"]["404"]["content"]["application/json"]["schema"] == (
        ERROR_REF
    )


def test_the_native_ping_batch_describes_each_fix(document):
    body = document["paths"]["/api/v1/ingest/pings"]["post"]["requestBody"]
    batch, wrapped = body["content"]["application/json"]["schema"]["oneOf"]
    assert wrapped["properties"]["pings"] == batch
    fix = batch["items"]
    assert fix["required"] == ["time", "lat", "lon"] and fix["additionalProperties"] is False
    assert set(fix["properties"]) == NATIVE_FIELDS  # what the parser accepts, no more
    # The bounds are the validator's (tracking/ingest/fixes.py BOUNDS).
    assert fix["properties"]["speed"]["maximum"] == 340
    assert fix["properties"]["lat"]["minimum"] == -90
    assert fix["properties"]["event_id"]["maxLength"] == 64


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/alerts/null/assign/",
        "/api/v1/alerts/false/resolve/",
        "/api/v1/alerts/null/snooze/",
        "/api/v1/stops/int/reassign/",
        "/api/v1/stops/99999999999999999999999/reassign/",
    ],
)
def test_a_path_id_that_is_no_integer_is_a_json_404(path, tenant, api_client_for):
    # Found by the fuzzer: these were 500 (ValueError from the query).
    response = api_client_for(tenant.user(Role.OWNER)).post(path, {}, format="json")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


@pytest.mark.django_db
def test_a_filter_time_with_an_offset_postgres_refuses_is_still_answered(tenant, api_client_for):
    # Found by the fuzzer: `+17:19` is a valid Python offset but PostgreSQL's DataError → 500.
    client = api_client_for(tenant.user(Role.OWNER))
    answer = client.get(
        "/api/v1/webhook-deliveries/", {"created_after": "0283-12-18T12:20:18+17:19"}
    )
    assert answer.status_code == 200
    out_of_range = client.get(
        "/api/v1/webhook-deliveries/", {"created_before": "0001-01-01T00:10:00+14:00"}
    )
    assert out_of_range.status_code == 400
    assert "created_before" in out_of_range.json()["fields"]


@pytest.mark.django_db
def test_template_preview_answers_as_documented(document, tenant, api_client_for):
    responses = document["paths"]["/api/v1/notification-templates/preview/"]["post"]["responses"]
    reference = responses["200"]["content"]["application/json"]["schema"]["$ref"]
    preview = document["components"]["schemas"][reference.rsplit("/", 1)[-1]]
    answer = api_client_for(tenant.user(Role.OWNER)).post(
        "/api/v1/notification-templates/preview/",
        {"trigger": "out_for_delivery", "channel": "sms", "language": "en"},
        format="json",
    )
    assert answer.status_code == 200, answer.content
    assert set(answer.json()) <= set(preview["properties"])
    assert set(preview["required"]) <= set(answer.json())
