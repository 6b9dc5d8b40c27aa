"""The Celery app `backtrack`: configured from Django settings (CELERY_ prefix), tasks autodiscovered."""

import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backtrack.settings")

app = Celery("backtrack")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _warm_up_render_threads(**_kwargs: object) -> None:
    """Each worker process loads the SoundFont into its render threads as it starts (in the
    background), so the first render it takes does not wait for the SoundFont to load."""
    from django.conf import settings

    from tracks.engine import pool
    from tracks.engine_config import engine_config

    pool.warm_up(settings.SOUNDFONT_PATH, config=engine_config())
