"""`manage.py notifications_demo --org demo`: the demo organization's notification policy.

The demo runs at any hour of the day, while the shipped quiet hours (21:00-08:00 in the
organization's zone) would hold every customer message of a night-time demo until morning.
This turns quiet hours off for that organization only (the admin turns them back on:
Notifications > Notification settings) and sets a sender name and reply-to. Idempotent.
"""

from __future__ import annotations

from datetime import time

from django.core.management.base import BaseCommand, CommandError

from control_tower.models import Organization
from control_tower.tenancy.scope import organization_scope
from notifications.policy import settings_for


class Command(BaseCommand):
    help = "Configure the demo organization's notifications (quiet hours off, sender)."

    def add_arguments(self, parser):
        parser.add_argument("--org", default="demo", help="Organization slug (default: demo).")

    def handle(self, *args, org: str, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organization with the slug {org!r}.")
        with organization_scope(organization):
            policy = settings_for(organization)
            policy.quiet_hours_start = policy.quiet_hours_end = time(0, 0)
            policy.sender_name = policy.sender_name or organization.name
            policy.reply_to = policy.reply_to or organization.support_email
            policy.save()
        self.stdout.write(
            f"Notifications of {organization.slug}: quiet hours off (demo), sender "
            f"{policy.sender_name!r}, reply-to {policy.reply_to or '(none)'}"
        )
