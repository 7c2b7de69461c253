"""The HTTP side of a delivery: one pooled httpx.AsyncClient per worker process, on an event
loop of its own (a daemon thread), so a batch's requests go out concurrently and connections
are kept alive between batches.

A request goes to the address the safety check approved (pinned): for http the URL names the
address and the Host header the name; for https the TLS layer is told the name (SNI and the
certificate check) while the TCP connection goes to the checked address. Redirects are never
followed (a 3xx is a failure) and at most WEBHOOKS_BODY_EXCERPT bytes of the response are read.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import threading
import time
from dataclasses import dataclass, field

import httpx

from webhooks import conf
from webhooks.safety import Target

USER_AGENT = "control-tower-webhooks/1"
_KEPT_RESPONSE_HEADERS = (
    "content-type",
    "content-length",
    "date",
    "server",
    "retry-after",
    "location",
)


@dataclass
class Outcome:
    status: int | None = None
    headers: dict = field(default_factory=dict)
    body: str = ""
    duration_ms: int = 0
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300 and not self.error


def pinned_url(target: Target, address: str) -> str:
    host = f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
    return f"{target.scheme}://{host}:{target.port}{target.path}"


def host_header(target: Target) -> str:
    default = 443 if target.scheme == "https" else 80
    return target.host if target.port == default else f"{target.host}:{target.port}"


async def send(
    client: httpx.AsyncClient, *, target: Target, address: str, body: bytes, headers: dict
) -> Outcome:
    """POST `body` to the pinned address. Never raises: failures are in `Outcome.error`."""
    limit = conf.get("WEBHOOKS_BODY_EXCERPT")
    started = time.monotonic()
    outcome = Outcome()
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    request_headers = {**headers, "host": host_header(target)}

    async def exchange() -> None:
        async with client.stream(
            "POST",
            pinned_url(target, address),
            content=body,
            headers=request_headers,
            extensions=extensions,
        ) as response:
            outcome.status = response.status_code
            outcome.headers = {
                k: v for k, v in response.headers.items() if k.lower() in _KEPT_RESPONSE_HEADERS
            }
            kept = bytearray()
            async for chunk in response.aiter_raw():
                kept += chunk
                if len(kept) >= limit:
                    break  # the rest is never read: the connection is closed, not reused
            outcome.body = bytes(kept[:limit]).decode("utf-8", errors="replace")

    try:
        await asyncio.wait_for(exchange(), timeout=conf.get("WEBHOOKS_TIMEOUT_S"))
    except TimeoutError:
        outcome.error = f"timeout after {conf.get('WEBHOOKS_TIMEOUT_S')} s"
    except httpx.ConnectError as exc:
        outcome.error = f"connection failed: {exc}"[:500]
    except httpx.HTTPError as exc:
        outcome.error = f"{type(exc).__name__}: {exc}"[:500]
    outcome.duration_ms = int((time.monotonic() - started) * 1000)
    if not outcome.error and outcome.status is not None:
        if 300 <= outcome.status < 400:
            location = outcome.headers.get("location") or "elsewhere"
            outcome.error = f"redirect {outcome.status} not followed ({location})"[:500]
        elif not 200 <= outcome.status < 300:
            outcome.error = f"HTTP {outcome.status}"
    return outcome


class _Loop:
    """An event loop in a daemon thread with its httpx client, one per process (re-made after
    a fork: a prefork child must not share its parent's sockets)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="webhooks", daemon=True)
        self.thread.start()
        self.client: httpx.AsyncClient | None = None

    def run(self, coroutine_factory):
        async def with_client():
            if self.client is None:
                self.client = httpx.AsyncClient(
                    follow_redirects=False,
                    timeout=httpx.Timeout(conf.get("WEBHOOKS_TIMEOUT_S")),
                    limits=httpx.Limits(max_connections=256, max_keepalive_connections=128),
                )
            return await coroutine_factory(self.client)

        return asyncio.run_coroutine_threadsafe(with_client(), self.loop).result()


_loop: _Loop | None = None
_loop_lock = threading.Lock()


def run_in_loop(coroutine_factory):
    """Run `coroutine_factory(client)` on the process's webhook loop and return its result."""
    global _loop
    with _loop_lock:
        if _loop is None or _loop.pid != os.getpid():
            _loop = _Loop()
        loop = _loop
    return loop.run(coroutine_factory)
