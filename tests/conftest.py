"""Shared fixtures: two organizations, a person per role, API clients for people and keys."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from control_tower import services
from control_tower.tenancy.actors import actor_for_membership
from control_tower.tenancy.roles import Role, Scope
from control_tower.tenancy.scope import organization_scope
from tests.asgi_server import asgi_live_server  # noqa: F401 - a fixture for every test module
from tests.factories import CarrierFactory, MembershipFactory, OrganizationFactory


@dataclass
class Tenant:
    organization: object
    carrier: object
    members: dict  # role -> Membership

    def user(self, role: str):
        return self.members[role].user


def build_tenant(slug: str) -> Tenant:
    organization = OrganizationFactory(slug=slug, name=slug.replace("-", " ").title())
    carrier = CarrierFactory(organization=organization, code=f"{slug}-fleet")
    members = {}
    for role in Role.values:
        members[role] = MembershipFactory(
            organization=organization,
            role=role,
            carrier=carrier if role == Role.CARRIER_USER else None,
            user__username=f"{role}@{slug}.example.com",
        )
    from tests.factories import DriverFactory

    DriverFactory(organization=organization, carrier=carrier, user=members[Role.DRIVER].user)
    return Tenant(organization=organization, carrier=carrier, members=members)


@pytest.fixture
def tenant(db) -> Tenant:
    return build_tenant("acme")


@pytest.fixture
def other_tenant(db) -> Tenant:
    return build_tenant("globex")


@pytest.fixture
def org(tenant):
    return tenant.organization


@pytest.fixture
def other_org(other_tenant):
    return other_tenant.organization


@pytest.fixture
def dispatcher(tenant):
    return tenant.user(Role.DISPATCHER)


@pytest.fixture
def scoped(org):
    """Run the test body with `org` in scope (services, selectors)."""
    with organization_scope(org):
        yield org


@pytest.fixture
def api_client_for():
    """`api_client_for(user)` → a client logged in as that person;
    `api_client_for(key=raw)` → a client that sends an API key."""

    def make(user=None, *, key: str | None = None, organization_slug: str | None = None):
        client = APIClient()
        if user is not None:
            client.force_authenticate(user=None)
            client.force_login(user)
        if key is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
        if organization_slug:
            client.defaults["HTTP_X_ORGANIZATION"] = organization_slug
        return client

    return make


@pytest.fixture
def admin_client_of(api_client_for):
    """A logged-in owner of the given tenant."""

    def make(tenant: Tenant):
        return api_client_for(tenant.user(Role.OWNER))

    return make


@pytest.fixture
def api_key_for():
    """`api_key_for(tenant, scopes=[...])` → the raw key of a new API key."""

    def make(tenant: Tenant, scopes=None, carrier=None):
        owner = actor_for_membership(tenant.members[Role.OWNER])
        with organization_scope(tenant.organization):
            _key, raw = services.api_key_create(
                actor=owner, name="test", scopes=scopes or list(Scope.values), carrier=carrier
            )
        return raw

    return make


@pytest.fixture
def device_for():
    """`device_for(tenant, **fields)` → (device, raw token), a registered device of the
    tenant's carrier (the token is what a phone sends: `Authorization: Device <token>`)."""
    from carriers.services import device_create

    def make(tenant: Tenant, **fields):
        fields.setdefault("carrier", tenant.carrier)
        fields.setdefault("name", "Test phone")
        fields.setdefault("kind", "driver_app")
        with organization_scope(tenant.organization):
            return device_create(organization=tenant.organization, **fields)

    return make


@pytest.fixture
def device_client_for():
    """`device_client_for(raw_token)` → an API client that authenticates as that device."""

    def make(token: str):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Device {token}")
        return client

    return make


@pytest.fixture(scope="session")
def celery_worker(django_db_setup):
    """A real Celery worker (solo pool, in a thread) consuming the test queue on the real Redis
    broker. Tests that use it must be `django_db(transaction=True)` so the worker's own database
    connection sees their rows."""
    from celery.contrib.testing.worker import start_worker

    from control_tower.celery import app

    with start_worker(
        app,
        pool="solo",
        concurrency=1,
        perform_ping_check=False,
        loglevel="WARNING",
        shutdown_timeout=10,
    ) as worker:
        yield worker


@pytest.fixture
def published_tasks():
    """Names of the Celery tasks this process published during the test, in order (the real
    publish, read through Celery's own signal: a worker consuming the queue meanwhile does not
    change what was sent)."""
    from celery.signals import before_task_publish

    names: list[str] = []

    def record(sender=None, **_):
        names.append(sender)

    before_task_publish.connect(record, weak=False)
    yield names
    before_task_publish.disconnect(record)


def wait_for(predicate, *, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    """Poll until `predicate()` is truthy (for work done by another process or thread); its
    value is returned. `what` names the condition in the failure message."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} not met within {timeout} s")


@pytest.fixture(autouse=True)
def _celery_quiet_before_flush(request, _django_db_marker):
    """After each transactional test, before pytest-django flushes the database: drop the test
    queue's leftover tasks and wait until this process's Celery worker (the session fixture's
    thread, when some test started it) has nothing running or reserved.

    Services queue tasks on commit (ETA recomputes after stop events, for example). A worker
    still running one of them while the flush TRUNCATEs the tables makes PostgreSQL pick one of
    the two as a deadlock victim, and the flush fails ("couldn't be flushed"). This fixture is
    set up after pytest-django's database fixture, so it is torn down before the flush."""
    yield
    marker = request.node.get_closest_marker("django_db")
    if not (marker and marker.kwargs.get("transaction")):
        return  # a rolled-back test: no flush, and the worker never saw its rows
    import time

    from celery.worker import state

    from control_tower.celery import app
    from control_tower.events.wakeup import forget_pending
    from tracking.eta.triggers import wait_until_published

    wait_until_published()  # the fast path's trigger thread: nothing in flight either
    # Purge again while waiting: a running task may queue its follow-up (the outbox relay
    # re-queues itself when its time budget runs out, and the history of a test can give it
    # thousands of events for the SLA roll-ups' subscriber), and that follow-up must not start.
    deadline = time.monotonic() + 30
    while True:
        with app.connection_for_write() as connection:
            app.control.purge(connection=connection)
        forget_pending()  # a purged relay run must not keep the next test's commits waiting
        if not (state.active_requests or state.reserved_requests):
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)


@pytest.fixture(autouse=True)
def _fresh_road_network_list():
    """Routing remembers the loaded networks per process for a while; each test starts from
    its own database's list (one test's network must not be another's, nor its absence)."""
    from tracking.roads.routing import forget_networks

    forget_networks()
    yield
    forget_networks()
