"""Celery tasks: thin hand-offs to services. They take ids, never model instances.

No task stores a result (nothing reads them; the outcome of a render is on its row), so publishing
talks to the broker only and fails at once when Redis is down.
"""

from __future__ import annotations

import logging

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError

from tracks import services
from tracks.engine import EngineError
from tracks.services.render_execution import render_heartbeat

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
        with render_heartbeat(render=render):
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


STEMS_DEFER_S = 15
STEMS_MAX_DEFERRALS = 20


@shared_task(
    bind=True,
    name="tracks.tasks.render_stems_prepare",
    acks_late=False,
    max_retries=STEMS_MAX_DEFERRALS,
    ignore_result=True,
)
def render_stems_prepare(self: Task, render_id: int) -> bool:
    """Per-part stems after a first render, so later mix changes skip synthesis (best effort).

    Low priority by deferral: while renders are queued it steps back and tries again later.
    """
    try:
        return services.render_stems_prepare(render_id=render_id)
    except services.StemsDeferred as exc:
        if self.request.retries >= STEMS_MAX_DEFERRALS:
            return False
        raise self.retry(exc=exc, countdown=STEMS_DEFER_S) from exc
    except EngineError as exc:
        logger.warning("stems for render %s were not prepared: %s", render_id, exc)
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
