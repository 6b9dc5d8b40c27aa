"""Writes for tracks, revisions, renders, comments and notifications.

Services decide; views validate shapes and tasks hand off. Every function is keyword-only and raises
``ValidationError`` (bad input), ``PermissionDenied`` (not allowed), ``Http404`` (not visible),
``RenderQueueUnavailable`` (the broker did not take a task) or ``RenderLimitReached`` (too many active
renders) so that the API and the pages can show one reason a person understands.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.core.mail import send_mail
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Max, Q, Sum
from django.http import Http404
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError

from performers.models import Genre, User
from performers.services import chosen_key_remember
from tracks import selectors
from tracks.engine import (
    EngineError,
    InvalidArrangement,
    InvalidSettings,
    Timeline,
    VariantSettings,
    load_arrangement,
    prepare_stems,
    render_variant,
)
from tracks.models import (
    ACTIVE_RENDER_STATUSES,
    Comment,
    Notification,
    NotificationKind,
    Render,
    RenderStatus,
    Revision,
    Track,
)

logger = logging.getLogger(__name__)

TITLE_MAX = 200
TEXT_MAX = 4000
COMMENT_MAX = 5000
# An identical request for a render whose enqueue never succeeded re-enqueues it, but not within the
# first seconds, when the original request may still be about to enqueue it.
ENQUEUE_GRACE = timedelta(seconds=15)
PROGRESS_WRITE_INTERVAL_S = 0.5


class RenderQueueUnavailable(Exception):  # noqa: N818 (name fixed by the domain contract)
    """The broker (Redis) did not take the task; the render row stays queued for the sweeper."""

    def __init__(self, *, render_id: int) -> None:
        self.render_id = render_id
        super().__init__(
            "the render queue is unavailable right now; your render is saved "
            f"(id {render_id}) and will start when the queue is back"
        )


class RenderLimitReached(Exception):  # noqa: N818 (named like RenderQueueUnavailable)
    """The user already has as many active renders as allowed."""


class TransientRenderError(Exception):
    """Storage or database trouble that a later attempt may not meet (the task retries these)."""


# --- tracks and revisions ----------------------------------------------------------------------


def _read_upload(midi: UploadedFile | None, errors: dict[str, list[str]]) -> tuple[bytes, Any] | None:
    """Let the engine validate the upload; its reason goes in ``errors["midi"]``.

    A large upload is on disk already: the engine is given its path, so a 100 MB file is refused by
    its size without being read into memory.
    """
    if midi is None:
        errors["midi"] = ["a MIDI file is required"]
        return None
    limit = int(django_settings.MIDI_MAX_BYTES)
    temporary_path = getattr(midi, "temporary_file_path", None)
    try:
        if callable(temporary_path):
            arrangement = load_arrangement(temporary_path(), max_bytes=limit)
        else:
            midi.seek(0)
            arrangement = load_arrangement(midi.read(limit + 1), max_bytes=limit)
    except InvalidArrangement as exc:
        errors["midi"] = [str(exc)]
        return None
    return arrangement.data, arrangement


def _store_revision(
    *,
    track: Track,
    number: int,
    data: bytes,
    arrangement: Any,
    user: User,
    notes: str,
    original_filename: str,
    stored: list[str],
) -> Revision:
    digest = hashlib.sha256(data).hexdigest()
    name = default_storage.save(f"arrangements/{track.pk}/r{number}-{digest[:12]}.mid", ContentFile(data))
    stored.append(name)
    return Revision.objects.create(
        track=track,
        number=number,
        midi=name,
        original_filename=(original_filename or "")[:255],
        midi_sha256=digest,
        notes=notes,
        analysis=arrangement.analysis,
        created_by=user,
    )


def _discard_files(names: Iterable[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            logger.exception("could not delete %s after a failed upload", name)


def _clean_text(value: str | None, field: str, limit: int, errors: dict[str, list[str]]) -> str:
    text = (value or "").strip()
    if len(text) > limit:
        errors[field] = [f"at most {limit} characters"]
    return text


def track_create_check(*, user: User) -> None:
    """PermissionDenied unless ``user`` may upload tracks (checked before the upload is validated)."""
    if not user.is_authenticated or not user.is_producer:
        raise PermissionDenied("only producers upload tracks")


def track_change_check(*, user: User, track: Track, action: str = "changes it") -> None:
    """PermissionDenied unless ``user`` is the track's producer (who edits it and uploads revisions)."""
    if not user.is_authenticated or track.producer_id != user.pk:
        raise PermissionDenied(f"only the track's producer {action}")


