"""The device protocol endpoints: `/ingest/osmand/<token>/` and `/ingest/owntracks/`.

- `/ingest/osmand/<token>/`: OsmAnd query/form (GET or POST) and Traccar Client 9+ JSON (POST
  `application/json`, one object or an array). 200 with an empty body; unknown token 404.
- `/ingest/owntracks/`: OwnTracks HTTP mode, HTTP Basic auth whose password (or user name) is
  the device token. 200 with `[]`; bad credentials 401.

These are the hottest endpoints (every phone, every few seconds, one fix per request), so they
are answered here, in the ASGI application, before Django (control_tower/asgi.py): no
middleware stack, no sync↔async thread hops, an async psycopg pool, the live push awaited on
the event loop. This is the only implementation (there is no WSGI application); what is stored
is decided by the shared parsers (`protocols.py`, bounds in `fixes.py`), device tokens
(`auth.py`) and write plan (`pings.py`: flag, then one SQL statement).

Phones retry anything but a 2xx forever, so a duplicate is a 200; a malformed fix is a 400 whose
JSON body names the field (the phone will keep retrying it, but nothing half is stored and the
operator can see why in the device's log).

Security that Django's middleware would give and this path needs: the Host header is checked
against ALLOWED_HOSTS; there are no cookies or sessions here, so no CSRF; bodies are capped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from urllib.parse import parse_qsl

from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils import timezone
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool

from carriers.device_auth import DEVICE_TOKEN_KIND, verified_refs
from control_tower.auth_throttle import auth_failed_async, auth_retry_after_async
from control_tower.errors import error_body
from control_tower.events import emit_live_async
from control_tower.ratelimit import client_ip_from
from control_tower.tenancy.secrets import secret_matches, split_prefix
from control_tower.unavailable import database_unavailable, retry_after_s, unavailable_body
from tracking.eta.triggers import eta_on_position_async
from tracking.ingest.auth import OWNTRACKS_CHALLENGE, basic_credentials
from tracking.ingest.fixes import FixError
from tracking.ingest.group import committer
from tracking.ingest.pings import (
    CURRENT_POSITION,
    DeviceRef,
    IngestResult,
    dedupe,
    plan_outcome,
    plan_write,
)
from tracking.ingest.protocols import (
    MAX_BODY_BYTES,
    json_body,
    osmand_request_fixes,
    parse_owntracks,
)
from tracking.ingest.vehicles import vehicle_moved_event, vehicle_route_async
from tracking.models import PingSource

logger = logging.getLogger(__name__)

# Single fixes through group commit (tracking/ingest/group.py); False: one request, one write.
GROUP_COMMIT = True

OSMAND_PREFIX = "/ingest/osmand/"
OWNTRACKS_PATH = "/ingest/owntracks/"

DEVICE_BY_PREFIX = """
SELECT d.id, d.organization_id, d.carrier_id, d.driver_id, d.vehicle_id, d.token_hash,
       d.revoked_at IS NULL AND o.is_active, o.ping_retention_days
FROM carriers_device d JOIN control_tower_organization o ON o.id = d.organization_id
WHERE d.token_prefix = %s
"""

# One pool per event loop (uvicorn runs one loop per worker process; tests make their own).
_pools: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _conninfo() -> str:
    db = settings.DATABASES["default"]
    return make_conninfo(
        dbname=db["NAME"],
        user=db.get("USER") or None,
        password=db.get("PASSWORD") or None,
        host=db.get("HOST") or None,
        port=str(db["PORT"]) if db.get("PORT") else None,
        options="-c TimeZone=UTC",
        application_name="control-tower-ingest",
    )


async def pool() -> AsyncConnectionPool:
    loop = asyncio.get_running_loop()
    existing = _pools.get(loop)
    if existing is None:
        pool_settings = settings.DATABASES["default"].get("OPTIONS", {}).get("pool") or {}
        existing = AsyncConnectionPool(
            _conninfo(),
            min_size=1,
            max_size=pool_settings.get("max_size", 20),
            kwargs={"autocommit": True},
            timeout=pool_settings.get("timeout", 10),
            open=False,
        )
        await existing.open(wait=False)
        _pools[loop] = existing
    return existing


async def close_pools() -> None:
    """Close this event loop's pool (tests, shutdown)."""
    existing = _pools.pop(asyncio.get_running_loop(), None)
    if existing is not None:
        await existing.close()


