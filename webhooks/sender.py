"""The HTTP side of a delivery: one pooled `httpx.Client` per worker process, shared by a pool
of threads, so a batch's requests go out concurrently and connections are kept alive between
batches. (The synchronous client on threads measured six times the throughput of
`httpx.AsyncClient` on this project's 2-core machine: docs/WEBHOOKS.md "Performance".)

A request goes to the address the safety check approved (pinned): for http the URL names the
address and the Host header the name; for https the TLS layer is told the name (SNI and the
certificate check) while the TCP connection goes to the checked address. Redirects are never
followed (a 3xx is a failure) and at most WEBHOOKS_BODY_EXCERPT bytes of the response are read.
Each network phase (connect, send, wait for the answer) is bounded by WEBHOOKS_TIMEOUT_S, and
reading the body stops at that deadline too.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
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
# httpx logs every request at INFO: at hundreds per second that is the dispatcher's largest
# cost and floods the worker's log; the delivery log is the record.
logging.getLogger("httpx").setLevel(logging.WARNING)


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


def send(
    client: httpx.Client, *, target: Target, address: str, body: bytes, headers: dict
) -> Outcome:
    """POST `body` to the pinned address. Never raises: failures are in `Outcome.error`."""
    limit = conf.get("WEBHOOKS_BODY_EXCERPT")
    timeout_s = conf.get("WEBHOOKS_TIMEOUT_S")
    started = time.monotonic()
    outcome = Outcome()
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    try:
        with client.stream(
            "POST",
            pinned_url(target, address),
            content=body,
            headers={**headers, "host": host_header(target)},
            extensions=extensions,
            timeout=httpx.Timeout(timeout_s),
        ) as response:
            outcome.status = response.status_code
            outcome.headers = {
                k: v for k, v in response.headers.items() if k.lower() in _KEPT_RESPONSE_HEADERS
            }
            kept = bytearray()
            for chunk in response.iter_raw():
                kept += chunk
                if len(kept) >= limit or time.monotonic() - started > timeout_s:
                    break  # the rest is never read: the connection is closed, not reused
            outcome.body = bytes(kept[:limit]).decode("utf-8", errors="replace")
    except httpx.TimeoutException as exc:
        outcome.error = f"timeout after {timeout_s} s ({type(exc).__name__})"
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


class _Sender:
    """The process's client and threads (re-made after a fork: a prefork child must not share
    its parent's sockets)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        workers = conf.get("WEBHOOKS_CONCURRENCY")
        self.client = httpx.Client(
            follow_redirects=False,
            timeout=httpx.Timeout(conf.get("WEBHOOKS_TIMEOUT_S")),
            limits=httpx.Limits(max_connections=workers * 2, max_keepalive_connections=workers),
        )
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="webhooks")


_sender: _Sender | None = None
_sender_lock = threading.Lock()


def run_concurrently(job, items) -> list:
    """`[job(client, item) for item in items]`, run on the process's threads."""
    global _sender
    with _sender_lock:
        if _sender is None or _sender.pid != os.getpid():
            _sender = _Sender()
        sender = _sender
    return list(sender.pool.map(lambda item: job(sender.client, item), items))
