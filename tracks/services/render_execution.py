"""Executing a claimed render on a worker: engine, temporary file, storage, row.

Stems are cached per revision in this worker's ``RENDER_CACHE_DIR``, so a mix-only change of an
earlier variant skips synthesis; ``render_stems_prepare`` builds them in the background.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

from django.conf import settings as django_settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from tracks.engine import (
    FORMAT_SUFFIXES,
    EngineError,
    VariantSettings,
    prepare_stems,
    render_variant,
)
from tracks.engine.stream import profile_for_stems, stream_variant
from tracks.engine_config import engine_config
from tracks.models import NotificationKind, Render, RenderStatus, Revision
from tracks.services.errors import TransientRenderError
from tracks.services.listening import (
    ListenPublisher,
    listen_finish,
    revision_loudness_profile,
    revision_loudness_record,
)
from tracks.services.notifications import render_requesters_notify
from tracks.services.renders import render_fail, render_stems_enqueue
from tracks.services.sections import engine_use_sections
from tracks.services.sounds import sound_path
from tracks.services.stems import (
    stems_fetch,
    stems_local_dir,
    stems_share,
    stems_synthesis_observe,
    stems_synthesis_size,
)
from tracks.services.storage import audio_store, revision_arrangement_load, storage_discard

logger = logging.getLogger(__name__)

PROGRESS_WRITE_INTERVAL_S = 0.5


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


class RenderHeartbeat(threading.Thread):
    """Writes ``Render.heartbeat_at`` every RENDER_HEARTBEAT_S while a render runs.

    The sweeper re-queues a rendering render whose heartbeat is older than RENDER_HEARTBEAT_TIMEOUT_S
    (its worker died). The heartbeat is independent of progress (a long synthesis step or an upload
    reports none), only touches the row while this claim owns it (status rendering, same task id),
    and never fails the render: a database error is logged and the next beat tries again.
    """

    def __init__(self, *, render_id: int, task_id: str, interval_s: float) -> None:
        super().__init__(name=f"render-{render_id}-heartbeat", daemon=True)
        self.render_id = render_id
        self.task_id = task_id
        self.interval_s = interval_s
        self.beats = 0
        self._stopped = threading.Event()

    def beat(self) -> None:
        Render.objects.filter(pk=self.render_id, status=RenderStatus.RENDERING, task_id=self.task_id).update(
            heartbeat_at=timezone.now()
        )
        self.beats += 1

    def run(self) -> None:
        try:
            while not self._stopped.wait(self.interval_s):
                try:
                    self.beat()
                except Exception:
                    logger.warning(
                        "could not record the heartbeat of render %s", self.render_id, exc_info=True
                    )
                    connection.close()  # reconnect at the next beat
        finally:
            connection.close()  # this thread's own connection

    def stop(self) -> None:
        """No beat after this returns, unless one is blocked in the database (its update is then a
        no-op: the render is no longer rendering under this claim)."""
        self._stopped.set()
        self.join(timeout=1.0)


@contextlib.contextmanager
def render_heartbeat(*, render: Render) -> Iterator[RenderHeartbeat]:
    """A heartbeat for the duration of the block (see RenderHeartbeat)."""
    heartbeat = RenderHeartbeat(
        render_id=render.pk,
        task_id=render.task_id,
        interval_s=float(django_settings.RENDER_HEARTBEAT_S),
    )
    try:
        heartbeat.start()
    except RuntimeError:  # no thread to be had: render anyway (the sweeper may re-queue it)
        logger.warning("render %s runs without a heartbeat", render.pk, exc_info=True)
        yield heartbeat
        return
    try:
        yield heartbeat
    finally:
        heartbeat.stop()


# An absolute path with at least two parts ("/usr/share/sounds/…", "/srv/cache/tmp/x.mp3").
_SERVER_PATH = re.compile(r"(?<![\w.])/(?:[^\s/'\"()]+/)+[^\s'\"()]*")


def engine_failure_reason(exc: EngineError, *, context: str) -> str:
    """The engine's reason for the user (it is written for people), without this server's paths.

    The engine names files and tools in some reasons (a missing SoundFont, an ffmpeg error); users
    see "a server file" instead, the log keeps the whole message.
    """
    reason = " ".join(str(exc).split()) or "the render failed"
    plain = _SERVER_PATH.sub("a server file", reason)
    if plain != reason:
        logger.warning("%s failed: %s", context, reason)
    return plain


def render_storage_name(*, render: Render) -> str:
    """Named from what made it, so a re-run overwrites instead of duplicating; the suffix is the format's."""
    return f"renders/{render.revision_id}/{render.settings_hash}{render_suffix(render=render)}"


