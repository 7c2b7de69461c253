"""`manage.py train_eta --org SLUG`: fit the organization's ETA model on recent history."""

from __future__ import annotations

from control_tower.tenancy.commands import OrganizationCommand
from tracking.eta.learning import train


class Command(OrganizationCommand):
    help = "Train (or re-use, when the data has not changed) the organization's ETA model."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--days", type=int, default=28, help="Days of history to use.")

    def handle_in_organization(self, organization, *args, **options):
        model = train(organization, days=options["days"])
        if model is None:
            self.stdout.write("not enough history yet: the network priors stay in use")
            return
        self.stdout.write(
            f"ETA model v{model.version}: {model.legs} legs, {model.dwells} dwells, "
            f"{model.trained_from} to {model.trained_until} (excluded)"
        )
