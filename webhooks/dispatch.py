"""The dispatcher: sends due deliveries, records each attempt, retries, dead-letters and
disables endpoints that keep failing (docs/WEBHOOKS.md "Delivery").

- At least once: a delivery leaves the queue only when an attempt got a 2xx (or it is dead).
- Ordered per (endpoint, ordering key): a delivery is taken only when no earlier delivery of
  its endpoint and key is still open (pending or retrying; dead ones no longer block). Inside a
  batch the deliveries of one key are sent one after the other, and the first failure gives
  the rest of that chain back; different keys go out concurrently.
- Claims are leases, as in the outbox relay: `FOR UPDATE SKIP LOCKED`, then `leased_until`; a
  worker that dies leaves the lease to expire and another worker takes the rows over.
- Results are written per batch: the attempts in one INSERT, the deliveries in one UPDATE.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from control_tower.tenancy.scope import dangerously_all_organizations
from webhooks import conf, notices
from webhooks.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookSettings,
)
from webhooks.safety import RefusedDestination, Target, parse_url, resolve
from webhooks.secrets import signer_for
from webhooks.sender import USER_AGENT, Outcome, run_concurrently, send

logger = logging.getLogger(__name__)

# Due, unleased, open deliveries of enabled endpoints, in id order; rows another worker holds
# are skipped, not waited for.
_CLAIM = """
SELECT d.id, d.endpoint_id, d.ordering_key
FROM webhooks_webhookdelivery d
JOIN webhooks_webhookendpoint e ON e.id = d.endpoint_id
WHERE d.status IN ('pending', 'retrying') AND d.next_attempt_at <= %(now)s
  AND (d.leased_until IS NULL OR d.leased_until < %(now)s)
  AND e.enabled
ORDER BY d.next_attempt_at, d.id
LIMIT %(limit)s
FOR UPDATE OF d SKIP LOCKED
"""

# For each claimed (endpoint, key): its oldest open delivery outside the claim.
_BLOCKERS = """
SELECT d.endpoint_id, d.ordering_key, MIN(d.id)
FROM webhooks_webhookdelivery d
JOIN unnest(%(endpoints)s::bigint[], %(keys)s::text[]) AS k(e, o)
  ON d.endpoint_id = k.e AND d.ordering_key = k.o
WHERE d.status IN ('pending', 'retrying') AND NOT (d.id = ANY(%(claimed)s))
GROUP BY 1, 2
"""

_RECORD = """
UPDATE webhooks_webhookdelivery d SET
  status = r.status, attempts = r.attempts, next_attempt_at = r.next_attempt_at,
  last_status_code = r.code, last_error = r.error, finished_at = r.finished_at,
  leased_until = NULL
FROM unnest(%(ids)s::bigint[], %(statuses)s::text[], %(attempts)s::int[],
            %(next)s::timestamptz[], %(codes)s::int[], %(errors)s::text[],
            %(finished)s::timestamptz[])
  AS r(id, status, attempts, next_attempt_at, code, error, finished_at)
WHERE d.id = r.id
"""


def retry_delay_s(attempts: int) -> float:
    """Full jitter: a random delay up to base * 2^(attempts-1), capped."""
    ceiling = min(
        conf.get("WEBHOOKS_RETRY_BASE_S") * 2 ** max(attempts - 1, 0),
        conf.get("WEBHOOKS_RETRY_MAX_S"),
    )
    return random.uniform(0, ceiling)  # noqa: S311 - jitter, not a secret


def claim(limit: int | None = None) -> list[WebhookDelivery]:
    """Lease the next deliverable rows (in id order), leaving those whose endpoint and key
    have an earlier open delivery outside the claim."""
    limit = limit or conf.get("WEBHOOKS_BATCH")
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_CLAIM, {"now": now, "limit": limit})
        rows = cursor.fetchall()
        if not rows:
            return []
        keys = sorted({(e, k) for _, e, k in rows})
        cursor.execute(
            _BLOCKERS,
            {
                "endpoints": [k[0] for k in keys],
                "keys": [k[1] for k in keys],
                "claimed": [r[0] for r in rows],
            },
        )
        blockers = {(e, k): oldest for e, k, oldest in cursor.fetchall()}
        taken = [pk for pk, e, k in rows if (b := blockers.get((e, k))) is None or pk < b]
        if not taken:
            return []
        lease = now + timedelta(seconds=conf.get("WEBHOOKS_LEASE_S"))
        WebhookDelivery.dangerously_unscoped.filter(pk__in=taken).update(leased_until=lease)
    return list(
        WebhookDelivery.dangerously_unscoped.select_related("endpoint")
        .filter(pk__in=taken)
        .order_by("id")
    )


@dataclass
class _Route:
    """Where one endpoint's requests go in this batch, or why they cannot."""

    target: Target | None
    address: str | None
    refused: str
    signer: object | None


