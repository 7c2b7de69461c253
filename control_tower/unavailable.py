"""The one answer when PostgreSQL is out of reach (restarting, failing over, out of
connections): 503 with `Retry-After`, in the shape of every other error, on every surface
(the API's exception handler, Django's error handler for pages and plain views, the ASGI
ingest fast path).

Why a 503 and not the 500 an unhandled exception gives: the request was fine and nothing of it
was stored (the write is one statement or one transaction, so it committed entirely or not at
all), so the client must send it again, and a phone app or a carrier's system only does that
for answers that say so. Nothing here retries on the server: a retry loop in a request would
hold a worker while the database is away and pile up requests behind it.

Recovery needs nothing from us: the connection pools (Django's psycopg pool, the fast path's
async pool) drop a connection that failed and open new ones when asked, so the first requests
after the database is back succeed (docs/RELIABILITY.md "Faults", tests/faults/).
"""

from __future__ import annotations

import django.db
import psycopg
import psycopg_pool
from django.conf import settings

from control_tower.errors import error_body

# OperationalError: the server went away, refused the connection, or cancelled the statement
# while shutting down; InterfaceError: a connection found closed; PoolTimeout: no connection
# could be had within the pool's timeout (all broken, or all busy while the server is away).
UNAVAILABLE_ERRORS = (
    django.db.OperationalError,
    django.db.InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    psycopg_pool.PoolTimeout,
)

DETAIL = "The database is unavailable for a moment; send the request again in a few seconds."


def database_unavailable(exc: BaseException | None) -> bool:
    """Whether `exc` (or what it was raised from) means the database could not be reached."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, UNAVAILABLE_ERRORS):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def retry_after_s() -> int:
    return settings.DATABASE_RETRY_AFTER_S


def unavailable_body() -> dict:
    return error_body("service_unavailable", DETAIL)
