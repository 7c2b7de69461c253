from django.apps import AppConfig


class SlaConfig(AppConfig):
    name = "carriers.sla"
    label = "sla"
    verbose_name = "SLA scorecards"
