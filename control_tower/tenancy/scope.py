"""The organization scope: a context variable that tenant managers read on every query.

There is deliberately no default. A query on tenant data with no scope raises
`TenantScopeMissing`, so a forgotten filter fails loudly in development instead of leaking
another organization's rows in production.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from control_tower.errors import TenantScopeMissing

if TYPE_CHECKING:
    from control_tower.models import Organization


class _AllOrganizations:
    """Sentinel scope for superusers and system jobs that must see every tenant."""

    id = None

    def __repr__(self) -> str:
        return "<all organizations>"


ALL_ORGANIZATIONS = _AllOrganizations()

_scope: contextvars.ContextVar[Organization | _AllOrganizations | None] = contextvars.ContextVar(
    "organization_scope", default=None
)


def get_scope() -> Organization | _AllOrganizations | None:
    return _scope.get()


def set_scope(
    organization: Organization | _AllOrganizations | None,
) -> contextvars.Token:
    """Low-level setter for middleware; prefer the context managers below."""
    return _scope.set(organization)


def reset_scope(token: contextvars.Token) -> None:
    _scope.reset(token)


@contextmanager
def organization_scope(organization: Organization) -> Iterator[Organization]:
    """Run the block with one organization in scope (commands, scripts, tests)."""
    if organization is None or getattr(organization, "pk", None) is None:
        raise TenantScopeMissing("organization_scope() needs a saved organization.")
    token = _scope.set(organization)
    try:
        yield organization
    finally:
        _scope.reset(token)


@contextmanager
def dangerously_all_organizations() -> Iterator[None]:
    """Lift tenant filtering for the block. Only superuser admin and cross-tenant system jobs
    (partition upkeep, iterating organizations to fan out per-tenant tasks) may use this."""
    token = _scope.set(ALL_ORGANIZATIONS)
    try:
        yield
    finally:
        _scope.reset(token)
