"""Websocket guards shared by every socket: which page origins may open one, and what a frame
that is not a JSON object gets.

Origins: a browser sends the page's `Origin` with every websocket handshake, and the session
cookie goes along whatever page opened the socket, so the Origin is what stops another site
from watching the console with a dispatcher's cookie. It must parse as exactly
`http(s)://host[:port]` and be one of:
- `http(s)://<host>` on the scheme's default port, `host` allowed by ALLOWED_HOSTS;
- the very host and port the socket connects to (the `Host` header; same-origin, so a dev
  server on :8000 works), that host being allowed too;
- one of WEBSOCKET_ALLOWED_ORIGINS, compared exactly.
So `http://127.0.0.1:8000.evil.example`, another port of an allowed host, a user-info part or a
path are refused, as is a handshake without Origin.
"""

from __future__ import annotations

import json
import re

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

_ORIGIN = re.compile(r"^(https?)://([a-z0-9.-]+|\[[0-9a-f:.]+\])(?::([0-9]{1,5}))?$")
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def _allowed_hosts() -> list[str]:
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:  # Django's own rule for an empty list in DEBUG
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return allowed


def origin_allowed(origin: str | None, host_header: str | None) -> bool:
    if not origin:
        return False
    origin = origin.strip().lower()
    if origin in {o.lower().rstrip("/") for o in settings.WEBSOCKET_ALLOWED_ORIGINS}:
        return True
    match = _ORIGIN.match(origin)
    if match is None:
        return False
    scheme, host, port = match.groups()
    if not validate_host(host.strip("[]") if host.startswith("[") else host, _allowed_hosts()):
        return False
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return True
    # Same origin: the socket's own Host, port included.
    domain, host_port = split_domain_port((host_header or "").lower())
    return bool(domain) and f"{domain}:{host_port}" == f"{host.strip('[]')}:{port}"


class WebsocketOriginAllowList:
    """ASGI middleware for the websocket router: refuses the handshake (403) unless
    `origin_allowed`."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if scope["type"] == "websocket" and not origin_allowed(
            headers.get("origin"), headers.get("host")
        ):
            return await WebsocketDenier()(scope, receive, send)
        return await self.inner(scope, receive, send)


class JsonObjectFramesConsumer(AsyncJsonWebsocketConsumer):
    """A frame that is binary, not JSON, or JSON but not an object is answered with
    `{"v": 1, "type": "error", "data": {"error": <code>, "detail": ...}}` and the socket stays
    open (it used to die with 1006 on the parse error)."""

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if text_data is None:
            return await self._frame_error("binary_frame", "Send JSON text frames.")
        try:
            content = json.loads(text_data)
        except ValueError:
            return await self._frame_error("invalid_json", "The frame is not valid JSON.")
        if not isinstance(content, dict):
            return await self._frame_error("not_an_object", "Send a JSON object.")
        await self.receive_json(content, **kwargs)

    async def _frame_error(self, code: str, detail: str) -> None:
        await self.send_json({"v": 1, "type": "error", "data": {"error": code, "detail": detail}})
