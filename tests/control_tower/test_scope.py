"""The fail-closed tenant scope and the database's same-organization links."""

import pytest
from django.db import IntegrityError, connection, transaction

from carriers.models import Carrier
from control_tower.errors import TenantMismatch, TenantScopeMissing
from control_tower.tenancy.migration_ops import constraint_name, tenant_links
from control_tower.tenancy.scope import dangerously_all_organizations, organization_scope
from tests.factories import CarrierFactory, HubFactory, ShipmentFactory
from tracking.models import Shipment

pytestmark = pytest.mark.django_db


def test_query_without_scope_raises(tenant):
    with pytest.raises(TenantScopeMissing):
        list(Carrier.objects.all())
    with pytest.raises(TenantScopeMissing):
        Carrier.objects.count()
    with pytest.raises(TenantScopeMissing):
        Carrier.objects.filter(code="x").update(name="y")
    with pytest.raises(TenantScopeMissing):
        Carrier.objects.all().delete()


def test_scope_filters_to_one_organization(tenant, other_tenant):
    with organization_scope(tenant.organization):
        assert list(Carrier.objects.values_list("pk", flat=True)) == [tenant.carrier.pk]
        assert Carrier.objects.filter(pk=other_tenant.carrier.pk).first() is None
        # Related managers are scoped as well.
        assert Carrier.objects.get(pk=tenant.carrier.pk).drivers.count() == 1


def test_queryset_built_without_scope_is_filtered_when_it_runs(tenant, other_tenant):
    lazy = Carrier.objects.all()  # like a filter or serializer field declared at import time
    with organization_scope(other_tenant.organization):
        assert [c.pk for c in lazy.all()] == [other_tenant.carrier.pk]
    with organization_scope(tenant.organization):
        assert [c.pk for c in lazy.all()] == [tenant.carrier.pk]
    with pytest.raises(TenantScopeMissing):
        list(lazy.all())


def test_a_shared_pending_queryset_never_keeps_a_tenants_filter(tenant, other_tenant):
    CarrierFactory(organization=other_tenant.organization)
    shared = Carrier.objects.all()  # the same object reused by many requests
    with organization_scope(other_tenant.organization):
        assert shared.count() == 2
        assert shared.exists()
    with organization_scope(tenant.organization):
        assert shared.count() == 1
        assert [c.pk for c in shared.iterator()] == [tenant.carrier.pk]
    with pytest.raises(TenantScopeMissing):
        shared.count()


def test_subquery_is_scoped(tenant, other_tenant):
    ShipmentFactory(organization=tenant.organization, carrier=tenant.carrier)
    ShipmentFactory(organization=other_tenant.organization, carrier=other_tenant.carrier)
    carriers = Carrier.objects.all()
    with organization_scope(tenant.organization):
        assert Shipment.objects.filter(carrier__in=carriers).count() == 1


def test_all_organizations_is_explicit(tenant, other_tenant):
    with dangerously_all_organizations():
        assert Carrier.objects.count() == 2


def test_save_in_another_organizations_scope_is_refused(tenant, other_tenant):
    carrier = tenant.carrier
    with organization_scope(other_tenant.organization), pytest.raises(TenantMismatch):
        carrier.name = "stolen"
        carrier.save()


def test_new_row_takes_the_organization_in_scope(tenant):
    with organization_scope(tenant.organization):
        carrier = Carrier(code="new", name="New", kind="gig")
        carrier.save()
    assert carrier.organization_id == tenant.organization.pk
    with pytest.raises(TenantScopeMissing):
        Carrier(code="orphan", name="Orphan", kind="gig").save()


def test_database_refuses_a_link_to_another_organizations_row(tenant, other_tenant):
    foreign_hub = HubFactory(organization=other_tenant.organization)
    shipment = ShipmentFactory(organization=tenant.organization)
    with pytest.raises(IntegrityError), transaction.atomic():
        Shipment.dangerously_unscoped.filter(pk=shipment.pk).update(hub=foreign_hub)
        connection.check_constraints()  # deferred constraints are checked at commit


def test_every_tenant_link_has_a_same_organization_constraint():
    from django.apps import apps

    expected = {
        constraint_name(table, column)
        for table, column, _ in tenant_links(apps, ["control_tower", "carriers", "tracking"])
    }
    with connection.cursor() as cursor:
        cursor.execute("SELECT conname FROM pg_constraint WHERE conname LIKE %s", ["%_same_org"])
        present = {row[0] for row in cursor.fetchall()}
    assert expected, "no tenant links found"
    assert expected - present == set(), "add EnforceSameOrganization to a new migration"


def test_carrier_code_is_unique_per_organization_not_globally(tenant, other_tenant):
    CarrierFactory(organization=other_tenant.organization, code=tenant.carrier.code)
    with pytest.raises(IntegrityError), transaction.atomic():
        CarrierFactory(organization=tenant.organization, code=tenant.carrier.code)


def test_querysets_declared_on_api_classes_stay_pending(client, tenant):
    """The URLconf (and so every view, filter and serializer class) is imported when the
    middleware starts, outside any scope: class-level querysets decide their organization per
    query, never keep the first request's."""
    from rest_framework.test import APIClient

    from tracking.api.views import ShipmentFilter

    APIClient().force_login(tenant.user("owner"))
    assert ShipmentFilter.base_filters["carrier"].queryset._tenant_pending is True
    assert ShipmentFilter.base_filters["hub"].queryset._tenant_pending is True