def track_create(
    *,
    producer: User,
    title: str,
    genre: str,
    midi: UploadedFile,
    description: str = "",
    is_public: bool = True,
) -> Track:
    """A new track with revision 1; a refused file leaves no row and no stored file behind."""
    track_create_check(user=producer)
    errors: dict[str, list[str]] = {}
    title = _clean_text(title, "title", TITLE_MAX, errors)
    if not title and "title" not in errors:
        errors["title"] = ["a title is required"]
    description = _clean_text(description, "description", TEXT_MAX, errors)
    genre_obj = Genre.objects.filter(slug=genre).first() if genre else None
    if genre_obj is None:
        errors["genre"] = [f"unknown genre {genre!r}" if genre else "a genre is required"]
    upload = _read_upload(midi, errors)
    if errors or upload is None or genre_obj is None:
        raise ValidationError(errors)
    data, arrangement = upload

    stored: list[str] = []
    try:
        with transaction.atomic():
            track = Track.objects.create(
                producer=producer, title=title, genre=genre_obj, description=description, is_public=is_public
            )
            revision = _store_revision(
                track=track,
                number=1,
                data=data,
                arrangement=arrangement,
                user=producer,
                notes="",
                original_filename=getattr(midi, "name", "") or "",
                stored=stored,
            )
            track.current_revision = revision
            track.save(update_fields=["current_revision", "updated_at"])
    except BaseException:
        _discard_files(stored)
        raise
    return track


def track_update(
    *,
    user: User,
    track: Track,
    title: str | None = None,
    genre: str | None = None,
    description: str | None = None,
    is_public: bool | None = None,
) -> Track:
    track_change_check(user=user, track=track, action="edits it")
    errors: dict[str, list[str]] = {}
    fields = ["updated_at"]
    if title is not None:
        track.title = _clean_text(title, "title", TITLE_MAX, errors)
        if not track.title and "title" not in errors:
            errors["title"] = ["a title is required"]
        fields.append("title")
    if description is not None:
        track.description = _clean_text(description, "description", TEXT_MAX, errors)
        fields.append("description")
    if genre is not None:
        genre_obj = Genre.objects.filter(slug=genre).first()
        if genre_obj is None:
            errors["genre"] = [f"unknown genre {genre!r}"]
        else:
            track.genre = genre_obj
            fields.append("genre")
    if is_public is not None:
        track.is_public = is_public
        fields.append("is_public")
    if errors:
        raise ValidationError(errors)
    track.save(update_fields=fields)
    return track


def revision_create(*, track: Track, user: User, midi: UploadedFile, notes: str = "") -> Revision:
    """Revision N+1 of a track, by its producer only; earlier revisions and renders stay."""
    track_change_check(user=user, track=track, action="uploads revisions")
    errors: dict[str, list[str]] = {}
    notes = _clean_text(notes, "notes", TEXT_MAX, errors)
    upload = _read_upload(midi, errors)
    if errors or upload is None:
        raise ValidationError(errors)
    data, arrangement = upload

    stored: list[str] = []
    try:
        with transaction.atomic():
            # The lock serialises concurrent uploads of one track, so numbers never collide. Writing
            # first takes the lock at once on every database (see _lock_render).
            Track.objects.filter(pk=track.pk).update(updated_at=timezone.now())
            locked = Track.objects.select_for_update().get(pk=track.pk)
            number = (locked.revisions.aggregate(top=Max("number"))["top"] or 0) + 1
            revision = _store_revision(
                track=locked,
                number=number,
                data=data,
                arrangement=arrangement,
                user=user,
                notes=notes,
                original_filename=getattr(midi, "name", "") or "",
                stored=stored,
            )
            locked.current_revision = revision
            locked.save(update_fields=["current_revision", "updated_at"])
    except BaseException:
        _discard_files(stored)
        raise
    track.current_revision = revision
    return revision


