from django.apps import AppConfig


class ExceptionsConfig(AppConfig):
    name = "exceptions"
    verbose_name = "Delivery exceptions"

    def ready(self) -> None:
        from control_tower.events import subscribe
        from exceptions.rules import failed_attempt, pod_far, predicted_late

        # Durable subscribers (the outbox relay): the names key their receipts, keep them.
        late = predicted_late.on_stop_event
        subscribe("stop.eta_changed", late, name="exceptions.predicted_late.eta")
        subscribe("stop.status_changed", late, name="exceptions.predicted_late.status")
        subscribe(
            "stop.status_changed", failed_attempt.on_stop_status, name="exceptions.failed_attempt"
        )
        subscribe(
            "route.changed", failed_attempt.on_route_changed, name="exceptions.failed_attempt.route"
        )
        subscribe("pod.captured", pod_far.on_pod_captured, name="exceptions.pod_far")