async def device_ref_for_token(raw: str) -> DeviceRef | None:
    hit = verified_refs.get(raw)
    if hit is not None:
        return hit
    prefix = split_prefix(raw or "", DEVICE_TOKEN_KIND)
    if prefix is None:
        return None
    async with (await pool()).connection() as conn:
        cursor = await conn.execute(DEVICE_BY_PREFIX, [prefix])
        row = await cursor.fetchone()
    if row is None or not secret_matches(raw, row[5]) or not row[6]:
        return None
    ref = DeviceRef(
        id=row[0],
        organization_id=row[1],
        carrier_id=row[2],
        driver_id=row[3],
        vehicle_id=row[4],
        retention_days=row[7],
    )
    verified_refs.set(raw, ref)
    return ref


async def pings_ingest_async(ref: DeviceRef, fixes, *, source: str, received_at) -> IngestResult:
    """`pings.pings_ingest` on an async connection: the same plan, the same two round trips;
    the push happens after the (autocommitted) write. A single fix (most requests) is stored
    with the others arriving at the same moment (group commit, tracking/ingest/group.py)."""
    fixes = dedupe(fixes)
    if not fixes:
        return IngestResult(0, 0, 0, 0, False)
    if len(fixes) == 1 and GROUP_COMMIT:  # answered after its group's commit (group.py)
        result, event = await committer(pool).store(
            ref, fixes[0], source=source, received_at=received_at
        )
    else:
        async with (await pool()).connection() as conn:
            cursor = await conn.execute(CURRENT_POSITION, [ref.id])
            plan = plan_write(
                ref, fixes, await cursor.fetchone(), source=source, received_at=received_at
            )
            cursor = await conn.execute(plan.statement, plan.params)
            stored, position = await cursor.fetchone()
        result, event = plan_outcome(ref, plan, stored, position)
    if event is not None:
        vehicle_id, route_id = await vehicle_route_async(ref, pool=pool)
        if vehicle_id is not None:
            await emit_live_async(
                vehicle_moved_event(ref, event, vehicle_id=vehicle_id, route_id=route_id)
            )
    if result.position_moved:  # its routes' ETAs follow, debounced (tracking/eta/triggers.py)
        await eta_on_position_async(ref=ref, received_at=received_at)
    return result


# ---------------------------------------------------------------------------------------------
# The ASGI application
# ---------------------------------------------------------------------------------------------


