"""`manage.py train_eta --org SLUG`: fit the organization's ETA model and calibrate its windows
on recent history (what the live ETAs then use)."""

from __future__ import annotations

from control_tower.tenancy.commands import OrganizationCommand
from tracking.eta.calibration import DEFAULT_DAYS, train_and_calibrate


class Command(OrganizationCommand):
    help = (
        "Train (or re-use, when the data has not changed) the organization's ETA model (travel "
        "factors by hour) and the calibration of its windows."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--days", type=int, default=28, help="Days of history to train on.")
        parser.add_argument(
            "--calibration-days",
            type=int,
            default=DEFAULT_DAYS,
            help="Days of history replayed to calibrate the windows.",
        )

    def handle_in_organization(self, organization, *args, **options):
        model, calibration = train_and_calibrate(
            organization, days=options["days"], calibration_days=options["calibration_days"]
        )
        if model is None:
            self.stdout.write("not enough history yet: the network priors stay in use")
        else:
            self.stdout.write(
                f"ETA model v{model.version}: {model.legs} legs, {model.dwells} dwells, "
                f"{model.trained_from} to {model.trained_until} (excluded); travel factors for "
                f"{len(model.travel_by_hour)} hours"
            )
        if calibration is None:
            self.stdout.write("not enough history to calibrate: the prior windows stay in use")
        else:
            self.stdout.write(
                f"ETA calibration v{calibration.version}: {calibration.samples} replayed "
                f"predictions, buckets {', '.join(sorted(calibration.buckets))}"
            )
