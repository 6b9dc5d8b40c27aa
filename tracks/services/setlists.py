"""Setlists: songs in order with their variants and gaps, a revocable share link, and exports.

An export renders every available song as an MP3 (a finished render with the same settings is
reused, not rendered again; a song rendered for it becomes that render, so later requests and exports
reuse it in turn), then packs a ZIP of numbered MP3s with an ``.m3u8`` or joins one
continuous MP3 with each song's gap of silence. A song that fails fails the export with its title in
the reason (and its render row keeps the reason), and no export file is stored; a song whose track was
deleted or made private is skipped.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import subprocess
import tempfile
import zipfile
from functools import partial
from pathlib import Path
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone

from performers.models import User
from tracks import selectors
from tracks.engine import EngineError, VariantSettings, render_variant
from tracks.engine_config import engine_config
from tracks.models import (
    Render,
    RenderStatus,
    Setlist,
    SetlistExport,
    SetlistExportStatus,
    SetlistItem,
    Track,
)
from tracks.rules import TITLE_MAX
from tracks.services.errors import TransientRenderError
from tracks.services.render_execution import engine_failure_reason, render_execute, render_heartbeat
from tracks.services.renders import (
    render_claim,
    render_mark_accessed,
    render_release,
    render_settings_normalise,
)
from tracks.services.sections import engine_use_sections
from tracks.services.sounds import sound_path
from tracks.services.stems import stems_fetch
from tracks.services.storage import audio_store, revision_arrangement_load, storage_discard

logger = logging.getLogger(__name__)

SETLIST_MAX_SONGS = 40
SETLIST_MAX_SECONDS = 4 * 3600
GAP_MAX_S = 600.0
EXPORT_FORMATS = ("zip", "continuous")


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("name: give the setlist a name")
    name = " ".join(value.split())
    if len(name) > TITLE_MAX:
        raise ValidationError(f"name: at most {TITLE_MAX} characters")
    return name


def _gap(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= GAP_MAX_S:
        raise ValidationError(f"gap_s must be a number of seconds from 0 to {GAP_MAX_S:g}")
    return round(float(value), 2)


def setlist_create(*, user: User, name: Any) -> Setlist:
    if not user.is_authenticated:
        raise PermissionDenied("log in to make setlists")
    return Setlist.objects.create(owner=user, name=_name(name), share_token=secrets.token_urlsafe(24))


def setlist_update(*, setlist: Setlist, name: Any) -> Setlist:
    setlist.name = _name(name)
    setlist.save(update_fields=["name", "updated_at"])
    return setlist


def setlist_delete(*, setlist: Setlist) -> None:
    names = [str(export.file.name) for export in setlist.exports.all() if export.file]
    setlist.delete()
    storage_discard(names=names)


def setlist_share_renew(*, setlist: Setlist) -> Setlist:
    """A new share link; the old one stops working."""
    setlist.share_token = secrets.token_urlsafe(24)
    setlist.save(update_fields=["share_token", "updated_at"])
    return setlist


def setlist_share_revoke(*, setlist: Setlist) -> Setlist:
    setlist.share_token = ""
    setlist.save(update_fields=["share_token", "updated_at"])
    return setlist


def _item_settings(*, track: Track, settings: Any, user: User) -> dict[str, Any]:
    """Validated settings of a song's variant; a setlist plays MP3s (in either layout)."""
    if settings is None:
        settings = {}
    if not isinstance(settings, dict):
        raise ValidationError("settings must be an object of render settings")
    if settings.get("format", "mp3") != "mp3":
        raise ValidationError("settings: a setlist song is an MP3; leave format out")
    if track.current_revision is None:
        raise ValidationError("this track has no revision yet")
    return render_settings_normalise(revision=track.current_revision, settings=settings, user=user).to_dict()


def _check_limits(*, setlist: Setlist, extra_s: float, adding: int) -> None:
    items = list(setlist.items.all())
    if len(items) + adding > SETLIST_MAX_SONGS:
        raise ValidationError(f"a setlist holds at most {SETLIST_MAX_SONGS} songs")
    total = selectors.setlist_duration_s(setlist=setlist) + extra_s
    if total > SETLIST_MAX_SECONDS:
        raise ValidationError(
            f"a setlist lasts at most {SETLIST_MAX_SECONDS // 3600} hours; this would make it "
            f"{total / 3600:.1f} hours"
        )


