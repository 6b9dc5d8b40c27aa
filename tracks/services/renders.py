"""The life of a render request: settings, the per-user cap, the queue, claims, failures, the sweeper.

A render is a row with a status and a reason. Requests create or reuse the row (identical settings on
one revision exist once), tasks claim it by id and record the outcome, and the sweeper re-enqueues
what the broker or a dead worker lost. Executing a claimed render is ``render_execution``'s job.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.http import Http404
from django.utils import timezone
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

from performers.models import User
from performers.services import chosen_key_remember
from tracks import selectors
from tracks.engine import InvalidSettings, VariantSettings
from tracks.models import NotificationKind, Render, RenderStatus, Revision
from tracks.services.dynamics import dynamics_check
from tracks.services.errors import RenderLimitReached, RenderQueueUnavailable
from tracks.services.notifications import render_requesters_notify
from tracks.services.sections import arrangement_check
from tracks.services.sounds import sound_settings_apply, sound_slugs

logger = logging.getLogger(__name__)

# An identical request for a render whose enqueue never succeeded re-enqueues it, but not within the
# first seconds, when the original request may still be about to enqueue it.
ENQUEUE_GRACE = timedelta(seconds=15)


def render_settings_normalise(
    *, revision: Revision, settings: dict[str, Any], user: User | None = None
) -> VariantSettings:
    """Validated, canonical settings (the engine decides the ranges); ValidationError with its reason.

    The track's default sound and (for ``user``) the performer's vocal range are filled in.
    """
    try:
        variant = VariantSettings.from_dict(settings, sounds=sound_slugs())
        variant.validate(part_count=len(revision.parts))
        arrangement_check(revision=revision, variant=variant)
        dynamics_check(revision=revision, variant=variant)
        return sound_settings_apply(variant=variant.normalised(), track=revision.track, user=user)
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


# What publishing can raise while Redis is down or unwell: kombu wraps connection trouble in its
# OperationalError; redis-py's own errors (LOADING, READONLY, MISCONF) and socket errors may pass
# through. No result backend is configured, so nothing else talks to Redis on this path.
BROKER_ERRORS: tuple[type[Exception], ...] = (KombuError, RedisError, OSError)


def render_enqueue(*, render_id: int) -> None:
    """Hand the render to Celery; on broker failure the row stays queued for the sweeper.

    One attempt, no retries (CELERY_BROKER_TRANSPORT_OPTIONS): while Redis is down the caller gets
    RenderQueueUnavailable at once.
    """
    from tracks.tasks import render_run

    try:
        result = render_run.apply_async(args=(render_id,), retry=False)
    except BROKER_ERRORS as exc:
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


def render_request(
    *, user: User, revision: Revision, settings: dict[str, Any], listen_from: float = 0.0
) -> tuple[Render, bool]:
    """The render of ``revision`` with ``settings``: the existing one, or a new queued one.

    ``listen_from`` (seconds) is where a listener of its stream will start: a new render encodes
    that stretch first when it can (a mix change of cached stems).

    Returns ``(render, created)``. A unique constraint on (revision, settings_hash) makes concurrent
    identical requests create one row and one task. The task is enqueued after commit.
    """
    if not user.is_authenticated:
        raise PermissionDenied("log in to request renders")
    if not selectors.track_is_visible(track=revision.track, user=user):
        raise Http404("no such revision")
    variant = render_settings_normalise(revision=revision, settings=settings, user=user)
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
                listen_from=max(0.0, float(listen_from)),
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
    now = timezone.now()
    with transaction.atomic():
        render = _lock_render(render_id)
        if render is None or render.status in (RenderStatus.DONE, RenderStatus.FAILED):
            return None
        last_sign_of_life = render.heartbeat_at or render.started_at
        if (
            render.status == RenderStatus.RENDERING
            and render.task_id
            and render.task_id != task_id
            and last_sign_of_life is not None
            and last_sign_of_life > now - _heartbeat_timeout()
        ):
            return None  # a duplicate message while another (live) worker is on it
        render.attempts += 1
        if render.attempts > max_attempts:
            _render_set_failed(render=render, reason=_interrupted_reason(render.attempts - 1))
            return None
        render.status = RenderStatus.RENDERING
        render.task_id = task_id
        render.started_at = now
        render.heartbeat_at = now
        render.progress = 0.0
        render.error = ""
        render.save(
            update_fields=["attempts", "status", "task_id", "started_at", "heartbeat_at", "progress", "error"]
        )
    return render


def render_stems_enqueue(*, render_id: int) -> None:
    """Ask for per-part stems in the background; best effort (a later mix change just renders)."""
    from tracks.tasks import render_stems_prepare

    try:
        render_stems_prepare.apply_async(args=(render_id,), retry=False)
    except BROKER_ERRORS as exc:
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


def _heartbeat_timeout() -> timedelta:
    """A rendering render silent for this long lost its worker (RENDER_HEARTBEAT_TIMEOUT_S)."""
    return timedelta(seconds=float(django_settings.RENDER_HEARTBEAT_TIMEOUT_S))


# One sweep looks at most at this many renders per rule, and at most at this many broker messages.
SWEEP_BATCH = 200
BROKER_SCAN_MAX = 20_000
BROKER_SCAN_CHUNK = 1_000


def _broker_holds(task_ids: set[str]) -> set[str] | None:
    """Of ``task_ids``, those whose message the broker still holds; None when it cannot tell.

    With the Redis transport a message waits in the list named after its queue (one list per
    priority step) until a worker takes it, then sits in the ``unacked`` hash until the worker
    acknowledges it (after the task, for late-acked renders). The lists are read before the hash: a
    message moves from the first to the second, so it is seen in one of them. A task id is a UUID,
    so finding it in a message's raw JSON is enough. At most BROKER_SCAN_MAX messages are read; a
    broker read only in part, or not at all, cannot tell.
    """
    from backtrack.celery import app
    from tracks.tasks import render_run

    if not task_ids:
        return set()
    queue = app.amqp.router.route({}, render_run.name)["queue"].name
    missing = {task_id: task_id.encode() for task_id in task_ids}
    budget = BROKER_SCAN_MAX
    try:
        with app.connection_for_read() as conn:
            if conn.transport.driver_type != "redis":
                return None
            channel: Any = conn.default_channel
            with channel.conn_or_acquire() as client:
                for key in dict.fromkeys(channel._q_for_pri(queue, pri) for pri in channel.priority_steps):
                    start = 0
                    while missing:
                        if budget <= 0:
                            return None
                        chunk = client.lrange(key, start, start + BROKER_SCAN_CHUNK - 1)
                        _drop_found(missing, chunk)
                        budget -= len(chunk)
                        start += len(chunk)
                        if len(chunk) < BROKER_SCAN_CHUNK:
                            break
                cursor = 0
                while missing:
                    if budget <= 0:
                        return None
                    cursor, entries = client.hscan(channel.unacked_key, cursor, count=BROKER_SCAN_CHUNK)
                    _drop_found(missing, entries.values())
                    budget -= max(len(entries), 1)
                    if cursor == 0:
                        break
    except BROKER_ERRORS as exc:
        logger.warning("could not read the broker's queue: %s", exc)
        return None
    return task_ids - set(missing)


def _drop_found(missing: dict[str, bytes], messages: Any) -> None:
    for raw in messages:
        data = raw if isinstance(raw, bytes) else str(raw).encode()
        for task_id in [task_id for task_id, needle in missing.items() if needle in data]:
            del missing[task_id]


def render_requeue_stale() -> int:
    """The sweeper (beat runs it every RENDER_SWEEP_INTERVAL_S): re-enqueue renders that were lost.

    - rendering, with no heartbeat for RENDER_HEARTBEAT_TIMEOUT_S: its worker died (a render writes
      a heartbeat every RENDER_HEARTBEAT_S while it runs, whatever its progress);
    - queued and never enqueued (the broker was down at request time), after RENDER_LOST_GRACE_S;
    - queued, enqueued more than RENDER_LOST_GRACE_S ago, and its message is in neither the queue
      nor the unacked hash (Redis restarted empty). When the broker cannot tell (not Redis, a
      backlog past BROKER_SCAN_MAX, no task id), after the broker's visibility timeout instead.
    At most SWEEP_BATCH renders per rule and sweep, oldest first. The attempt counter still bounds
    how often one render runs, and a duplicate message of a render that is alive after all does not
    run it twice (the claim skips it while the heartbeat is fresh).
    """
    now = timezone.now()
    grace = timedelta(seconds=float(django_settings.RENDER_LOST_GRACE_S))
    silent_since = now - _heartbeat_timeout()
    hard_limit = int(django_settings.CELERY_TASK_TIME_LIMIT)
    visibility = timedelta(
        seconds=int(django_settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", hard_limit * 4))
    )
    dead = Q(status=RenderStatus.RENDERING) & (
        Q(heartbeat_at__lt=silent_since) | Q(heartbeat_at__isnull=True, started_at__lt=silent_since)
    )
    dead_ids = list(
        Render.objects.filter(dead).order_by("started_at").values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    never_sent = list(
        Render.objects.filter(
            status=RenderStatus.QUEUED, enqueued_at__isnull=True, created_at__lt=now - grace
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    sent = list(
        Render.objects.filter(status=RenderStatus.QUEUED, enqueued_at__lt=now - grace)
        .order_by("enqueued_at")
        .values_list("pk", "task_id", "enqueued_at")[:SWEEP_BATCH]
    )
    held = _broker_holds({task_id for _, task_id, _ in sent if task_id})

    def is_lost(task_id: str, enqueued_at: datetime) -> bool:
        if held is not None and task_id:
            return task_id not in held
        return enqueued_at < now - visibility  # the broker cannot tell: wait as long as Redis would

    lost = [
        (pk, task_id) for pk, task_id, enqueued_at in sent if enqueued_at and is_lost(task_id, enqueued_at)
    ]

    requeued = 0
    for render_id in dead_ids:
        # Only if it is still silent: a heartbeat or the end of the render since the query wins.
        if not Render.objects.filter(dead, pk=render_id).update(status=RenderStatus.QUEUED):
            continue
        logger.warning("render %s: its worker is silent (no heartbeat); re-queued", render_id)
        if not _requeue(render_id):
            return requeued
        requeued += 1
    for render_id in never_sent:
        if not Render.objects.filter(
            pk=render_id, status=RenderStatus.QUEUED, enqueued_at__isnull=True
        ).exists():
            continue
        if not _requeue(render_id):
            return requeued
        requeued += 1
    for render_id, task_id in lost:
        # Only if it still waits for the same message: a worker may have taken it since.
        if not Render.objects.filter(pk=render_id, status=RenderStatus.QUEUED, task_id=task_id).exists():
            continue
        logger.warning("render %s: the broker lost its message %s; re-queued", render_id, task_id or "?")
        if not _requeue(render_id):
            return requeued
        requeued += 1
    return requeued


def _requeue(render_id: int) -> bool:
    try:
        render_enqueue(render_id=render_id)
    except RenderQueueUnavailable:
        return False  # the broker is still down; the next sweep tries again
    return True
