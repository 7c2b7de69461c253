"""The console page itself (its data comes from the console API and the socket, tested apart):
who gets in, and what the page is configured with."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from control_tower.tenancy.roles import Role

pytestmark = pytest.mark.django_db


def page_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def console_config(response) -> dict:
    match = re.search(
        r'<script id="console-config" type="application/json">(.*?)</script>',
        response.content.decode(),
        re.S,
    )
    assert match, "the page carries its configuration"
    return json.loads(match.group(1))


def test_anonymous_people_are_sent_to_the_login_page():
    response = Client().get("/console/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/console/"


@pytest.mark.parametrize(
    ("role", "can_reassign"),
    [
        (Role.OWNER, True),
        (Role.ADMIN, True),
        (Role.DISPATCHER, True),
        (Role.OPS_MANAGER, False),
        (Role.CARRIER_USER, True),
    ],
)
def test_people_who_read_routes_get_the_console(tenant, role, can_reassign):
    response = page_for(tenant.user(role)).get("/console/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "leaflet/leaflet.js" in body and "portal/console.js" in body
    # Nothing from another host (no CDN): every script and stylesheet is served by us.
    external = re.findall(r'(?:src|href)="(?:https?:)?//[^"]*"', body)
    assert external == []
    config = console_config(response)
    assert config["organization"] == {"name": "Acme", "time_zone": "America/Santiago"}
    assert config["role"] == role
    assert config["canReassign"] is can_reassign
    assert config["socketPath"] == "/ws/v1/events/"
    assert config["tileAttribution"] == "© OpenStreetMap contributors"


def test_drivers_get_403(tenant):
    assert page_for(tenant.user(Role.DRIVER)).get("/console/").status_code == 403


def test_a_person_without_an_organization_gets_403():
    from tests.factories import UserFactory

    assert page_for(UserFactory()).get("/console/").status_code == 403


def test_the_tile_url_is_a_setting_and_empty_disables_tiles(tenant, settings):
    settings.CONSOLE_TILE_URL = "https://tiles.depot.example/{z}/{x}/{y}.png"
    dispatcher = page_for(tenant.user(Role.DISPATCHER))
    assert console_config(dispatcher.get("/console/"))["tileUrl"] == settings.CONSOLE_TILE_URL
    settings.CONSOLE_TILE_URL = ""
    assert console_config(dispatcher.get("/console/"))["tileUrl"] == ""


def test_the_home_page_links_to_the_console_except_for_drivers(tenant):
    assert 'href="/console/"' in page_for(tenant.user(Role.DISPATCHER)).get("/").content.decode()
    assert 'href="/console/"' not in page_for(tenant.user(Role.DRIVER)).get("/").content.decode()