@transaction.atomic
def setlist_item_add(
    *, setlist: Setlist, track_id: Any, settings: Any = None, gap_s: Any = 0.0
) -> SetlistItem:
    """Append a song; refused over 40 songs or 4 hours, or for a track the owner may not see."""
    Setlist.objects.select_for_update().filter(pk=setlist.pk).first()  # one change to the order at a time
    owner = setlist.owner
    try:
        track = selectors.track_get(user=owner, track_id=int(track_id))
    except (TypeError, ValueError, Http404):
        raise ValidationError(f"track: there is no track {track_id!r} you can add") from None
    clean = _item_settings(track=track, settings=settings, user=owner)
    gap = _gap(gap_s)
    item = SetlistItem(setlist=setlist, track=track, title=track.title, settings=clean, gap_s=gap)
    duration = selectors.setlist_item_duration_s(item=item, revision=track.current_revision)
    _check_limits(setlist=setlist, extra_s=duration + gap, adding=1)
    item.position = setlist.items.count() + 1
    item.save()
    setlist.save(update_fields=["updated_at"])
    return item


@transaction.atomic
def setlist_item_update(
    *, item: SetlistItem, position: Any = None, gap_s: Any = None, settings: Any = None
) -> SetlistItem:
    """Move a song to ``position`` (1-based; the others shift), change its gap or its variant."""
    setlist = item.setlist
    Setlist.objects.select_for_update().filter(pk=setlist.pk).first()
    if settings is not None:
        if item.track is None:
            raise ValidationError("this song's track was deleted; remove it from the setlist")
        item.settings = _item_settings(track=item.track, settings=settings, user=setlist.owner)
    if gap_s is not None:
        item.gap_s = _gap(gap_s)
    if settings is not None or gap_s is not None:
        item.save(update_fields=["settings", "gap_s"])
        _check_limits(setlist=Setlist.objects.get(pk=setlist.pk), extra_s=0.0, adding=0)
    if position is not None:
        items = list(setlist.items.order_by("position", "id"))
        if isinstance(position, bool) or not isinstance(position, int) or not 1 <= position <= len(items):
            raise ValidationError(f"position must be a whole number from 1 to {len(items)}")
        moving = next(other for other in items if other.pk == item.pk)
        items.remove(moving)
        items.insert(position - 1, moving)
        _renumber(items)
    setlist.save(update_fields=["updated_at"])
    item.refresh_from_db()
    return item


def _renumber(items: list[SetlistItem]) -> None:
    for number, other in enumerate(items, start=1):
        if other.position != number:
            SetlistItem.objects.filter(pk=other.pk).update(position=number)


@transaction.atomic
def setlist_item_delete(*, item: SetlistItem) -> None:
    setlist = item.setlist
    Setlist.objects.select_for_update().filter(pk=setlist.pk).first()
    item.delete()
    _renumber(list(setlist.items.order_by("position", "id")))
    setlist.save(update_fields=["updated_at"])


def setlist_export_request(*, setlist: Setlist, user: User, export_format: Any) -> SetlistExport:
    """Queue an export (the task runs after commit); refused for an unknown format or no song to play."""
    if export_format not in EXPORT_FORMATS:
        raise ValidationError(f"format must be one of {', '.join(EXPORT_FORMATS)}")
    items = list(setlist.items.all())
    if not any(selectors.setlist_item_revision(item=item) for item in items):
        raise ValidationError("this setlist has no song that can be played")
    with transaction.atomic():
        export = SetlistExport.objects.create(
            setlist=setlist, requested_by=user, format=export_format, progress=f"0 of {len(items)} songs"
        )
        transaction.on_commit(partial(setlist_export_enqueue, export_id=export.pk))
    return export


