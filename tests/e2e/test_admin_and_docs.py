"""In a real browser: the tenant-scoped admin, the offline API docs, the session-authenticated
API and the login form."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from control_tower.tenancy.roles import Role
from tests.conftest import build_tenant
from tests.e2e.conftest import login
from tests.factories import PASSWORD, ShipmentFactory
from tracking.models import Shipment

pytestmark = pytest.mark.django_db(transaction=True)

OURS, THEIRS = "ACME-E2E-0001", "GLOBEX-E2E-0001"


@pytest.fixture
def tenants():
    """Two organizations, a person per role in each, one shipment each (committed, so the live
    server sees them)."""
    acme, globex = build_tenant("acme"), build_tenant("globex")
    ShipmentFactory(organization=acme.organization, reference=OURS)
    ShipmentFactory(organization=globex.organization, reference=THEIRS)
    return acme, globex


def test_owner_sees_only_their_organizations_shipments_in_the_admin(page, live_server, tenants):
    acme, _globex = tenants
    owner = acme.user(Role.OWNER)
    assert owner.username == "owner@acme.example.com" and not owner.is_staff

    login(page, live_server, owner.username, PASSWORD)
    expect(page).to_have_url(f"{live_server.url}/")

    page.goto(f"{live_server.url}/admin/")
    expect(page.get_by_role("heading", name="Organization data")).to_be_visible()
    shipments_link = page.locator("#content-main").get_by_role("link", name="Shipments", exact=True)
    expect(shipments_link).to_be_visible()

    shipments_link.click()
    page.wait_for_url(f"{live_server.url}/admin/tracking/shipment/")
    results = page.locator("#result_list")
    expect(results).to_contain_text(OURS)
    expect(results.locator("tbody tr")).to_have_count(1)
    expect(page.locator("body")).not_to_contain_text(THEIRS)


def test_dispatcher_is_not_let_into_the_admin(page, live_server, tenants):
    acme, _globex = tenants
    login(page, live_server, acme.user(Role.DISPATCHER).username, PASSWORD)
    expect(page).to_have_url(f"{live_server.url}/")

    page.goto(f"{live_server.url}/admin/")
    # Django's admin sends a signed-in person without permission to its own login page.
    expect(page).to_have_url(re.compile(r"/admin/login/\?next=/admin/$"))
    expect(page.locator(".errornote")).to_contain_text("not authorized")
    expect(page.get_by_role("link", name="Shipments", exact=True)).to_have_count(0)

    page.goto(f"{live_server.url}/admin/tracking/shipment/")
    expect(page).to_have_url(re.compile(r"/admin/login/"))
    expect(page.locator("#result_list")).to_have_count(0)
    expect(page.locator("body")).not_to_contain_text(OURS)


def test_api_docs_render_offline(page, live_server, blocked_requests):
    page.goto(f"{live_server.url}/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Control Tower API")
    shipments_list = page.locator(".opblock-summary-path[data-path='/api/v1/shipments/']").first
    # Recent Swagger UI builds render only the operations near the viewport: scroll down to
    # the shipments section instead of expecting every section in the DOM at once.
    for _ in range(200):
        if shipments_list.count():
            break
        page.mouse.wheel(0, 400)
        page.wait_for_timeout(50)
    expect(shipments_list).to_be_visible()
    expect(page.locator(".opblock").first).to_be_visible()
    # Let every asset, the schema and anything Swagger UI fetches afterwards finish or fail.
    page.wait_for_load_state("networkidle")
    assert page.evaluate("typeof SwaggerUIBundle") == "function"
    assert blocked_requests == []


def test_session_api_shows_own_shipments_and_needs_csrf_to_write(page, live_server, tenants):
    acme, _globex = tenants
    login(page, live_server, acme.user(Role.DISPATCHER).username, PASSWORD)
    expect(page).to_have_url(f"{live_server.url}/")
    url = f"{live_server.url}/api/v1/shipments/"

    listing = page.request.get(url)
    assert listing.status == 200, listing.text()
    body = listing.json()
    assert body["count"] == 1
    assert [row["reference"] for row in body["results"]] == [OURS]

    new_shipment = {
        "reference": "ACME-E2E-0002",
        "barcode": "ACMEE2E0002",
        "recipient_name": "Juan Soto",
        "address_line1": "Avenida Francisco de Aguirre 100",
        "city": "La Serena",
        "country_code": "CL",
    }
    refused = page.request.post(url, data=new_shipment)
    assert refused.status == 403, refused.text()
    assert "CSRF" in refused.json()["detail"]
    assert not Shipment.dangerously_unscoped.filter(reference="ACME-E2E-0002").exists()

    # The same call with the token from the CSRF cookie goes through: the 403 was about CSRF.
    csrf_token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    created = page.request.post(url, data=new_shipment, headers={"X-CSRFToken": csrf_token})
    assert created.status == 201, created.text()
    stored = Shipment.dangerously_unscoped.get(reference="ACME-E2E-0002")
    assert stored.organization_id == acme.organization.pk


def test_wrong_password_shows_an_error_and_stays_on_the_login_page(page, live_server, tenants):
    acme, _globex = tenants
    login(page, live_server, acme.user(Role.DISPATCHER).username, "not-the-password")

    expect(page).to_have_url(re.compile(r"/accounts/login/$"))
    expect(page.get_by_role("alert")).to_contain_text("did not match")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    assert "sessionid" not in {cookie["name"] for cookie in page.context.cookies()}


def test_requests_leaving_the_machine_are_blocked_and_recorded(page, live_server, blocked_requests):
    """The guard behind `blocked_requests == []` above really catches off-machine requests.
    (From a blank page: the site's own pages refuse such a fetch earlier, by their
    Content-Security-Policy, so it would never reach the guard.)"""
    page.goto("about:blank")
    outcome = page.evaluate(
        "fetch('https://cdn.example.com/lib.js').then(() => 'fetched', () => 'refused')"
    )
    assert outcome == "refused"
    assert blocked_requests == ["https://cdn.example.com/lib.js"]
