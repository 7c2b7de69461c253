"""Base class for management commands that work inside one organization."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from control_tower.models import Organization
from control_tower.tenancy.scope import organization_scope


class OrganizationCommand(BaseCommand):
    """A command run as `manage.py NAME --org SLUG ...`; `handle_in_organization` runs with
    that organization in scope, so every query it makes is tenant-filtered."""

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="Slug of the organization to work in.")

    def handle(self, *args, **options):
        organization = Organization.objects.filter(slug=options["org"]).first()
        if organization is None:
            known = ", ".join(Organization.objects.values_list("slug", flat=True)[:20]) or "none"
            raise CommandError(f"No organization {options['org']!r} (known: {known}).")
        with organization_scope(organization):
            return self.handle_in_organization(organization, *args, **options)

    def handle_in_organization(self, organization, *args, **options):  # pragma: no cover
        raise NotImplementedError
