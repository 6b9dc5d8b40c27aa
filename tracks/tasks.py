"""Celery tasks: thin hand-offs to services. They take ids, never model instances.

No task stores a result (nothing reads them; the outcome of a render is on its row), so publishing
talks to the broker only and fails at once when Redis is down.
"""

from __future__ import annotations

import logging

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError

from backtrack.metrics import render_observe
from tracks import services
from tracks.engine import EngineError
from tracks.models import Render, RenderStatus
from tracks.services.render_execution import render_heartbeat
from tracks.services.stems import stems_fetch

logger = logging.getLogger(__name__)

TRANSIENT_RETRIES = 3


@shared_task(bind=True, name="tracks.tasks.render_run", max_retries=TRANSIENT_RETRIES, ignore_result=True)
def render_run(self: Task, render_id: int) -> str:
    """Render one variant. Idempotent: a finished render is skipped; a redelivery counts an attempt.

    While it renders, a heartbeat thread tells the sweeper the render is alive (RENDER_HEARTBEAT_S).
    """
    try:
        render = services.render_claim(render_id=render_id, task_id=self.request.id or "")
    except (OperationalError, InterfaceError) as exc:
        # The database was busy or away: nothing has started, so try again shortly.
        raise self.retry(exc=exc, countdown=1 + self.request.retries) from exc
    if render is None:
        return "skipped"
    try:
        return _render_run_claimed(self, render)
    finally:
        _render_observe(render_id)


def _render_observe(render_id: int) -> None:
    """Count a render that ended (done or failed) for /metrics; a released (retried) one is not."""
    ended = Render.objects.filter(pk=render_id, status__in=(RenderStatus.DONE, RenderStatus.FAILED))
    try:
        row = ended.values("status", "started_at", "finished_at").first()
    except DatabaseError:
        logger.warning("render %s: could not count it for /metrics", render_id, exc_info=True)
        return
    if row is not None:
        render_observe(status=row["status"], started_at=row["started_at"], finished_at=row["finished_at"])


def _render_run_claimed(self: Task, render: Render) -> str:
    render_id = render.pk
    try:
        with render_heartbeat(render=render):
            stems_fetch(render=render)
            render = services.render_execute(render=render)
    except SoftTimeLimitExceeded:
        limit = settings.CELERY_TASK_SOFT_TIME_LIMIT
        services.render_fail(render_id=render_id, reason=f"the render took longer than {limit} s; giving up")
        return "failed"
    except services.TransientRenderError as exc:
        # Its message is a plain reason by contract; the cause (paths, hosts) goes to the log only.
        logger.warning("render %s: %s", render_id, exc, exc_info=exc.__cause__ is not None)
        if self.request.retries >= TRANSIENT_RETRIES:
            services.render_fail(render_id=render_id, reason=str(exc))
            return "failed"
        services.render_release(render_id=render_id)
        raise self.retry(exc=exc, countdown=min(60, 5 * 2**self.request.retries)) from exc
    except Exception:
        logger.exception("render %s failed unexpectedly", render_id)
        services.render_fail(render_id=render_id, reason="the render failed because of an internal error")
        return "failed"
    return str(render.status)


@shared_task(name="tracks.tasks.render_stems_prepare", acks_late=False, ignore_result=True)
def render_stems_prepare(render_id: int) -> bool:
    """Per-part stems after a first render, shared through storage, so later mix changes skip
    synthesis on every worker (best effort). Low priority because of its queue (``stems``)."""
    try:
        return services.render_stems_prepare(render_id=render_id)
    except EngineError as exc:
        logger.warning("stems for render %s were not prepared: %s", render_id, exc)
        return False


@shared_task(name="tracks.tasks.revision_loudness_measure", acks_late=False, ignore_result=True)
def revision_loudness_measure(revision_id: int) -> bool:
    """A new revision's per-part stems and loudness profile, so its first variants stream (best effort)."""
    try:
        return services.revision_loudness_measure(revision_id=revision_id)
    except EngineError as exc:
        logger.warning("the loudness of revision %s was not measured: %s", revision_id, exc)
        return False


@shared_task(name="tracks.tasks.renders_requeue_stale", ignore_result=True)
def renders_requeue_stale() -> int:
    """Re-enqueue renders whose worker went silent or whose message the broker lost."""
    return services.render_requeue_stale()


@shared_task(name="tracks.tasks.renders_prune", ignore_result=True)
def renders_prune() -> dict[str, int]:
    """Keep stored renders and this worker's stems under RENDER_STORAGE_BUDGET_MB."""
    return services.render_prune()


@shared_task(name="tracks.tasks.notifications_email_digest", ignore_result=True)
def notifications_email_digest() -> int:
    """Email the notifications that waited for their recipient's batching interval to pass."""
    return services.notification_emails_digest()


@shared_task(name="tracks.tasks.setlist_export_run", ignore_result=True)
def setlist_export_run(export_id: int) -> str:
    """Render a setlist export (progress "3 of 8 songs" on its row). Idempotent: only a queued export runs."""
    from tracks.services.setlists import setlist_export_run as run

    export = run(export_id=export_id)
    return "skipped" if export is None else str(export.status)