class DeviceIngestApp:
    """Answers the device protocol paths; passes everything else to `fallback` (Django)."""

    def __init__(self, fallback):
        self.fallback = fallback

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path.startswith(OSMAND_PREFIX) and path.count("/") == 4 and path.endswith("/"):
            handler = self.osmand
        elif path == OWNTRACKS_PATH:
            handler = self.owntracks
        else:
            return await self.fallback(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if not _host_allowed(headers.get("host", "")):
            return await _reply(send, 400, error_body("bad_request", "Invalid Host header."))
        body = await _read_body(receive)
        if body is None:
            return await _reply(send, 413, error_body("validation_error", "Body larger than 1 MB."))
        try:
            status, payload, extra = await handler(scope, headers, body)
        except Exception as exc:
            if database_unavailable(exc):  # the phone sends it again (a repeat is stored once)
                logger.warning("ingest: database unavailable (%s)", type(exc).__name__)
                status, payload = 503, unavailable_body()
                extra = {"retry-after": str(retry_after_s())}
            else:
                logger.exception("ingest fast path failed on %s", path)
                status, payload, extra = 500, error_body("server_error", "Internal error."), {}
        await _reply(send, status, payload, extra)

    async def osmand(self, scope, headers, body):
        if scope["method"] not in ("GET", "POST"):
            return 405, error_body("method_not_allowed", "Use GET or POST."), {"allow": "GET, POST"}
        token = scope["path"][len(OSMAND_PREFIX) : -1]
        ref, wait = await _device_behind_limit([token], _client_ip(scope, headers))
        if wait is not None:
            return _throttled(wait)
        if ref is None:
            return 404, error_body("not_found", "Unknown device."), {}
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        query = _pairs(scope.get("query_string", b""))
        form = _pairs(body) if content_type == "application/x-www-form-urlencoded" else {}
        now = timezone.now()
        try:
            source, fixes = osmand_request_fixes(
                method=scope["method"],
                content_type=content_type,
                query=query,
                form=form,
                body=body,
                now=now,
            )
        except FixError as exc:
            return 400, _fix_error(exc), {}
        await pings_ingest_async(ref, fixes, source=source, received_at=now)
        return 200, None, {}

    async def owntracks(self, scope, headers, body):
        if scope["method"] != "POST":
            return 405, error_body("method_not_allowed", "Use POST."), {"allow": "POST"}
        credentials = basic_credentials(headers.get("authorization", ""))
        ref, wait = await _device_behind_limit(credentials, _client_ip(scope, headers))
        if wait is not None:
            return _throttled(wait)
        if ref is None:
            detail = error_body("not_authenticated", "Unknown or revoked device token.")
            return 401, detail, {"www-authenticate": OWNTRACKS_CHALLENGE}
        now = timezone.now()
        try:
            fixes = parse_owntracks(json_body(body))
        except FixError as exc:
            return 400, _fix_error(exc), {}
        if fixes:
            await pings_ingest_async(ref, fixes, source=PingSource.OWNTRACKS, received_at=now)
        return 200, [], {}


def _client_ip(scope, headers) -> str:
    remote = (scope.get("client") or ("", 0))[0] or ""
    return client_ip_from(remote, headers.get("x-forwarded-for", ""))


async def _device_behind_limit(tokens: list[str], ip: str) -> tuple[DeviceRef | None, int | None]:
    """(the device of the first good token, seconds to wait while the IP is blocked).

    A token this process verified a moment ago skips the failed-credential limit
    (control_tower/auth_throttle.py): its Redis round trip on every fix cost about a fifth of
    single-fix throughput (docs/PERFORMANCE.md). A guess is never in that cache, so guesses
    still meet the block first and are counted when they fail."""
    for token in tokens:
        if (known := verified_refs.get(token)) is not None:
            return known, None
    if (wait := await auth_retry_after_async(ip)) is not None:
        return None, wait
    for token in tokens:
        if (ref := await device_ref_for_token(token)) is not None:
            return ref, None
    await auth_failed_async(ip)
    return None, None


def _throttled(wait: int):
    """Too many failed device tokens from this IP (control_tower/auth_throttle.py)."""
    body = error_body("throttled", "Too many failed device tokens from here; wait.")
    return 429, body, {"retry-after": str(wait)}


def _host_allowed(host: str) -> bool:
    domain, _port = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return bool(domain) and validate_host(domain, allowed)


async def _read_body(receive) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _pairs(raw: bytes) -> dict[str, str]:
    """Query or form pairs. Bytes that are not UTF-8 become lone surrogates (surrogateescape),
    which the parser refuses naming the key, rather than being silently replaced."""
    text = raw.decode("utf-8", "surrogateescape")
    return dict(parse_qsl(text, encoding="utf-8", errors="surrogateescape"))


def _fix_error(exc: FixError) -> dict:
    return error_body("validation_error", str(exc), {exc.field: [exc.message]})


async def _reply(send, status: int, payload, extra: dict | None = None) -> None:
    """`payload` None: an empty body (what OsmAnd clients expect); else JSON."""
    body = b"" if payload is None else json.dumps(payload).encode()
    headers = [(b"content-length", str(len(body)).encode())]
    if payload is not None:
        headers.append((b"content-type", b"application/json"))
    headers.extend((k.encode(), v.encode()) for k, v in (extra or {}).items())
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
