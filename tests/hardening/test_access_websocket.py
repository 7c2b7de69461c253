"""Finding 4 (issue 18): the websocket accepted any port of an allowed host and malformed
Origins such as `http://127.0.0.1:8000.evil.example`, and a non-JSON, array or binary frame
killed the socket with 1006. Now Origins are an exact allow-list (control_tower/ws_guard.py)
and such frames get an error message on a socket that stays open."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.test import Client, override_settings

from control_tower.asgi import application
from control_tower.ratelimit import ratelimit_reset
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from control_tower.ws_guard import origin_allowed
from tests.portal.test_tracking_page import link_for, make_route

pytestmark = pytest.mark.django_db(transaction=True)

HOSTS = ["127.0.0.1", "localhost", "testserver", "tower.example.com"]


@pytest.mark.parametrize(
    "origin, host",
    [
        ("http://testserver", None),
        ("https://tower.example.com", None),
        ("https://tower.example.com:443", None),
        ("http://127.0.0.1:8000", "127.0.0.1:8000"),  # same origin: the dev server
        ("http://app.example:3000", None),  # WEBSOCKET_ALLOWED_ORIGINS
    ],
)
def test_allowed_origins(origin, host):
    with override_settings(
        ALLOWED_HOSTS=HOSTS, WEBSOCKET_ALLOWED_ORIGINS=["http://app.example:3000"]
    ):
        assert origin_allowed(origin, host)


@pytest.mark.parametrize(
    "origin, host",
    [
        ("http://127.0.0.1:8000.evil.example", "127.0.0.1:8000"),
        ("http://127.0.0.1:9000", "127.0.0.1:8000"),  # another port of an allowed host
        ("http://testserver:8080", None),
        ("http://tower.example.com:443", None),  # https's port with http
        ("http://evil.example", None),
        ("http://tower.example.com.evil.example", None),
        ("http://user@testserver", None),
        ("http://testserver/path", None),
        ("ftp://testserver", None),
        ("null", None),
        ("", None),
        (None, "testserver"),
        ("http://app.example:3001", None),
    ],
)
def test_refused_origins(origin, host):
    with override_settings(
        ALLOWED_HOSTS=HOSTS, WEBSOCKET_ALLOWED_ORIGINS=["http://app.example:3000"]
    ):
        assert not origin_allowed(origin, host)


def _cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


@pytest.mark.parametrize(
    "origin, host, connects",
    [
        (b"http://127.0.0.1:8000", b"127.0.0.1:8000", True),
        (b"http://127.0.0.1:8000.evil.example", b"127.0.0.1:8000", False),
        (b"http://127.0.0.1:9000", b"127.0.0.1:8000", False),
    ],
)
def test_the_console_socket_checks_the_origin(tenant, origin, host, connects):
    headers = [(b"origin", origin), (b"host", host), (b"cookie", _cookie(tenant.user(Role.OWNER)))]

    async def run():
        socket = WebsocketCommunicator(application, "/ws/v1/events/", headers=headers)
        connected, _ = await socket.connect()
        assert connected is connects
        await socket.disconnect()

    async_to_sync(run)()


async def _bad_frames_then_ping(socket) -> list[dict]:
    answers = []
    for frame in ({"text_data": "not json"}, {"text_data": "[1, 2]"}, {"bytes_data": b"\x00\x01"}):
        await socket.send_to(**frame)
        answers.append(await socket.receive_json_from(timeout=5))
    await socket.send_json_to({"type": "ping"})
    answers.append(await socket.receive_json_from(timeout=5))
    return answers


def _assert_errors_then_pong(answers):
    assert [a["type"] for a in answers] == ["error", "error", "error", "pong"]
    assert [a["data"]["error"] for a in answers[:3]] == [
        "invalid_json",
        "not_an_object",
        "binary_frame",
    ]


def test_console_socket_answers_bad_frames_and_stays_open(tenant):
    headers = [(b"origin", b"http://testserver"), (b"cookie", _cookie(tenant.user(Role.OWNER)))]

    async def run():
        socket = WebsocketCommunicator(application, "/ws/v1/events/", headers=headers)
        connected, _ = await socket.connect()
        assert connected
        assert (await socket.receive_json_from(timeout=5))["type"] == "hello"
        _assert_errors_then_pong(await _bad_frames_then_ping(socket))
        await socket.disconnect()

    async_to_sync(run)()


def test_tracking_socket_answers_bad_frames_and_stays_open(tenant):
    ratelimit_reset()
    org = tenant.organization
    with organization_scope(org):
        _route, stops = make_route(org)
        shipment = stops[2].shipments.get()
    _link, token = link_for(org, shipment)

    async def run():
        socket = WebsocketCommunicator(
            application,
            f"/ws/v1/track/{token}/?lang=en",
            headers=[(b"origin", b"http://testserver")],
        )
        connected, _ = await socket.connect()
        assert connected
        first = await socket.receive_json_from(timeout=5)  # the page's state
        assert first["type"] != "error"
        _assert_errors_then_pong(await _bad_frames_then_ping(socket))
        await socket.disconnect()

    try:
        async_to_sync(run)()
    finally:
        ratelimit_reset()
