from django.apps import AppConfig


class ExceptionsConfig(AppConfig):
    name = "exceptions"
    verbose_name = "Delivery exceptions"

    def ready(self) -> None:
        from control_tower.events import subscribe
        from exceptions.rules import failed_attempt, pod_far, predicted_late

        # Durable subscribers (the outbox relay): the names key their receipts, keep them.
        # Alerts are about the present: history recorded after the fact raises none.
        for pattern, handler, name in (
            ("stop.eta_changed", predicted_late.on_stop_event, "exceptions.predicted_late.eta"),
            (
                "stop.status_changed",
                predicted_late.on_stop_event,
                "exceptions.predicted_late.status",
            ),
            ("stop.status_changed", failed_attempt.on_stop_status, "exceptions.failed_attempt"),
            ("route.changed", failed_attempt.on_route_changed, "exceptions.failed_attempt.route"),
            ("pod.captured", pod_far.on_pod_captured, "exceptions.pod_far"),
        ):
            subscribe(pattern, handler, name=name, backfill=False)
        # Past days replayed for the demo get the alerts they would have had, resolved.
        from exceptions.history import record_route_alerts
        from tracking.simulation.history import register_history_recorder

        register_history_recorder(record_route_alerts)
