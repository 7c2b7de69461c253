"""The ops manager's /reports/ pages in Chromium, on real roll-ups (a few days of routes built
with the factories, rolled up by the SLA code): open the scorecard, filter by carrier, see the
breach, drill down from the late rate to the late stops, open the console's deep link to one,
download the Excel; a carrier user sees only its carrier; the ETA accuracy page. No serious
accessibility issue."""

from __future__ import annotations

import re

import openpyxl
import pytest
from playwright.sync_api import expect

from control_tower.tenancy.roles import Role
from tests.e2e.conftest import SCREENSHOT_DIR, login
from tests.e2e.test_tracking_page import axe_violations
from tests.factories import PASSWORD
from tests.portal.test_reports_pages import build_history
from tests.sla.test_eta_accuracy import build as build_accuracy_world

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_ops_manager_filters_drills_down_opens_the_stop_and_downloads_excel(
    asgi_live_server, tenant, page, tmp_path
):
    history = build_history(tenant, days=3)
    server = asgi_live_server.url
    login(page, asgi_live_server, tenant.user(Role.OPS_MANAGER).username, PASSWORD)
    page.get_by_role("link", name="Reports").click()
    page.wait_for_url(f"{server}/reports/")
    scorecard = page.locator("#scorecard")
    expect(scorecard).to_contain_text("Andes 3PL")
    expect(scorecard).to_contain_text("Own Fleet")
    assert axe_violations(page) == []
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / "reports_scorecard.png"), full_page=True)

    # Filter by carrier with the form (a plain GET form: no script needed).
    page.locator("select[name=carrier]").select_option(label="Andes 3PL")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(rf"/reports/\?.*carrier={history.andes.pk}"))
    rows = page.locator("#scorecard tbody tr")
    expect(rows).to_have_count(1)
    andes = rows.first
    expect(andes).to_contain_text("Andes 3PL")
    expect(page.locator("#scorecard")).not_to_contain_text("Own Fleet")
    on_time = andes.locator("td").first
    expect(on_time).to_contain_text("33.3%")
    expect(on_time).to_contain_text("Breach")

    # Drill down from the on-time rate to the late deliveries behind it.
    on_time.get_by_role("link", name="33.3%").click()
    page.wait_for_url(re.compile(r"/reports/drilldown/\?.*metric=on_time_pct"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("On time")
    table = page.locator("#drilldown")
    expect(table.locator("tbody tr")).to_have_count(len(history.late_stop_ids))
    assert axe_violations(page) == []
    page.screenshot(path=str(SCREENSHOT_DIR / "reports_drilldown.png"), full_page=True)
    back = page.locator("#back-to-scorecard")
    assert f"carrier={history.andes.pk}" in back.get_attribute("href")

    # The Excel download: the reports API, same filters, parsed with openpyxl.
    with page.expect_download() as download_info:
        page.locator(".exports a[data-format=xlsx]").click()
    path = tmp_path / "drilldown.xlsx"
    download_info.value.save_as(path)
    sheet = openpyxl.load_workbook(path).active
    values = [[cell for cell in row] for row in sheet.iter_rows(values_only=True)]
    assert len([row for row in values[1:] if any(row)]) == len(history.late_stop_ids)

    # From a late stop to its details in the console (deep link /console/?stop=<id>).
    first_link = table.get_by_role("link", name="Stop details").first
    href = first_link.get_attribute("href")
    stop_id = int(re.search(r"stop=(\d+)", href).group(1))
    assert stop_id in history.late_stop_ids
    first_link.click()
    page.wait_for_url(re.compile(rf"/console/\?stop={stop_id}$"))
    expect(page.locator("#details-body #stop-title")).to_contain_text("of route andes-")


def test_a_carrier_user_sees_only_its_carrier(asgi_live_server, tenant, page):
    build_history(tenant, days=2)
    login(page, asgi_live_server, tenant.user(Role.CARRIER_USER).username, PASSWORD)
    page.goto(f"{asgi_live_server.url}/reports/")
    scorecard = page.locator("#scorecard")
    expect(scorecard).to_contain_text("Own Fleet")
    assert "Andes" not in page.content()
    options = page.locator("select[name=carrier]").locator("option")
    assert options.all_inner_texts() == ["All carriers", "Own Fleet"]
    page.locator("#scorecard tbody td a").first.click()
    page.wait_for_url(re.compile(r"/reports/drilldown/"))
    assert "Andes" not in page.content()


def test_the_eta_accuracy_page_from_the_scorecard_tab_to_a_carrier(asgi_live_server, tenant, page):
    """The ops manager opens ETA accuracy from the reports' tabs, reads the table by horizon
    and the coverage chart, groups by carrier, narrows to one; no serious accessibility issue.
    A carrier user sees only its own carrier there too."""
    world = build_accuracy_world(tenant)
    server = asgi_live_server.url
    login(page, asgi_live_server, tenant.user(Role.OPS_MANAGER).username, PASSWORD)
    page.goto(f"{server}/reports/?from={world.day}&to={world.day}")
    page.get_by_role("link", name="ETA accuracy").click()
    page.wait_for_url(re.compile(r"/reports/eta/\?"))
    expect(page.get_by_role("heading", level=1)).to_have_text("ETA accuracy")
    horizons = page.locator("#by-horizon tbody tr")
    expect(horizons).to_have_count(5)
    expect(page.locator("#by-horizon tr[data-horizon='120+']")).to_contain_text("-10.0 min")
    expect(page.locator("#coverage-chart svg")).to_be_visible()
    assert page.locator("#coverage-chart path.series").count() == 5
    assert axe_violations(page) == []
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / "reports_eta_accuracy.png"), full_page=True)

    page.locator("select[name=group]").select_option(label="Carrier")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r"/reports/eta/\?.*group=carrier"))
    expect(page.locator("#by-group tbody tr")).to_have_count(2)
    page.locator("select[name=carrier]").select_option(label="Rival 3PL")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(rf"carrier={world.rival.pk}"))
    expect(page.locator("#by-group tbody tr")).to_have_count(1)
    expect(page.locator("#overall-summary")).to_contain_text("3 samples")

    page.context.clear_cookies()
    login(page, asgi_live_server, tenant.user(Role.CARRIER_USER).username, PASSWORD)
    page.goto(f"{server}/reports/eta/?from={world.day}&to={world.day}&group=carrier")
    expect(page.locator("#by-group tbody tr")).to_have_count(1)
    expect(page.locator("#by-group")).to_contain_text("Own Fleet")
    assert "Rival 3PL" not in page.content()