def _routes(deliveries: list[WebhookDelivery], now: datetime) -> dict[int, _Route]:
    endpoints = {d.endpoint_id: d.endpoint for d in deliveries}
    allow = dict(
        WebhookSettings.dangerously_unscoped.filter(
            organization_id__in={e.organization_id for e in endpoints.values()}
        ).values_list("organization_id", "allowed_private_hosts")
    )
    routes = {}
    for pk, endpoint in endpoints.items():
        try:
            target = parse_url(endpoint.url)
            address = resolve(target, allow.get(endpoint.organization_id, []))
            routes[pk] = _Route(target, address, "", signer_for(endpoint, now=now))
        except RefusedDestination as exc:
            routes[pk] = _Route(None, None, str(exc), None)
        except Exception as exc:  # noqa: BLE001 - a bad URL saved before validation, a key
            routes[pk] = _Route(None, None, f"refused: {exc}"[:500], None)
    return routes


def _request(delivery: WebhookDelivery, route: _Route) -> tuple[bytes, dict]:
    body = json.dumps(delivery.payload, separators=(",", ":")).encode()
    sent_at = timezone.now()
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": route.signer.signature(
            msg_id=delivery.message_id, timestamp=sent_at, body=body
        ),
    }
    return body, headers


def _send_chain(client, chain, routes) -> list[tuple[int, datetime, dict, Outcome]]:
    """Send one chain (one endpoint and key) in order. A failure ends it: the later deliveries
    of that key are not attempted in this batch."""
    results = []
    for delivery in chain:
        route = routes[delivery.endpoint_id]
        at = timezone.now()
        if route.target is None:
            results.append((delivery.pk, at, {}, Outcome(error=route.refused)))
            break
        body, headers = _request(delivery, route)
        outcome = send(
            client, target=route.target, address=route.address, body=body, headers=headers
        )
        results.append((delivery.pk, at, headers, outcome))
        if not outcome.ok:
            break
    return results


def deliver_batch(deliveries: list[WebhookDelivery]) -> tuple[int, int]:
    """Send a claimed batch and record what happened. Returns (succeeded, failed)."""
    now = timezone.now()
    routes = _routes(deliveries, now)
    chains: dict[tuple[int, str], list[WebhookDelivery]] = defaultdict(list)
    for delivery in deliveries:  # already in id order
        chains[(delivery.endpoint_id, delivery.ordering_key)].append(delivery)
    sent = run_concurrently(
        lambda client, chain: _send_chain(client, chain, routes), list(chains.values())
    )
    results = {pk: (at, headers, outcome) for chain in sent for pk, at, headers, outcome in chain}
    return _record(deliveries, results)