def render_suffix(*, render: Render) -> str:
    """``.mp3``, ``.wav``, ``.flac``, ``.zip`` (stems) or ``.mid``, from the render's ``format``."""
    return FORMAT_SUFFIXES.get(str(render.settings.get("format", "mp3")), ".mp3")


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
    out_path = tmp_dir / f"{render.settings_hash}-{render.pk}{render_suffix(render=render)}"
    try:
        tmp_dir.mkdir(parents=True, exist_ok=True)
        stem_dir.mkdir(parents=True, exist_ok=True)
        arrangement = revision_arrangement_load(revision=revision)
        engine_use_sections(arrangement=arrangement, revision=revision)
        variant = VariantSettings.from_dict(render.settings)
        soundfont = sound_path(slug=variant.sound)
        tags = {"title": track.title, "artist": "Backtrack", "album": track.title}
        progress = _progress_writer(render.pk)
        publisher = ListenPublisher(render=render)
        publisher.start()
        started = time.monotonic()
        # Streamed when it can be (listeners hear it while it renders), else rendered whole.
        result = stream_variant(
            arrangement,
            variant,
            out_path=out_path,
            soundfont=soundfont,
            stem_dir=stem_dir,
            profile=revision_loudness_profile(revision=revision, sound=variant.sound),
            publish=publisher,
            start_s=float(render.listen_from or 0.0),
            tags=tags,
            progress=progress,
            config=engine_config(),
        )
        if result is None:
            result = render_variant(
                arrangement,
                variant,
                out_path=out_path,
                soundfont=soundfont,
                config=engine_config(),
                stem_dir=stem_dir,
                tags=tags,
                progress=progress,
            )
        if not result.stems_reused and variant.format != "midi":
            # How fast this worker synthesizes: what fetching stems is priced against.
            audio_s, parts = stems_synthesis_size(arrangement=arrangement, variant=variant)
            stems_synthesis_observe(audio_s=audio_s, parts=parts, seconds=time.monotonic() - started)
        name, size = audio_store(name=render_storage_name(render=render), path=out_path)
    except EngineError as exc:
        return render_fail(
            render_id=render.pk, reason=engine_failure_reason(exc, context=f"render {render.pk}")
        )
    except (OperationalError, InterfaceError) as exc:
        logger.warning("render %s: the database was unavailable: %s", render.pk, exc)
        raise TransientRenderError("the database was unavailable") from exc
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
            render_requesters_notify(render=render, kind=NotificationKind.RENDER_DONE)
            listen_finish(render=render, status=RenderStatus.DONE)
            if not result.stems_reused:
                transaction.on_commit(partial(render_stems_enqueue, render_id=render.pk))
    except DatabaseError as exc:
        # The row does not point at the file, so nothing would ever serve or prune it.
        storage_discard(names=[name])
        logger.warning("render %s: the database was unavailable: %s", render.pk, exc)
        raise TransientRenderError("the database was unavailable") from exc
    return render


def render_stems_prepare(*, render_id: int) -> bool:
    """Build per-part stems for a finished render's key and tempo, and share them through storage.

    A first render synthesizes parts in a few groups (fastest for one mix); these stems let every
    later mix change (gain, mute, solo) of the same revision, key and tempo skip synthesis, on any
    worker (tracks/services/stems.py). Low priority because of its queue (``stems``, read last).
    Returns False when there was nothing to do (render gone or not done, stems already cached).
    """
    render = Render.objects.select_related("revision").filter(pk=render_id, status=RenderStatus.DONE).first()
    if render is None:
        return False
    arrangement = revision_arrangement_load(revision=render.revision)
    engine_use_sections(arrangement=arrangement, revision=render.revision)
    variant = VariantSettings.from_dict(render.settings)
    soundfont = sound_path(slug=str(render.settings.get("sound", "")))
    # Another worker may have shared this set: building it again synthesizes every part alone.
    stems_fetch(render=render, build=True)
    started = time.monotonic()
    built = prepare_stems(
        arrangement,
        variant,
        soundfont=soundfont,
        config=engine_config(),
        stem_dir=stems_local_dir(revision_id=render.revision_id),
    )
    if built:
        audio_s, parts = stems_synthesis_size(arrangement=arrangement, variant=variant, build=True)
        stems_synthesis_observe(audio_s=audio_s, parts=parts, seconds=time.monotonic() - started, build=True)
    stems_share(revision_id=render.revision_id, arrangement=arrangement, variant=variant, soundfont=soundfont)
    profile = profile_for_stems(
        arrangement, variant, soundfont=soundfont, stem_dir=stems_local_dir(revision_id=render.revision_id)
    )
    if profile is not None:
        revision_loudness_record(
            revision_id=render.revision_id,
            sound=variant.sound,
            profile=profile,
            plain=variant_is_plain(variant),
        )
    return bool(built)


def revision_loudness_measure(*, revision_id: int) -> bool:
    """Per-part stems of a revision as written, in its track's sound, and the loudness profile they
    give (see tracks/services/listening.py); False when there was nothing to do."""
    revision = Revision.objects.select_related("track").filter(pk=revision_id).first()
    if revision is None:
        return False
    sound = revision.track.default_sound if revision.track.default_sound in django_settings.SOUND_SETS else ""
    if revision_loudness_profile(revision=revision, sound=sound) is not None:
        return False
    arrangement = revision_arrangement_load(revision=revision)
    engine_use_sections(arrangement=arrangement, revision=revision)
    variant = VariantSettings(sound=sound)
    soundfont = sound_path(slug=sound)
    stem_dir = stems_local_dir(revision_id=revision_id)
    prepare_stems(arrangement, variant, soundfont=soundfont, config=engine_config(), stem_dir=stem_dir)
    stems_share(revision_id=revision_id, arrangement=arrangement, variant=variant, soundfont=soundfont)
    profile = profile_for_stems(arrangement, variant, soundfont=soundfont, stem_dir=stem_dir)
    if profile is None:
        return False
    return revision_loudness_record(revision_id=revision_id, sound=sound, profile=profile, plain=True)


def variant_is_plain(variant: VariantSettings) -> bool:
    """The song as written (key, tempo, form): the best base for predicting other variants' loudness."""
    return variant.transpose == 0 and variant.tempo == 1.0 and not variant.arrangement
