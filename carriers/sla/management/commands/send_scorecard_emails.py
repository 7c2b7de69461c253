"""`manage.py send_scorecard_emails [--now] [--org SLUG]`: send the due weekly scorecard
e-mails (what the beat task does every 15 minutes), or with --now every active one at once."""

from django.core.management.base import BaseCommand, CommandError

from carriers.sla.digest import scorecard_emails_send_due
from control_tower.models import Organization


class Command(BaseCommand):
    help = "Send the weekly scorecard e-mails that are due (--now: every active one)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--now",
            action="store_true",
            help="Send every active scheduled e-mail now, whatever its weekday and hour.",
        )
        parser.add_argument("--org", metavar="SLUG", help="Only this organization.")

    def handle(self, *args, now=False, org=None, **options):
        if org and not Organization.objects.filter(slug=org).exists():
            raise CommandError(f"No organization with slug {org!r}.")
        outcome = scorecard_emails_send_due(organization_slug=org, force=now)
        self.stdout.write(
            f"{outcome.schedules} scheduled e-mail(s): {outcome.sent} sent, "
            f"{outcome.skipped} recipient(s) skipped, {outcome.failed} failed."
        )
        if outcome.failed:
            raise CommandError(f"{outcome.failed} message(s) could not be sent.")
