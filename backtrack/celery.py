"""The Celery app `backtrack`: configured from Django settings (CELERY_ prefix), tasks autodiscovered."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backtrack.settings")

app = Celery("backtrack")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