# --- renders -----------------------------------------------------------------------------------


def render_settings_normalise(*, revision: Revision, settings: dict[str, Any]) -> VariantSettings:
    """Validated, canonical settings (the engine decides the ranges); ValidationError with its reason."""
    try:
        variant = VariantSettings.from_dict(settings)
        variant.validate(part_count=len(revision.parts))
        return variant.normalised()
    except InvalidSettings as exc:
        raise ValidationError(str(exc)) from exc


def _check_active_limit(user: User) -> None:
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
        _check_active_limit(user)
        with transaction.atomic():
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

    _check_active_limit(user)
    try:
        with transaction.atomic():
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


def _progress_writer(render_id: int) -> Callable[[float], None]:
    last = [0.0]

    def write(fraction: float) -> None:
        now = time.monotonic()
        if now - last[0] < PROGRESS_WRITE_INTERVAL_S:
            return
        last[0] = now
        value = round(min(max(float(fraction), 0.0), 0.99), 3)
        # Called from the engine's render threads, which keep their own connection between renders:
        # progress is only a hint, so a dropped connection is closed (to reconnect next time), not
        # allowed to fail the render.
        try:
            Render.objects.filter(pk=render_id, status=RenderStatus.RENDERING).update(progress=value)
        except DatabaseError:
            logger.warning("could not record progress of render %s", render_id, exc_info=True)
            connection.close()

    return write


def render_storage_name(*, render: Render) -> str:
    """Named from what made it, so a re-run overwrites instead of duplicating."""
    return f"renders/{render.revision_id}/{render.settings_hash}.mp3"


def _read_midi(revision: Revision) -> bytes:
    try:
        with default_storage.open(str(revision.midi.name), "rb") as handle:
            return handle.read()
    except FileNotFoundError as exc:
        raise EngineError("the arrangement file is missing from storage") from exc
    except OSError as exc:
        raise TransientRenderError(f"could not read the arrangement from storage: {exc}") from exc


def _save_audio(name: str, path: Path) -> tuple[str, int]:
    try:
        if default_storage.exists(name):
            default_storage.delete(name)
        with path.open("rb") as handle:
            saved = default_storage.save(name, File(handle, name=Path(name).name))
        return saved, path.stat().st_size
    except OSError as exc:
        raise TransientRenderError(f"could not store the rendered audio: {exc}") from exc


def render_execute(*, render: Render) -> Render:
    """Render a claimed render: engine -> temporary file -> storage -> row.

    Engine errors fail the render with the engine's reason; storage and database trouble raise
    TransientRenderError for the task to retry. Stems are cached per revision on this worker, so a
    mix-only change of an earlier variant skips synthesis.
    """
    revision = render.revision
    track = revision.track
    cache_dir = Path(django_settings.RENDER_CACHE_DIR)
    tmp_dir = cache_dir / "tmp"
    stem_dir = cache_dir / "stems" / str(revision.pk)
    out_path = tmp_dir / f"{render.settings_hash}-{render.pk}.mp3"
    try:
        tmp_dir.mkdir(parents=True, exist_ok=True)
        stem_dir.mkdir(parents=True, exist_ok=True)
        data = _read_midi(revision)
        arrangement = load_arrangement(data, max_bytes=max(int(django_settings.MIDI_MAX_BYTES), len(data)))
        variant = VariantSettings.from_dict(render.settings)
        result = render_variant(
            arrangement,
            variant,
            out_path=out_path,
            soundfont=django_settings.SOUNDFONT_PATH,
            stem_dir=stem_dir,
            tags={"title": track.title, "artist": "Backtrack", "album": track.title},
            progress=_progress_writer(render.pk),
        )
        name, size = _save_audio(render_storage_name(render=render), out_path)
    except EngineError as exc:
        return render_fail(render_id=render.pk, reason=str(exc) or "the render failed")
    except (OperationalError, InterfaceError) as exc:
        raise TransientRenderError(f"the database was unavailable: {exc}") from exc
    finally:
        out_path.unlink(missing_ok=True)

    now = timezone.now()
    try:
        with transaction.atomic():
            Render.objects.filter(pk=render.pk).update(
                status=RenderStatus.DONE,
                progress=1.0,
                error="",
                audio=name,
                audio_size=size,
                duration_s=round(float(result.duration_s), 3),
                key=result.key or "",
                tempo_bpm=round(float(result.tempo_bpm), 2) if result.tempo_bpm else None,
                peaks=[round(float(value), 4) for value in result.peaks],
                stems_reused=bool(result.stems_reused),
                finished_at=now,
                last_accessed_at=now,
            )
            render.refresh_from_db()
            _notify_requesters(render=render, kind=NotificationKind.RENDER_DONE)
            if not result.stems_reused:
                transaction.on_commit(partial(render_stems_enqueue, render_id=render.pk))
    except DatabaseError as exc:
        raise TransientRenderError(f"the database was unavailable: {exc}") from exc
    return render


