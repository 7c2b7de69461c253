import pytest

from control_tower.tenancy.roles import Role
from tests.factories import CarrierFactory, HubFactory, ShipmentFactory
from tracking.models import Shipment, ShipmentEvent

pytestmark = pytest.mark.django_db


def body(n=1, **extra):
    return {
        "reference": f"ORD-{n}",
        "barcode": f"BC-{n}",
        "recipient_name": "Ana",
        "recipient_phone": "+56 9 5555 0000",
        "address_line1": "Av. Francisco de Aguirre 100",
        "city": "La Serena",
        "country_code": "cl",
        "location": {"type": "Point", "coordinates": [-71.25, -29.9]},
        "promised_window_start": "2026-11-24T13:00:00Z",
        "promised_window_end": "2026-11-24T15:00:00Z",
        **extra,
    }


@pytest.fixture
def dispatcher_api(tenant, api_client_for):
    return api_client_for(tenant.user(Role.DISPATCHER))


def test_create_read_update_delete(tenant, dispatcher_api):
    created = dispatcher_api.post(
        "/api/v1/shipments/", body(carrier=tenant.carrier.pk), format="json"
    )
    assert created.status_code == 201, created.content
    data = created.json()
    assert data["status"] == "info_received" and data["country_code"] == "CL"
    assert data["location"] == {"type": "Point", "coordinates": [-71.25, -29.9]}
    url = f"/api/v1/shipments/{data['id']}/"
    assert dispatcher_api.get(url).json()["reference"] == "ORD-1"
    patched = dispatcher_api.patch(url, {"delivery_instructions": "Ring twice"}, format="json")
    assert patched.json()["delivery_instructions"] == "Ring twice"
    events = dispatcher_api.get(url + "events/").json()
    assert [e["to_status"] for e in events] == ["info_received"]
    assert dispatcher_api.delete(url).status_code == 204
    assert not Shipment.dangerously_unscoped.filter(pk=data["id"]).exists()


def test_validation_errors_name_every_field(dispatcher_api):
    response = dispatcher_api.post(
        "/api/v1/shipments/",
        body(
            country_code="Chile",
            location={"lat": 123, "lon": 0},
            promised_window_end="2026-11-24T12:00:00Z",
            parcel_count=0,
        ),
        format="json",
    )
    assert response.status_code == 400
    payload = response.json()
    assert payload["error"] == "validation_error"
    assert {"country_code", "location", "parcel_count"} <= set(payload["fields"])


def test_window_end_before_start_is_refused(dispatcher_api):
    response = dispatcher_api.post(
        "/api/v1/shipments/", body(promised_window_end="2026-11-24T12:00:00Z"), format="json"
    )
    assert response.status_code == 400
    assert "promised_window_end" in response.json()["fields"]


def test_duplicate_reference_is_a_field_error(tenant, dispatcher_api):
    ShipmentFactory(organization=tenant.organization, reference="ORD-1")
    response = dispatcher_api.post("/api/v1/shipments/", body(), format="json")
    assert response.status_code == 400
    assert "reference" in response.json()["fields"]


def test_status_is_set_only_on_creation_and_only_to_an_initial_one(tenant, dispatcher_api):
    bad = dispatcher_api.post("/api/v1/shipments/", body(status="delivered"), format="json")
    assert bad.status_code == 400 and "status" in bad.json()["fields"]
    ok = dispatcher_api.post("/api/v1/shipments/", body(status="at_hub"), format="json")
    assert ok.json()["status"] == "at_hub"
    edit = dispatcher_api.patch(
        f"/api/v1/shipments/{ok.json()['id']}/", {"status": "delivered"}, format="json"
    )
    assert edit.status_code == 400 and "transition" in str(edit.json()["fields"]["status"])


