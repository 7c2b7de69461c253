"""The Celery app: `celery -A control_tower worker` / `beat`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "control_tower.settings")

app = Celery("control_tower")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