def setlist_export_enqueue(*, export_id: int) -> None:
    from tracks.tasks import setlist_export_run as task  # here: tasks import the services

    try:
        task.apply_async(args=(export_id,), retry=False)
    except Exception as exc:  # the broker is down: say so on the row instead of leaving it queued
        logger.warning("could not enqueue setlist export %s: %s", export_id, exc)
        SetlistExport.objects.filter(pk=export_id, status=SetlistExportStatus.QUEUED).update(
            status=SetlistExportStatus.FAILED, error="the export could not be queued; try again"
        )


class _SongFailedError(Exception):
    pass


def setlist_export_run(*, export_id: int) -> SetlistExport | None:
    """Render the export; None when it is not queued any more (done, failed or taken by another run)."""
    claimed = SetlistExport.objects.filter(pk=export_id, status=SetlistExportStatus.QUEUED).update(
        status=SetlistExportStatus.RENDERING
    )
    if not claimed:
        return None
    export = SetlistExport.objects.select_related("setlist__owner").get(pk=export_id)
    setlist = export.setlist
    items = list(setlist.items.select_related("track__current_revision").order_by("position", "id"))
    songs = [(item, selectors.setlist_item_revision(item=item)) for item in items]
    playable = [(item, revision) for item, revision in songs if revision is not None]
    work = Path(tempfile.mkdtemp(prefix="setlist-export-"))
    try:
        files: list[dict[str, Any]] = []
        for number, (item, revision) in enumerate(playable, start=1):
            _progress(export, f"{number - 1} of {len(playable)} songs")
            files.append(_song(item=item, revision=revision, number=number, work=work, export=export))
        _progress(export, f"{len(playable)} of {len(playable)} songs")
        if export.format == "zip":
            out = work / "setlist.zip"
            _pack_zip(files, out, skipped=[item.title for item, revision in songs if revision is None])
        else:
            out = work / "setlist.mp3"
            _join_continuous(files, out)
        name, size = audio_store(name=f"setlists/{setlist.pk}/export-{export.pk}{out.suffix}", path=out)
    except _SongFailedError as exc:
        return _export_fail(export, str(exc))
    except Exception:
        logger.exception("setlist export %s failed", export_id)
        return _export_fail(export, "the export failed because of an internal error")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    SetlistExport.objects.filter(pk=export.pk).update(
        status=SetlistExportStatus.DONE, file=name, file_size=size, error="", finished_at=timezone.now()
    )
    export.refresh_from_db()
    return export


def _progress(export: SetlistExport, text: str) -> None:
    SetlistExport.objects.filter(pk=export.pk).update(progress=text)


def _export_fail(export: SetlistExport, reason: str) -> SetlistExport:
    SetlistExport.objects.filter(pk=export.pk).update(
        status=SetlistExportStatus.FAILED, error=reason[:500], finished_at=timezone.now()
    )
    export.refresh_from_db()
    return export


def _song(
    *, item: SetlistItem, revision: Any, number: int, work: Path, export: SetlistExport
) -> dict[str, Any]:
    """One song as an MP3 in ``work``: the finished render of its variant, or rendered now.

    A song rendered now is rendered as that variant's render row would be by a worker (created when
    missing, or taken over while still queued), so it is stored and recorded like any render: done,
    requested by nobody (no one's cap), reused by later requests and exports. Only while a worker is
    rendering the variant, or when its render failed or lost its file, is the song rendered here
    without a row.
    """
    try:
        variant = render_settings_normalise(
            revision=revision, settings=item.settings, user=item.setlist.owner
        )
    except ValidationError as exc:
        raise _SongFailedError(f"{item.title}: {' '.join(exc.messages)}") from exc
    path = work / f"song-{number:02d}.mp3"
    render = _render_of(revision=revision, variant=variant)
    if render.status == RenderStatus.QUEUED:
        claimed = render_claim(render_id=render.pk, task_id=f"setlist-export-{export.pk}")
        if claimed is not None:
            render = _render_claimed(item=item, render=claimed)
    if render.status == RenderStatus.DONE and _stored_copy(render=render, path=path):
        key, bpm, duration = render.key, render.tempo_bpm, float(render.duration_s or 0.0)
    else:
        try:
            arrangement = revision_arrangement_load(revision=revision)
            # As a render by a worker would: the producer's sections, the variant's sound set.
            engine_use_sections(arrangement=arrangement, revision=revision)
            result = render_variant(
                arrangement,
                variant,
                out_path=path,
                soundfont=sound_path(slug=variant.sound),
                stem_dir=Path(django_settings.RENDER_CACHE_DIR) / "stems" / str(revision.pk),
                tags={"title": item.title, "artist": "Backtrack"},
                config=engine_config(),
            )
        except EngineError as exc:
            reason = engine_failure_reason(exc, context=f"setlist export song {item.pk}")
            raise _SongFailedError(f"{item.title}: {reason}") from exc
        key, bpm, duration = result.key, result.tempo_bpm, result.duration_s
    return {
        "path": path,
        "title": item.title,
        "duration_s": duration,
        "gap_s": item.gap_s,
        "name": selectors.setlist_song_filename(number=number, title=item.title, key=key, bpm=bpm),
    }