def test_transitions_legal_idempotent_and_illegal(tenant, dispatcher_api):
    shipment = ShipmentFactory(organization=tenant.organization)
    url = f"/api/v1/shipments/{shipment.pk}/transition/"
    for status in ("at_hub", "out_for_delivery", "delivered", "delivered"):
        response = dispatcher_api.post(url, {"status": status}, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["status"] == status
    late = dispatcher_api.post(url, {"status": "out_for_delivery"}, format="json")
    assert late.status_code == 409
    assert late.json()["error"] == "illegal_transition"
    assert "final" in str(late.json()["fields"])
    history = ShipmentEvent.dangerously_unscoped.filter(shipment=shipment)
    assert [e.to_status for e in history.order_by("id")] == [
        "at_hub",
        "out_for_delivery",
        "delivered",
    ]
    assert history.first().actor == tenant.user(Role.DISPATCHER)


def test_delete_refused_once_something_happened(tenant, dispatcher_api):
    shipment = ShipmentFactory(organization=tenant.organization, status="at_hub")
    response = dispatcher_api.delete(f"/api/v1/shipments/{shipment.pk}/")
    assert response.status_code == 409
    assert response.json()["error"] == "not_deletable"


def test_filters_search_ordering_and_pagination(tenant, dispatcher_api):
    other = CarrierFactory(organization=tenant.organization)
    for n in range(7):
        ShipmentFactory(
            organization=tenant.organization,
            carrier=tenant.carrier if n % 2 else other,
            status="at_hub" if n < 3 else "info_received",
            recipient_name=f"Person{n}x",
        )
    page = dispatcher_api.get("/api/v1/shipments/", {"page_size": 3}).json()
    assert page["count"] == 7 and len(page["results"]) == 3 and page["next"]
    last = dispatcher_api.get("/api/v1/shipments/", {"page_size": 3, "page": 3}).json()
    assert len(last["results"]) == 1 and last["next"] is None
    at_hub = dispatcher_api.get("/api/v1/shipments/", {"status": "at_hub"}).json()
    assert at_hub["count"] == 3
    both = dispatcher_api.get(
        "/api/v1/shipments/", {"status": ["at_hub", "info_received"], "carrier": other.pk}
    ).json()
    assert both.get("count") == 4, both
    found = dispatcher_api.get("/api/v1/shipments/", {"search": "Person5x"}).json()
    assert found["count"] == 1
    ordered = dispatcher_api.get("/api/v1/shipments/", {"ordering": "reference"}).json()
    references = [row["reference"] for row in ordered["results"]]
    assert references == sorted(references)
    bad = dispatcher_api.get("/api/v1/shipments/", {"status": "lost"})
    assert bad.status_code == 400 and "status" in bad.json()["fields"]
    beyond = dispatcher_api.get("/api/v1/shipments/", {"page": 99})
    assert beyond.status_code == 404


def test_bulk_create_is_all_or_nothing_with_indexed_errors(tenant, dispatcher_api):
    hub = HubFactory(organization=tenant.organization)
    items = [body(n, hub=hub.pk, carrier=tenant.carrier.pk) for n in range(5)]
    items[3]["barcode"] = items[1]["barcode"]  # duplicate inside the batch
    items[4]["city"] = ""  # missing
    response = dispatcher_api.post("/api/v1/shipments/bulk/", {"shipments": items}, format="json")
    assert response.status_code == 400
    fields = response.json()["fields"]["shipments"]
    assert set(fields) == {"3", "4"}
    assert "barcode" in fields["3"] and "city" in fields["4"]
    assert Shipment.dangerously_unscoped.count() == 0

    items[3]["barcode"] = "fixed"
    items[4]["city"] = "Coquimbo"
    response = dispatcher_api.post("/api/v1/shipments/bulk/", {"shipments": items}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["created"] == 5
    assert ShipmentEvent.dangerously_unscoped.filter(to_status="info_received").count() == 5
    again = dispatcher_api.post("/api/v1/shipments/bulk/", {"shipments": items}, format="json")
    assert again.status_code == 400
    assert set(again.json()["fields"]["shipments"]) == {"0", "1", "2", "3", "4"}


def test_bulk_limit_and_empty_batch(dispatcher_api, settings):
    settings.BULK_MAX_ITEMS = 2
    too_many = dispatcher_api.post(
        "/api/v1/shipments/bulk/", {"shipments": [body(n) for n in range(3)]}, format="json"
    )
    assert too_many.status_code == 400
    assert "At most 2" in str(too_many.json()["fields"])
    empty = dispatcher_api.post("/api/v1/shipments/bulk/", {"shipments": []}, format="json")
    assert empty.status_code == 400


def test_bulk_of_a_thousand_uses_a_bounded_number_of_queries(
    tenant, dispatcher_api, django_assert_max_num_queries
):
    items = [body(n, carrier=tenant.carrier.pk) for n in range(1000)]
    with django_assert_max_num_queries(30):
        response = dispatcher_api.post(
            "/api/v1/shipments/bulk/", {"shipments": items}, format="json"
        )
    assert response.status_code == 201
    assert response.json()["created"] == 1000


def test_malformed_json_is_a_clear_400(dispatcher_api):
    response = dispatcher_api.generic(
        "POST", "/api/v1/shipments/", "{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"] == "parse_error"


def test_unknown_api_path_is_json_404(dispatcher_api):
    response = dispatcher_api.get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
