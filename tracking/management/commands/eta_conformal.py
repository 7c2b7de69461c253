"""`manage.py eta_conformal --org SLUG`: recompute the organization's adaptive conformal ETA
windows from the ETAs shown over the last days (what the live windows then use; the scheduled
`tracking.eta_conformal` task does the same every few minutes)."""

from __future__ import annotations

from control_tower.tenancy.commands import OrganizationCommand
from tracking.eta.conformal_store import DEFAULT_DAYS, conformal_calibrate


class Command(OrganizationCommand):
    help = (
        "Adaptive conformal windows (ACI) on the recent ETAs shown against the actual arrivals, "
        "stored as the organization's newest ETA calibration."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--days", type=int, default=DEFAULT_DAYS, help="Days of arrivals replayed."
        )

    def handle_in_organization(self, organization, *args, **options):
        calibration = conformal_calibrate(organization, days=options["days"])
        if calibration is None:
            self.stdout.write(
                "not enough arrivals with ETAs shown yet: the windows stay as they are"
            )
            return
        self.stdout.write(
            f"ETA calibration v{calibration.version} ({calibration.samples} ETAs shown):"
        )
        for bucket, window in calibration.buckets.items():
            source = (
                f"conformal, alpha {window['alpha']}, missed {window['miss_rate']}"
                if "alpha" in window
                else "nightly"
            )
            self.stdout.write(
                f"  {bucket:>7} min  P10 {window['p10_min']:+.1f}  P90 {window['p90_min']:+.1f}"
                f"  (n={window['n']}, {source})"
            )