def _render_of(*, revision: Any, variant: VariantSettings) -> Render:
    """The revision's render row of ``variant``; a new queued one (requested by nobody) when missing."""
    settings_hash = variant.cache_key()
    render = Render.objects.filter(revision=revision, settings_hash=settings_hash).first()
    if render is not None:
        return render
    try:
        with transaction.atomic():
            return Render.objects.create(
                revision=revision,
                settings=variant.to_dict(),
                settings_hash=settings_hash,
                stem_key=variant.stem_key(),
                requested_by=None,
            )
    except IntegrityError:
        # An identical request created it meanwhile: one row per revision and settings.
        return Render.objects.get(revision=revision, settings_hash=settings_hash)


def _render_claimed(*, item: SetlistItem, render: Render) -> Render:
    """Execute a render this export claimed, as the render task does; a failure fails the song."""
    try:
        with render_heartbeat(render=render):
            stems_fetch(render=render)
            render = render_execute(render=render)
    except TransientRenderError as exc:
        _release(render)
        raise _SongFailedError(f"{item.title}: {exc}") from exc
    except BaseException:
        _release(render)
        raise
    if render.status == RenderStatus.FAILED:
        raise _SongFailedError(f"{item.title}: {render.error}")
    return render


def _release(render: Render) -> None:
    """Back to the queue (the sweeper gives it to a worker), so the row is not left rendering."""
    try:
        render_release(render_id=render.pk)
    except Exception:
        logger.warning("could not release render %s", render.pk, exc_info=True)


def _stored_copy(*, render: Render, path: Path) -> bool:
    """Copy a finished render's audio to ``path``; False when it is gone from storage."""
    if not render.audio:
        return False
    try:
        with default_storage.open(str(render.audio.name), "rb") as source, path.open("wb") as target:
            shutil.copyfileobj(source, target)
    except OSError:
        return False
    render_mark_accessed(render=render)
    return True


def _pack_zip(files: list[dict[str, Any]], out: Path, *, skipped: list[str]) -> None:
    lines = ["#EXTM3U"]
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for song in files:
            archive.write(song["path"], song["name"])
            lines += [f"#EXTINF:{round(song['duration_s'])},{song['title']}", song["name"]]
        lines += [f"# unavailable: {title}" for title in skipped]
        archive.writestr("setlist.m3u8", "\n".join(lines) + "\n")


def _join_continuous(files: list[dict[str, Any]], out: Path) -> None:
    """One MP3: each song whole, then its gap of silence (decoded, padded and encoded once)."""
    command = [engine_config().ffmpeg, "-nostdin", "-v", "error", "-y"]
    for song in files:
        command += ["-i", str(song["path"])]
    chains = [f"[{index}:a]apad=pad_dur={song['gap_s']:.3f}[s{index}]" for index, song in enumerate(files)]
    joined = "".join(f"[s{index}]" for index in range(len(files)))
    graph = ";".join([*chains, f"{joined}concat=n={len(files)}:v=0:a=1[out]"])
    command += ["-filter_complex", graph, "-map", "[out]", "-c:a", "libmp3lame", "-b:a", "192k", str(out)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise _SongFailedError(f"the songs could not be joined: {exc}") from exc
    if done.returncode != 0 or not out.is_file():
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise _SongFailedError(f"the songs could not be joined: {last}")
