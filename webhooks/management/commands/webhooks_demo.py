"""`manage.py webhooks_demo --org demo --url http://127.0.0.1:8099/hooks --secret-file F`:
the demo's webhook subscription to a local receiver.

Allows the receiver's private address in the organization's webhook settings (private
destinations are refused otherwise: docs/WEBHOOKS.md), creates the "Demo receiver" endpoint for
every durable event (or reuses it), and gives it a fresh secret, written to `--secret-file`
(mode 600) for `manage.py webhook_receiver --secret-file F`: secrets are shown once and stored
encrypted, so a restarted demo rotates rather than reads it. Idempotent.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from control_tower.models import Membership, Organization
from control_tower.tenancy.actors import actor_for_membership
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from webhooks.models import WebhookEndpoint
from webhooks.services import (
    endpoint_create,
    endpoint_enable,
    endpoint_rotate_secret,
    settings_for_organization,
    settings_update,
)

NAME = "Demo receiver"


class Command(BaseCommand):
    help = "Subscribe a local webhook receiver to the demo organization's events."

    def add_arguments(self, parser):
        parser.add_argument("--org", default="demo")
        parser.add_argument("--url", default="http://127.0.0.1:8099/hooks")
        parser.add_argument("--secret-file", required=True, help="Where to write the secret.")

    def handle(self, *args, org: str, url: str, secret_file: str, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organization with the slug {org!r}.")
        host = urlsplit(url).hostname or ""
        with organization_scope(organization), transaction.atomic():
            allowed = list(settings_for_organization().allowed_private_hosts)
            if host not in allowed:
                settings_update(allowed_private_hosts=[*allowed, host])
            endpoint = WebhookEndpoint.objects.filter(name=NAME).first()
            if endpoint is None:
                owner = Membership.objects.filter(role=Role.OWNER).order_by("pk").first()
                if owner is None:
                    raise CommandError(f"{org} has no owner to create the endpoint as.")
                endpoint, secret = endpoint_create(
                    actor=actor_for_membership(owner), name=NAME, url=url, event_types=["*"]
                )
            else:
                endpoint.url = url
                endpoint.save(update_fields=["url"])
                if not endpoint.enabled:
                    endpoint_enable(endpoint=endpoint)
                endpoint, secret = endpoint_rotate_secret(endpoint=endpoint, overlap_hours=0)
        path = Path(secret_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secret + "\n")
        self.stdout.write(
            f"Webhook endpoint {endpoint.pk} ({NAME}) -> {url}, every durable event; "
            f"secret in {path}"
        )
