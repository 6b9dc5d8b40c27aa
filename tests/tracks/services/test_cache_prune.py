"""Each worker prunes its own render cache: render_cache_prune, run by a timer every worker starts."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from backtrack import celery as celery_module
from tests.factories import RenderFactory, RevisionFactory
from tracks.models import RenderStatus
from tracks.services.pruning import render_cache_prune

pytestmark = pytest.mark.django_db(transaction=True)


def old_stem_set(folder: Path, size: int = 2000) -> Path:
    folder.mkdir(parents=True)
    (folder / "stem-00.npy").write_bytes(b"x" * size)
    old = (timezone.now() - timedelta(hours=2)).timestamp()
    os.utime(folder / "stem-00.npy", (old, old))
    return folder


def test_a_worker_prunes_its_own_cache_without_touching_the_media_storage(settings, isolated_media):
    # given: this worker's cache holds an idle set, a busy set and a deleted revision's set
    stems = Path(settings.RENDER_CACHE_DIR) / "stems"
    idle = old_stem_set(stems / str(RevisionFactory().pk) / "a")
    busy = old_stem_set(stems / str(RenderFactory(status=RenderStatus.QUEUED).revision_id) / "b")
    orphan = old_stem_set(stems / "999999" / "c")
    media_before = sorted(path for path in isolated_media.rglob("*") if path.is_file())

    # when
    report = render_cache_prune(budget_bytes=100)

    # then
    assert (idle.exists(), busy.exists(), orphan.parent.exists()) == (False, True, False)
    assert report["stems_deleted"] == 1
    assert sorted(path for path in isolated_media.rglob("*") if path.is_file()) == media_before


def test_every_worker_starts_its_own_pruning_timer(settings, monkeypatch: Any):
    # given: a worker's cache with an idle stem set, and a short prune interval
    settings.RENDER_CACHE_PRUNE_INTERVAL_S = 0.05
    settings.RENDER_STORAGE_BUDGET_MB = 0
    stems = Path(settings.RENDER_CACHE_DIR) / "stems"
    revision = RevisionFactory()
    monkeypatch.setattr(celery_module, "_cache_pruner", None)
    idle = old_stem_set(stems / str(revision.pk) / "a")

    # when: the worker becomes ready
    celery_module._start_cache_pruner()
    try:
        # then: the timer removes the idle set (within a generous deadline; no timing asserted)
        deadline = time.monotonic() + 20
        while idle.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not idle.exists()
    finally:
        celery_module._stop_cache_pruner()
