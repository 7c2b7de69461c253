"""What recipients say through their tracking link, seen in the open console (real Chromium,
real ASGI server, the same world as tests/e2e/test_console.py): instructions, "I'm not home"
and a reschedule, each through its service, show up within 2 s without a reload: in the stop's
pane, as a flag on the stop's row and marker, in the "Recipients" feed. Screenshots land in
test-artifacts/screenshots/."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page, expect

from control_tower.ratelimit import ratelimit_reset
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from tests.e2e import test_console
from tests.e2e.conftest import SCREENSHOT_DIR
from tests.e2e.test_console import open_console, route_item
from tracking.models import Stop
from tracking.services import customer_actions as actions
from tracking.services.tracking_links import link_issue

pytestmark = pytest.mark.django_db(transaction=True)

world = test_console.world
LIVE_S = 2.0


@pytest.fixture(autouse=True)
def _fresh_limits():
    ratelimit_reset("track-action")
    yield
    ratelimit_reset("track-action")


def link_for(stop):
    with organization_scope(stop.organization):
        shipment = stop.shipments.get()
        link, _ = link_issue(shipment, actor=None)
    return shipment, link


def within(page: Page, locator, text: str, started: float) -> float:
    """Wait (at most LIVE_S) for `text` in `locator`; the seconds since `started`."""
    expect(locator).to_contain_text(text, timeout=LIVE_S * 1000)
    return time.monotonic() - started


def test_the_recipients_say_shows_up_in_the_open_console_within_2_s(asgi_live_server, world, page):
    shipment, link = link_for(world.moving_stop)
    open_console(page, asgi_live_server, world.acme.user(Role.DISPATCHER))
    route_item(page, "R-NORTE").click()
    details = page.locator("#details-body")
    details.locator(f"[data-stop-id='{world.moving_stop.pk}']").click()
    expect(details.locator("#stop-title")).to_have_text("Stop 3 of route R-NORTE")
    expect(details.locator(".instructions")).to_contain_text("None from the recipient.")
    expect(details.locator("#customer-actions")).to_contain_text("Nothing yet.")
    expect(page.locator("#customer-feed-empty")).to_be_visible()

    # Instructions: the words appear in the pane (read from the stop details, not the socket).
    started = time.monotonic()
    actions.customer_set_instructions(link, text="Gate code 4711, blue door", key="e2e-text-0001")
    assert within(page, details.locator(".instructions"), "Gate code 4711", started) < LIVE_S
    expect(details.locator("#customer-actions")).to_contain_text("Delivery instructions")
    expect(page.locator("#customer-feed")).to_contain_text(shipment.reference)
    expect(page.locator("#customer-feed")).to_contain_text("new delivery instructions")

    # "I'm not home": a banner at the top of the pane, the time in the organization's zone.
    started = time.monotonic()
    actions.customer_not_home(link, key="e2e-away-0001")
    banner = details.locator("#recipient-away")
    assert within(page, banner, "Recipient not home since", started) < LIVE_S
    away_at = Stop.dangerously_unscoped.get(pk=world.moving_stop.pk).recipient_away_at
    shown = page.evaluate("(iso) => ctConsole.kit.fmtTime(iso)", away_at.isoformat())
    expect(banner).to_contain_text(f"since {shown}")
    expect(banner).to_have_attribute("role", "note")
    actions_list = details.locator("#customer-actions li")
    expect(actions_list.first).to_contain_text("Not home (route R-NORTE)")
    expect(actions_list.nth(1)).to_contain_text("Gate code 4711")
    feed_first = page.locator("#customer-feed li").first
    expect(feed_first).to_contain_text("not home · stop 3 of route R-NORTE")

    # The route's stop list and map flag the stop with words, not colour only.
    route_item(page, "R-NORTE").click()
    row = details.locator(f"[data-stop-id='{world.moving_stop.pk}']")
    expect(row).to_contain_text(f"not home since {shown}")
    flag = page.locator(".leaflet-marker-pane .ct-stop-flag")
    expect(flag).to_have_count(1)
    expect(flag).to_have_text("not home")
    expect(flag).to_have_attribute("title", f"Stop 3: not home since {shown}")
    expect(details.locator(f"[data-stop-id='{world.late_stop.pk}']")).not_to_contain_text(
        "not home"
    )

    # A reschedule of stop 2's parcel: the stop leaves the plan (skipped), live, and the feed
    # line opens the stop it was taken off.
    late_shipment, late_link = link_for(world.late_stop)
    option = actions.customer_reschedule_options(late_link)[0]
    started = time.monotonic()
    actions.customer_reschedule(late_link, option_id=option.id, key="e2e-move-0001")
    assert within(page, feed_first, "rescheduled to", started) < LIVE_S
    expect(feed_first).to_contain_text(late_shipment.reference)
    expect(feed_first).to_contain_text("off route R-NORTE")
    expect(details.locator(f"[data-stop-id='{world.late_stop.pk}']")).to_contain_text(
        "skipped", timeout=LIVE_S * 1000
    )
    feed_first.locator("button").click()
    expect(details.locator("#stop-title")).to_have_text("Stop 2 of route R-NORTE")
    expect(details.locator("dl")).to_contain_text("skipped")

    # A line without a stop (instructions) searches the shipment: its route and stop open.
    page.locator("#customer-feed li").filter(has_text="new delivery instructions").locator(
        "button"
    ).click()
    expect(details.locator("#stop-title")).to_have_text("Stop 3 of route R-NORTE")
    expect(details.locator("#recipient-away")).to_be_visible()
    # Nothing was lost or re-synced on the way.
    assert page.evaluate("ctConsole.state.stats.resyncs") == 1

    # A console opened later reads the same from the API (route view and stop details).
    page.reload()
    expect(page.locator("#live-status")).to_have_text("Live")
    route_item(page, "R-NORTE").click()
    expect(details.locator("#route-title")).to_have_text("Route R-NORTE")
    page.wait_for_function(
        f"() => ctConsole.state.openRoute && ctConsole.state.openRoute.id === {world.north.pk}"
    )
    expect(row).to_contain_text(f"not home since {shown}")
    expect(flag).to_have_count(1)
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / "console_recipient_away.png"))


def test_a_carrier_user_of_another_carrier_hears_nothing_of_it(asgi_live_server, world, page):
    """Andes' carrier user: R-NORTE is acme-fleet's, so its recipients stay out of their feed."""
    from tests.factories import MembershipFactory

    andes_user = MembershipFactory(
        organization=world.acme.organization,
        role=Role.CARRIER_USER,
        carrier=world.andes,
        user__username="andes-user@acme.example.com",
    ).user
    _shipment, link = link_for(world.moving_stop)
    open_console(page, asgi_live_server, andes_user)
    expect(page.locator("#route-list")).to_contain_text("R-SUR")
    actions.customer_not_home(link, key="e2e-away-0002")
    actions.customer_set_instructions(link, text="Gate code 4711", key="e2e-text-0002")
    page.wait_for_timeout(1500)
    expect(page.locator("#customer-feed li")).to_have_count(0)
    expect(page.locator("#customer-feed-empty")).to_be_visible()
    assert page.evaluate("ctConsole.customerFeed().length") == 0
