"""Fixtures for tests that need a real Celery worker."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings

from tests.integration.worker import Worker, purge_test_queue


@pytest.fixture
def celery_worker(
    transactional_db: None, tmp_path: Path, isolated_media: Path, settings: Any
) -> Iterator[Worker]:
    try:
        purge_test_queue()
    except Exception as exc:
        pytest.fail(f"Redis is not reachable at {django_settings.CELERY_BROKER_URL}: {exc}")
    worker = Worker(tmp_path, isolated_media, Path(settings.RENDER_CACHE_DIR))
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
        purge_test_queue()


# Recovery intervals for the tests: the defaults (heartbeat 5 s, silent after 30 s, sweep every 15 s,
# lost-message grace 20 s) scaled down so the suite stays fast. The environment may set the real
# defaults to measure them (RENDER_HEARTBEAT_S=5 RENDER_HEARTBEAT_TIMEOUT_S=30 ...).
RECOVERY_ENV = {
    "RENDER_HEARTBEAT_S": os.environ.get("RENDER_HEARTBEAT_S", "1"),
    "RENDER_HEARTBEAT_TIMEOUT_S": os.environ.get("RENDER_HEARTBEAT_TIMEOUT_S", "5"),
    "RENDER_SWEEP_INTERVAL_S": os.environ.get("RENDER_SWEEP_INTERVAL_S", "2"),
    "RENDER_LOST_GRACE_S": os.environ.get("RENDER_LOST_GRACE_S", "3"),
}


@pytest.fixture
def recovering_worker(
    transactional_db: None, tmp_path: Path, isolated_media: Path, settings: Any
) -> Iterator[Worker]:
    """A worker that also runs beat (the sweeper), with the recovery intervals of RECOVERY_ENV."""
    try:
        purge_test_queue(unacked=True)
    except Exception as exc:
        pytest.fail(f"Redis is not reachable at {django_settings.CELERY_BROKER_URL}: {exc}")
    worker = Worker(tmp_path, isolated_media, Path(settings.RENDER_CACHE_DIR), beat=True, env=RECOVERY_ENV)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
        purge_test_queue(unacked=True)
