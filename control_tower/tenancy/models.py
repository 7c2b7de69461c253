"""Base classes for tenant-owned models."""

from __future__ import annotations

from contextlib import contextmanager

from django.db import models

from control_tower.errors import TenantMismatch, TenantScopeMissing
from control_tower.tenancy.scope import ALL_ORGANIZATIONS, get_scope


class TenantQuerySet(models.QuerySet):
    """A queryset that is filtered by the organization in scope.

    If it is built with an organization in scope, the filter is added at once. If it is built
    with none (at import time: filter and serializer field declarations), it stays "pending":
    each time it runs, the organization in scope *then* is applied to that one query, and with
    still none, it raises. The pending queryset itself is never narrowed for good, so a shared,
    import-time queryset cannot carry one tenant's filter into another tenant's request.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._tenant_pending = False

    def _clone(self):
        clone = super()._clone()
        clone._tenant_pending = self._tenant_pending
        return clone

    @contextmanager
    def _scoped_query(self):
        if not self._tenant_pending:
            yield
            return
        scope = get_scope()
        if scope is None:
            raise TenantScopeMissing(
                f"Query on {self.model.__name__} with no organization in scope. Wrap it in "
                "organization_scope(org) or run it from an authenticated request/task."
            )
        if scope is ALL_ORGANIZATIONS:
            yield
            return
        pending_query = self.query
        self.query = pending_query.chain()
        self.query.add_q(models.Q(organization_id=scope.id))
        try:
            yield
        finally:
            self.query = pending_query

    # Every way a QuerySet reaches the database goes through one of these.
    def _fetch_all(self):
        if self._result_cache is None:
            with self._scoped_query():
                super()._fetch_all()
        else:
            super()._fetch_all()

    def _iterator(self, use_chunked_fetch, chunk_size):
        with self._scoped_query():  # a generator: the scope spans the iteration
            yield from super()._iterator(use_chunked_fetch, chunk_size)

    def count(self):
        with self._scoped_query():
            return super().count()

    def exists(self):
        with self._scoped_query():
            return super().exists()

    def contains(self, obj):
        with self._scoped_query():
            return super().contains(obj)

    def aggregate(self, *args, **kwargs):
        with self._scoped_query():
            return super().aggregate(*args, **kwargs)

    def update(self, **kwargs):
        with self._scoped_query():
            return super().update(**kwargs)

    def _update(self, values):
        with self._scoped_query():
            return super()._update(values)

    def delete(self):
        with self._scoped_query():
            return super().delete()

    def explain(self, *, format=None, **options):  # noqa: A002 - Django's signature
        with self._scoped_query():
            return super().explain(format=format, **options)

    def resolve_expression(self, *args, **kwargs):
        # Used as a subquery (`filter(x__in=queryset)`).
        with self._scoped_query():
            return super().resolve_expression(*args, **kwargs)


class TenantManager(models.Manager.from_queryset(TenantQuerySet)):  # type: ignore[misc]
    """Default manager of every tenant model: filters by the organization in scope, or raises.

    Related managers (`org.shipments`, `route.stops`) and prefetches derive from this class, so
    they are scoped too. Django's internal base manager stays unscoped (`Meta.base_manager_name`)
    so that following an already-loaded foreign key, `save()` and cascading deletes work.
    """

    def get_queryset(self) -> TenantQuerySet:
        queryset = super().get_queryset()
        scope = get_scope()
        if scope is None:
            queryset._tenant_pending = True  # decided when the query runs
        elif scope is not ALL_ORGANIZATIONS:
            queryset = queryset.filter(organization_id=scope.id)
        return queryset


class TenantModel(models.Model):
    """A row owned by one organization. `organization` is set from the scope, never a payload."""

    organization = models.ForeignKey(
        "control_tower.Organization", on_delete=models.CASCADE, related_name="+", editable=False
    )

    objects = TenantManager()
    # Explicit bypass, named so that every use stands out in review (PostHog's practice).
    dangerously_unscoped = models.Manager()  # noqa: DJ012 - managers read best together

    class Meta:
        abstract = True
        base_manager_name = "dangerously_unscoped"

    def save(self, *args, **kwargs) -> None:
        scope = get_scope()
        if self.organization_id is None:
            if scope is None or scope is ALL_ORGANIZATIONS:
                raise TenantScopeMissing(
                    f"Cannot save a new {type(self).__name__} without an organization."
                )
            self.organization = scope
        elif (
            scope is not None
            and scope is not ALL_ORGANIZATIONS
            and self.organization_id != scope.id
        ):
            raise TenantMismatch(
                f"{type(self).__name__} of organization {self.organization_id} saved in "
                f"the scope of organization {scope.id}."
            )
        super().save(*args, **kwargs)