def render_stems_enqueue(*, render_id: int) -> None:
    """Ask for per-part stems in the background; best effort (a later mix change just renders)."""
    from tracks.tasks import render_stems_prepare

    try:
        render_stems_prepare.apply_async(args=(render_id,), retry=False)
    except (KombuOperationalError, RedisError, OSError) as exc:
        logger.warning("could not enqueue stems for render %s: %s", render_id, exc)


class StemsDeferred(Exception):  # noqa: N818 (a signal to the task, not an error)
    """Renders are waiting: stems are a background nicety and must not delay them."""


def render_stems_prepare(*, render_id: int) -> bool:
    """Build this worker's per-part stems for a finished render's key and tempo.

    A first render synthesizes parts in a few groups (fastest for one mix); these stems let every
    later mix change (gain, mute, solo) of the same revision, key and tempo skip synthesis. Returns
    False when there was nothing to do (render gone or not done, stems already cached); raises
    StemsDeferred while renders are queued, so the task steps back and tries later.
    """
    if Render.objects.filter(status=RenderStatus.QUEUED).exists():
        raise StemsDeferred("renders are queued")
    render = Render.objects.select_related("revision").filter(pk=render_id, status=RenderStatus.DONE).first()
    if render is None:
        return False
    data = _read_midi(render.revision)
    arrangement = load_arrangement(data, max_bytes=max(int(django_settings.MIDI_MAX_BYTES), len(data)))
    stem_dir = Path(django_settings.RENDER_CACHE_DIR) / "stems" / str(render.revision_id)
    return bool(
        prepare_stems(
            arrangement,
            VariantSettings.from_dict(render.settings),
            soundfont=django_settings.SOUNDFONT_PATH,
            stem_dir=stem_dir,
        )
    )


def _render_set_failed(*, render: Render, reason: str) -> None:
    render.status = RenderStatus.FAILED
    render.error = reason[:2000]
    render.finished_at = timezone.now()
    render.save(update_fields=["status", "error", "finished_at", "attempts"])
    _notify_requesters(render=render, kind=NotificationKind.RENDER_FAILED)


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
    """Keep stored renders and this worker's stems under the budget, least recently used first.

    Queued and rendering renders, and anything used within ``min_idle``, are never touched.
    """
    budget = int(
        budget_bytes if budget_bytes is not None else django_settings.RENDER_STORAGE_BUDGET_MB * 2**20
    )
    now = timezone.now()
    idle_before = now - min_idle
    report = {"renders_deleted": 0, "bytes_freed": 0, "stems_deleted": 0, "stem_bytes_freed": 0}

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
                _discard_files([audio_name])
            total -= size
            report["renders_deleted"] += 1
            report["bytes_freed"] += size

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


# --- comments ----------------------------------------------------------------------------------


