from django.apps import AppConfig


class SlaConfig(AppConfig):
    name = "carriers.sla"
    label = "sla"
    verbose_name = "SLA scorecards"

    def ready(self) -> None:
        from carriers.sla.rollup.dirty import PATTERNS, on_event
        from control_tower.events import subscribe

        # One durable subscriber per pattern (names are receipts: keep them stable). History
        # imports count in reports, hence backfill=True.
        for pattern in PATTERNS:
            subscribe(pattern, on_event, name=f"sla.dirty.{pattern}", backfill=True)
