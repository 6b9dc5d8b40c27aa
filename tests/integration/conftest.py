"""Fixtures for tests that need a real Celery worker."""

from __future__ import annotations

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