def _record(deliveries, results) -> tuple[int, int]:
    now = timezone.now()
    window = timedelta(seconds=conf.get("WEBHOOKS_RETRY_WINDOW_S"))
    attempts, updates, untouched = [], [], []
    per_endpoint: dict[int, list[tuple[datetime, bool]]] = defaultdict(list)
    gone: set[int] = set()
    succeeded = failed = 0
    for delivery in deliveries:
        if delivery.pk not in results:
            untouched.append(delivery.pk)  # after a failure in its chain: give it back
            continue
        at, headers, outcome = results[delivery.pk]
        number = delivery.attempts + 1
        attempts.append(
            WebhookAttempt(
                organization_id=delivery.organization_id,
                delivery_id=delivery.pk,
                number=number,
                attempted_at=at,
                request_url=delivery.endpoint.url,
                request_headers=headers,
                response_status=outcome.status,
                response_headers=outcome.headers,
                response_body=outcome.body,
                duration_ms=outcome.duration_ms,
                error=outcome.error,
            )
        )
        per_endpoint[delivery.endpoint_id].append((at, outcome.ok))
        if outcome.ok:
            succeeded += 1
            updates.append((delivery.pk, DeliveryStatus.SUCCEEDED, number, now, outcome, now))
            continue
        failed += 1
        if outcome.status == 410:
            gone.add(delivery.endpoint_id)
        if now >= delivery.created_at + window:
            updates.append((delivery.pk, DeliveryStatus.DEAD, number, now, outcome, now))
            logger.warning("webhook delivery %s is dead: %s", delivery.pk, outcome.error)
        else:
            retry_at = now + timedelta(seconds=retry_delay_s(number))
            updates.append((delivery.pk, DeliveryStatus.RETRYING, number, retry_at, outcome, None))
    with transaction.atomic():
        WebhookAttempt.dangerously_unscoped.bulk_create(attempts)
        if updates:
            with connection.cursor() as cursor:
                cursor.execute(
                    _RECORD,
                    {
                        "ids": [u[0] for u in updates],
                        "statuses": [str(u[1]) for u in updates],
                        "attempts": [u[2] for u in updates],
                        "next": [u[3] for u in updates],
                        "codes": [u[4].status for u in updates],
                        "errors": [u[4].error[:500] for u in updates],
                        "finished": [u[5] for u in updates],
                    },
                )
        if untouched:
            WebhookDelivery.dangerously_unscoped.filter(pk__in=untouched).update(leased_until=None)
        disabled = _update_endpoints(per_endpoint, gone, now)
    for endpoint in disabled:
        notices.endpoint_disabled(endpoint)
    return succeeded, failed


def _update_endpoints(per_endpoint, gone: set[int], now: datetime) -> list[WebhookEndpoint]:
    """Reset the failure streak of endpoints that got a success (after their last failure),
    extend it for the others, and disable those failing for too long (or answering 410)."""
    failing = []
    for endpoint_id, outcomes in per_endpoint.items():
        outcomes.sort(key=lambda o: o[0])
        last_ok = max((i for i, (_, ok) in enumerate(outcomes) if ok), default=-1)
        after = outcomes[last_ok + 1 :]
        rows = WebhookEndpoint.dangerously_unscoped.filter(pk=endpoint_id)
        if last_ok >= 0 and not after:
            rows.update(consecutive_failures=0, failing_since=None, last_success_at=now)
            continue
        if last_ok >= 0:
            rows.update(
                consecutive_failures=len(after), failing_since=after[0][0], last_success_at=now
            )
        else:
            rows.update(
                consecutive_failures=F("consecutive_failures") + len(after),
                failing_since=Coalesce(F("failing_since"), after[0][0]),
            )
        failing.append(endpoint_id)
    disabled = []
    cutoff = now - timedelta(seconds=conf.get("WEBHOOKS_DISABLE_AFTER_S"))
    for endpoint in WebhookEndpoint.dangerously_unscoped.select_for_update().filter(
        pk__in=failing, enabled=True
    ):
        if endpoint.pk in gone:
            reason = "The endpoint answered 410 Gone."
        elif (
            endpoint.failing_since is not None
            and endpoint.failing_since <= cutoff
            and endpoint.consecutive_failures >= conf.get("WEBHOOKS_DISABLE_MIN_FAILURES")
        ):
            reason = (
                f"{endpoint.consecutive_failures} failed attempts in a row since "
                f"{endpoint.failing_since.isoformat(timespec='seconds')} and no success."
            )
        else:
            continue
        endpoint.enabled = False
        endpoint.disabled_at = now
        endpoint.disabled_reason = reason
        endpoint.save(update_fields=["enabled", "disabled_at", "disabled_reason", "updated_at"])
        disabled.append(endpoint)
    return disabled


def dispatch_due(*, budget_s: float | None = None) -> int:
    """Send batches until none is due or the time budget is spent. Returns how many
    deliveries succeeded."""
    budget_s = conf.get("WEBHOOKS_BUDGET_S") if budget_s is None else budget_s
    deadline = time.monotonic() + budget_s
    total = 0
    with dangerously_all_organizations():
        while time.monotonic() < deadline:
            batch = claim()
            if not batch:
                break
            succeeded, _failed = deliver_batch(batch)
            total += succeeded
    return total
