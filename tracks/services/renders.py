"""The life of a render request: settings, the per-user cap, the queue, claims, failures, the sweeper.

A render is a row with a status and a reason. Requests create or reuse the row (identical settings on
one revision exist once), tasks claim it by id and record the outcome, and the sweeper re-enqueues
what the broker or a dead worker lost. Executing a claimed render is ``render_execution``'s job.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.http import Http404
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError

from performers.models import User
from performers.services import chosen_key_remember
from tracks import selectors
from tracks.engine import InvalidSettings, VariantSettings
from tracks.models import NotificationKind, Render, RenderStatus, Revision
from tracks.services.errors import RenderLimitReached, RenderQueueUnavailable
from tracks.services.notifications import render_requesters_notify

logger = logging.getLogger(__name__)

# An identical request for a render whose enqueue never succeeded re-enqueues it, but not within the
# first seconds, when the original request may still be about to enqueue it.
ENQUEUE_GRACE = timedelta(seconds=15)


def render_settings_normalise(*, revision: Revision, settings: dict[str, Any]) -> VariantSettings:
    """Validated, canonical settings (the engine decides the ranges); ValidationError with its reason."""
    try:
        variant = VariantSettings.from_dict(settings)
        variant.validate(part_count=len(revision.parts))
        return variant.normalised()
    except InvalidSettings as exc:
        raise ValidationError(str(exc)) from exc


def _lock_requester(user: User) -> None:
    """Serialise one user's render requests for the current transaction.

    The active-renders cap is a count followed by an insert; without a lock, simultaneous requests
    all count the same number and all insert. A no-op UPDATE takes the user's row lock on
    PostgreSQL (SQLite's IMMEDIATE transactions already take the write lock when they begin).
    """
    User.objects.filter(pk=user.pk).update(is_active=F("is_active"))


def _check_active_limit(user: User) -> None:
    """RenderLimitReached when ``user`` has the most active renders allowed (call it under the lock)."""
    limit = int(django_settings.RENDER_MAX_ACTIVE_PER_USER)
    active = selectors.render_active_count(user=user)
    if active >= limit:
        raise RenderLimitReached(
            f"you already have {active} renders queued or rendering (the limit is {limit}); "
            "wait for one to finish"
        )


def render_enqueue(*, render_id: int) -> None:
    """Hand the render to Celery; on broker failure the row stays queued for the sweeper."""
    from tracks.tasks import render_run

    try:
        result = render_run.apply_async(args=(render_id,), retry=False)
    except (KombuOperationalError, RedisError, OSError) as exc:
        # kombu wraps connection trouble in OperationalError; redis-py raises its own errors.
        logger.warning("could not enqueue render %s: %s", render_id, exc)
        raise RenderQueueUnavailable(render_id=render_id) from exc
    Render.objects.filter(pk=render_id, status=RenderStatus.QUEUED).update(
        enqueued_at=timezone.now(), task_id=result.id or ""
    )


def _render_reuse(*, render: Render, user: User) -> Render:
    """An identical request: answer with the existing render; restart it only if it failed."""
    now = timezone.now()
    Render.objects.filter(pk=render.pk).update(last_accessed_at=now)
    render.last_accessed_at = now
    if user.pk not in set(render.requesters.values_list("pk", flat=True)):
        render.requesters.add(user)
    if render.status == RenderStatus.FAILED:
        with transaction.atomic():
            _lock_requester(user)
            _check_active_limit(user)
            restarted = Render.objects.filter(pk=render.pk, status=RenderStatus.FAILED).update(
                status=RenderStatus.QUEUED,
                error="",
                progress=0.0,
                attempts=0,
                enqueued_at=None,
                started_at=None,
                finished_at=None,
                requested_by=user,
            )
            if restarted:
                transaction.on_commit(partial(render_enqueue, render_id=render.pk))
        render.refresh_from_db()
    elif (
        render.status == RenderStatus.QUEUED
        and render.enqueued_at is None
        and render.created_at < now - ENQUEUE_GRACE
    ):
        # Its first enqueue failed (Redis was down): try again now rather than wait for the sweeper.
        render_enqueue(render_id=render.pk)
        render.refresh_from_db()
    return render


def render_request(*, user: User, revision: Revision, settings: dict[str, Any]) -> tuple[Render, bool]:
    """The render of ``revision`` with ``settings``: the existing one, or a new queued one.

    Returns ``(render, created)``. A unique constraint on (revision, settings_hash) makes concurrent
    identical requests create one row and one task. The task is enqueued after commit.
    """
    if not user.is_authenticated:
        raise PermissionDenied("log in to request renders")
    if not selectors.track_is_visible(track=revision.track, user=user):
        raise Http404("no such revision")
    variant = render_settings_normalise(revision=revision, settings=settings)
    settings_hash = variant.cache_key()

    existing = Render.objects.filter(revision=revision, settings_hash=settings_hash).first()
    if existing is not None:
        reused = _render_reuse(render=existing, user=user)
        _remember_key(user=user, revision=revision, transpose=variant.transpose)
        return reused, False

    try:
        with transaction.atomic():
            _lock_requester(user)
            _check_active_limit(user)
            render = Render.objects.create(
                revision=revision,
                settings=variant.to_dict(),
                settings_hash=settings_hash,
                stem_key=variant.stem_key(),
                requested_by=user,
            )
            render.requesters.add(user)
            _remember_key(user=user, revision=revision, transpose=variant.transpose)
            transaction.on_commit(partial(render_enqueue, render_id=render.pk))
    except IntegrityError:
        # A concurrent identical request won the race: its row (and its task) is ours too.
        existing = Render.objects.filter(revision=revision, settings_hash=settings_hash).first()
        if existing is None:
            raise
        reused = _render_reuse(render=existing, user=user)
        _remember_key(user=user, revision=revision, transpose=variant.transpose)
        return reused, False
    return render, True


def _remember_key(*, user: User, revision: Revision, transpose: int) -> None:
    """A performer's key for a track is offered again, whether their render is new or shared."""
    if user.is_performer:
        chosen_key_remember(performer=user, track=revision.track, transpose=transpose)


def render_mark_accessed(*, render: Render) -> None:
    """Downloads and plays keep a render young for the pruner."""
    now = timezone.now()
    Render.objects.filter(pk=render.pk).update(last_accessed_at=now)
    render.last_accessed_at = now


def _lock_render(render_id: int) -> Render | None:
    """Lock one render row for the current transaction, the same way on every database.

    A no-op UPDATE takes the row lock on PostgreSQL and SQLite's write lock at once. A transaction
    that reads first would hold only SQLite's read lock and fail with "database is locked" (instead
    of waiting) when it upgrades while the web process writes the same database.
    """
    if not Render.objects.filter(pk=render_id).update(attempts=F("attempts")):
        return None
    return Render.objects.select_for_update().select_related("revision__track").get(pk=render_id)


def _interrupted_reason(attempts: int) -> str:
    words = {1: "once", 2: "twice"}
    return f"the render was interrupted {words.get(attempts, f'{attempts} times')}; giving up"


def render_claim(*, render_id: int, task_id: str) -> Render | None:
    """Lock the row and start an attempt; None when there is nothing (more) to do.

    The attempt counter is what stops a poisoned render from looping: a task redelivered after its
    worker died counts as a new attempt, and past RENDER_MAX_ATTEMPTS the render is failed.
    """
    max_attempts = int(django_settings.RENDER_MAX_ATTEMPTS)
    running_window = timedelta(seconds=int(django_settings.CELERY_TASK_TIME_LIMIT) + 60)
    now = timezone.now()
    with transaction.atomic():
        render = _lock_render(render_id)
        if render is None or render.status in (RenderStatus.DONE, RenderStatus.FAILED):
            return None
        if (
            render.status == RenderStatus.RENDERING
            and render.task_id
            and render.task_id != task_id
            and render.started_at is not None
            and render.started_at > now - running_window
        ):
            return None  # a duplicate message while another worker is on it
        render.attempts += 1
        if render.attempts > max_attempts:
            _render_set_failed(render=render, reason=_interrupted_reason(render.attempts - 1))
            return None
        render.status = RenderStatus.RENDERING
        render.task_id = task_id
        render.started_at = now
        render.progress = 0.0
        render.error = ""
        render.save(update_fields=["attempts", "status", "task_id", "started_at", "progress", "error"])
    return render


def render_stems_enqueue(*, render_id: int) -> None:
    """Ask for per-part stems in the background; best effort (a later mix change just renders)."""
    from tracks.tasks import render_stems_prepare

    try:
        render_stems_prepare.apply_async(args=(render_id,), retry=False)
    except (KombuOperationalError, RedisError, OSError) as exc:
        logger.warning("could not enqueue stems for render %s: %s", render_id, exc)


def _render_set_failed(*, render: Render, reason: str) -> None:
    render.status = RenderStatus.FAILED
    render.error = reason[:2000]
    render.finished_at = timezone.now()
    render.save(update_fields=["status", "error", "finished_at", "attempts"])
    render_requesters_notify(render=render, kind=NotificationKind.RENDER_FAILED)


def render_fail(*, render_id: int, reason: str) -> Render:
    """Record a failure with a reason a person understands (never over a finished render)."""
    with transaction.atomic():
        render = _lock_render(render_id)
        if render is None:
            raise Render.DoesNotExist(f"render {render_id} does not exist")
        if render.status != RenderStatus.DONE:
            _render_set_failed(render=render, reason=reason)
    return render


def render_release(*, render_id: int) -> None:
    """Give a claimed render back to the queue before a retry; that attempt does not count."""
    with transaction.atomic():
        render = _lock_render(render_id)
        if render is None or render.status != RenderStatus.RENDERING:
            return
        render.status = RenderStatus.QUEUED
        render.attempts = max(render.attempts - 1, 0)
        render.save(update_fields=["status", "attempts"])


def render_requeue_stale(*, queued_grace: timedelta = timedelta(seconds=60)) -> int:
    """The sweeper: re-enqueue renders whose task never reached (or was lost by) the broker.

    - queued and never enqueued (the broker was down at request time), after a grace period;
    - queued with an enqueue older than the broker's visibility timeout (the message was lost);
    - rendering past the hard time limit (the worker vanished and the message with it).
    The task's attempt counter still bounds how often one render runs.
    """
    now = timezone.now()
    hard_limit = int(django_settings.CELERY_TASK_TIME_LIMIT)
    visibility = int(
        django_settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", hard_limit * 4)
    )
    stale = Render.objects.filter(
        Q(status=RenderStatus.QUEUED, enqueued_at__isnull=True, created_at__lt=now - queued_grace)
        | Q(status=RenderStatus.QUEUED, enqueued_at__lt=now - timedelta(seconds=visibility))
        | Q(status=RenderStatus.RENDERING, started_at__lt=now - timedelta(seconds=hard_limit + 60))
    ).order_by("created_at")
    requeued = 0
    for render_id in list(stale.values_list("pk", flat=True)[:500]):
        Render.objects.filter(pk=render_id, status=RenderStatus.RENDERING).update(status=RenderStatus.QUEUED)
        try:
            render_enqueue(render_id=render_id)
        except RenderQueueUnavailable:
            break  # the broker is still down; the next sweep tries again
        requeued += 1
    return requeued
