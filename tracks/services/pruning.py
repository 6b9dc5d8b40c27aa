"""Keeping storage under its budget: old renders and shared stem sets in the media storage (one
worker, from the maintenance queue), stems and scratch files in each worker's ``RENDER_CACHE_DIR``."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

from django.conf import settings as django_settings
from django.db.models import Sum
from django.utils import timezone

from tracks.models import ACTIVE_RENDER_STATUSES, Render, RenderStatus, Revision
from tracks.services.stems import stems_storage_prune
from tracks.services.storage import storage_discard


def _tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(child.stat().st_size for child in path.rglob("*") if child.is_file())


def _tree_mtime(path: Path) -> float:
    if path.is_file():
        return path.stat().st_mtime
    times = [child.stat().st_mtime for child in path.rglob("*")]
    return max(times, default=path.stat().st_mtime)


def _remove_tree(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def render_prune(
    *,
    budget_bytes: int | None = None,
    min_idle: timedelta = timedelta(minutes=10),
    failed_max_age: timedelta = timedelta(days=7),
) -> dict[str, int]:
    """Keep stored renders, stored stem sets and this worker's stems under the budget, least recently
    used first (stem sets in storage: oldest first).

    Queued and rendering renders, and anything used within ``min_idle``, are never touched.
    """
    budget = int(
        budget_bytes if budget_bytes is not None else django_settings.RENDER_STORAGE_BUDGET_MB * 2**20
    )
    now = timezone.now()
    idle_before = now - min_idle
    report = {"renders_deleted": 0, "bytes_freed": 0}

    Render.objects.filter(status=RenderStatus.FAILED, finished_at__lt=now - failed_max_age).delete()

    total = Render.objects.filter(status=RenderStatus.DONE).aggregate(total=Sum("audio_size"))["total"] or 0
    if total > budget:
        candidates = (
            Render.objects.filter(status=RenderStatus.DONE, last_accessed_at__lt=idle_before)
            .order_by("last_accessed_at", "id")
            .values_list("pk", "audio", "audio_size")
        )
        for render_id, audio_name, size in candidates.iterator():
            if total <= budget:
                break
            # Delete the row only if nobody touched it meanwhile; then its file.
            deleted, _ = Render.objects.filter(
                pk=render_id, status=RenderStatus.DONE, last_accessed_at__lt=idle_before
            ).delete()
            if not deleted:
                continue
            if audio_name:
                storage_discard(names=[audio_name])
            total -= size
            report["renders_deleted"] += 1
            report["bytes_freed"] += size

    busy_revisions = set(
        Render.objects.filter(status__in=ACTIVE_RENDER_STATUSES).values_list("revision_id", flat=True)
    )
    report.update(stems_storage_prune(budget_bytes=budget, busy_revisions=busy_revisions))
    report.update(render_cache_prune(budget_bytes=budget, min_idle=min_idle))
    return report


def render_cache_prune(
    *, budget_bytes: int | None = None, min_idle: timedelta = timedelta(minutes=10)
) -> dict[str, int]:
    """Keep this worker's local stems under the budget (least recently used first) and clear its
    scratch files. Every worker runs it for itself (backtrack/celery.py starts a timer per worker).
    """
    budget = int(
        budget_bytes if budget_bytes is not None else django_settings.RENDER_STORAGE_BUDGET_MB * 2**20
    )
    now = timezone.now()
    idle_before = now - min_idle
    report = {"stems_deleted": 0, "stem_bytes_freed": 0}
    stems_root = Path(django_settings.RENDER_CACHE_DIR) / "stems"
    if stems_root.is_dir():
        busy = {
            str(pk)
            for pk in Render.objects.filter(status__in=ACTIVE_RENDER_STATUSES).values_list(
                "revision_id", flat=True
            )
        }
        live = {str(pk) for pk in Revision.objects.values_list("pk", flat=True)}
        entries: list[tuple[float, int, Path]] = []
        stem_total = 0
        for revision_dir in stems_root.iterdir():
            if revision_dir.name not in live:
                _remove_tree(revision_dir)
                continue
            for entry in revision_dir.iterdir():
                size = _tree_size(entry)
                stem_total += size
                if revision_dir.name not in busy and _tree_mtime(entry) < idle_before.timestamp():
                    entries.append((_tree_mtime(entry), size, entry))
        for _, size, entry in sorted(entries, key=lambda item: item[0]):
            if stem_total <= budget:
                break
            _remove_tree(entry)
            stem_total -= size
            report["stems_deleted"] += 1
            report["stem_bytes_freed"] += size

    tmp_dir = Path(django_settings.RENDER_CACHE_DIR) / "tmp"
    if tmp_dir.is_dir():
        for leftover in tmp_dir.iterdir():
            if leftover.stat().st_mtime < (now - timedelta(hours=1)).timestamp():
                _remove_tree(leftover)
    return report