def _clock(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def _position_from_seconds(
    *, revision: Revision, render: Render | None, at_seconds: float
) -> tuple[int, float]:
    timeline = Timeline.from_analysis(revision.analysis)
    tempo_ratio = render.tempo if render is not None else 1.0
    count_in = render.count_in if render is not None else 0
    music_start = timeline.seconds_at(1, 1.0, tempo_ratio=tempo_ratio, count_in_bars=count_in)
    length = music_start + float(revision.analysis.get("duration_s", 0.0)) / tempo_ratio
    if render is not None and render.duration_s:
        length = max(length, render.duration_s)
    if at_seconds < 0:
        raise ValidationError({"at_seconds": ["a moment cannot be before the start of the render"]})
    if at_seconds > length + 0.5:
        raise ValidationError(
            {"at_seconds": [f"that moment is past the end of the render ({_clock(length)})"]}
        )
    bar, beat = timeline.position_at(at_seconds, tempo_ratio=tempo_ratio, count_in_bars=count_in)
    return int(bar), round(float(beat), 3)


def comment_post(
    *,
    user: User,
    track: Track,
    body: str,
    parent: Comment | None = None,
    revision: Revision | None = None,
    render: Render | None = None,
    at_seconds: float | None = None,
) -> Comment:
    """A comment or reply, optionally about a revision or render and pinned to a moment of it."""
    if not user.is_authenticated:
        raise PermissionDenied("log in to comment")
    if not selectors.track_is_visible(track=track, user=user):
        raise Http404("no such track")
    errors: dict[str, list[str]] = {}
    body = _clean_text(body, "body", COMMENT_MAX, errors)
    if not body and "body" not in errors:
        errors["body"] = ["a comment cannot be empty"]
    if parent is not None:
        if parent.track_id != track.pk:
            errors["parent"] = ["that comment belongs to another track"]
        elif parent.parent_id is not None:
            parent = parent.parent  # threads are one level deep: a reply to a reply joins the thread
    if render is not None and render.revision.track_id != track.pk:
        errors["render"] = ["that render belongs to another track"]
    if revision is not None and revision.track_id != track.pk:
        errors["revision"] = ["that revision belongs to another track"]
    if not errors and render is not None and revision is not None and render.revision_id != revision.pk:
        errors["revision"] = ["the render was made from another revision"]
    if errors:
        raise ValidationError(errors)
    if render is not None and revision is None:
        revision = render.revision

    at_bar: int | None = None
    at_beat: float | None = None
    if at_seconds is not None:
        if revision is None:
            revision = track.current_revision
        if revision is None:
            raise ValidationError({"at_seconds": ["this track has no revision to pin a moment to"]})
        at_bar, at_beat = _position_from_seconds(
            revision=revision, render=render, at_seconds=float(at_seconds)
        )

    with transaction.atomic():
        comment = Comment.objects.create(
            track=track,
            author=user,
            parent=parent,
            body=body,
            revision=revision,
            render=render,
            at_bar=at_bar,
            at_beat=at_beat,
        )
        who = _display_name(user)
        quote = _excerpt(body)
        recipients: list[tuple[User, NotificationKind, str]] = []
        if parent is not None and parent.author_id != user.pk:
            text = f"{who} replied to your comment on “{track.title}”: “{quote}”"
            recipients.append((parent.author, NotificationKind.REPLY, text))
        if track.producer_id != user.pk and (parent is None or parent.author_id != track.producer_id):
            text = f"{who} commented on “{track.title}”: “{quote}”"
            recipients.append((track.producer, NotificationKind.COMMENT, text))
        for recipient, kind, text in recipients:
            notification_create(recipient=recipient, kind=kind, text=text, url=_comment_url(comment))
    return comment


def _excerpt(text: str, limit: int = 80) -> str:
    """The start of a comment on one line, cut at a word with an ellipsis when it is long."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    return flat[:limit].rsplit(" ", 1)[0].rstrip(",.;:") + "…"


def _display_name(user: User) -> str:
    profile = getattr(user, "profile", None)
    return (profile.display_name if profile is not None else "") or user.username


def _comment_url(comment: Comment) -> str:
    return f"{comment.track.get_absolute_url()}#comment-{comment.pk}"


def _may_moderate(*, user: User, comment: Comment) -> bool:
    return user.is_authenticated and user.pk in (comment.author_id, comment.track.producer_id)


def comment_resolve(
    *, user: User, comment: Comment, resolved: bool = True, revision: Revision | None = None
) -> Comment:
    """Mark a thread resolved (optionally "in revision N") or open again: producer or author only."""
    if not _may_moderate(user=user, comment=comment):
        raise PermissionDenied("only the track's producer or the comment's author can resolve it")
    if comment.parent_id is not None:
        raise ValidationError("replies are resolved with their thread: resolve the first comment")
    if revision is not None and revision.track_id != comment.track_id:
        raise ValidationError({"revision": ["that revision belongs to another track"]})
    if revision is not None and not resolved:
        raise ValidationError({"revision": ["a reopened comment is not resolved in a revision"]})
    with transaction.atomic():
        changed = comment.resolved != resolved or comment.resolved_in_revision_id != (
            revision.pk if revision else None
        )
        comment.resolved = resolved
        comment.resolved_by = user if resolved else None
        comment.resolved_at = timezone.now() if resolved else None
        comment.resolved_in_revision = revision if resolved else None
        comment.save(update_fields=["resolved", "resolved_by", "resolved_at", "resolved_in_revision"])
        if changed and comment.author_id != user.pk:
            who = _display_name(user)
            if resolved:
                where = f" in revision {revision.number}" if revision is not None else ""
                text = f"{who} resolved your comment on “{comment.track.title}”{where}"
                kind = NotificationKind.RESOLVED
            else:
                text = f"{who} reopened your comment on “{comment.track.title}”"
                kind = NotificationKind.REOPENED
            notification_create(recipient=comment.author, kind=kind, text=text, url=_comment_url(comment))
    return comment


def comment_update(*, user: User, comment: Comment, body: str) -> Comment:
    if not user.is_authenticated or comment.author_id != user.pk:
        raise PermissionDenied("only the author edits a comment")
    if comment.is_deleted:
        raise ValidationError("a deleted comment cannot be edited")
    errors: dict[str, list[str]] = {}
    text = _clean_text(body, "body", COMMENT_MAX, errors)
    if not text and "body" not in errors:
        errors["body"] = ["a comment cannot be empty"]
    if errors:
        raise ValidationError(errors)
    comment.body = text
    comment.edited_at = timezone.now()
    comment.save(update_fields=["body", "edited_at"])
    return comment


def comment_delete(*, user: User, comment: Comment) -> None:
    """The author removes a comment; a thread others replied to keeps its place without the text."""
    if not user.is_authenticated or comment.author_id != user.pk:
        raise PermissionDenied("only the author deletes a comment")
    with transaction.atomic():
        if comment.replies.exists():
            comment.body = ""
            comment.is_deleted = True
            comment.edited_at = timezone.now()
            comment.save(update_fields=["body", "is_deleted", "edited_at"])
        else:
            parent = comment.parent
            comment.delete()
            if parent is not None and parent.is_deleted and not parent.replies.exists():
                parent.delete()


# --- notifications -----------------------------------------------------------------------------


def notification_create(*, recipient: User, kind: str, text: str, url: str = "") -> Notification:
    """Store an in-app notification and email it after commit (when the user has an address)."""
    notification = Notification.objects.create(recipient=recipient, kind=kind, text=text[:500], url=url[:500])
    if recipient.email:
        transaction.on_commit(partial(_send_notification_email, notification_id=notification.pk))
    return notification


def _send_notification_email(*, notification_id: int) -> None:
    notification = Notification.objects.select_related("recipient").filter(pk=notification_id).first()
    if notification is None:
        return
    link = f"{django_settings.SITE_URL.rstrip('/')}{notification.url}" if notification.url else ""
    body = f"{notification.text}\n\n{link}\n" if link else f"{notification.text}\n"
    try:
        send_mail(
            subject=f"Backtrack: {notification.text}"[:150],
            message=body,
            from_email=None,
            recipient_list=[notification.recipient.email],
        )
    except Exception:
        # Mail trouble must never undo the action that caused the notification.
        logger.exception("could not email notification %s", notification_id)


def _notify_requesters(*, render: Render, kind: NotificationKind) -> None:
    track = render.revision.track
    key = selectors.render_key(render=render)
    if kind == NotificationKind.RENDER_DONE:
        text = (
            f"Your render of “{track.title}” ({key}) is ready"
            if key
            else f"Your render of “{track.title}” is ready"
        )
    else:
        text = f"Your render of “{track.title}” failed: {render.error}"
    for recipient in render.requesters.all():
        notification_create(recipient=recipient, kind=kind, text=text, url=track.get_absolute_url())


def notification_mark_read(*, user: User, ids: list[int] | None = None) -> int:
    notifications = Notification.objects.filter(recipient=user, read=False)
    if ids is not None:
        notifications = notifications.filter(pk__in=ids)
    return notifications.update(read=True)
