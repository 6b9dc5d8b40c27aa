"""Stems that travel: a worker that built a stem set shares it through the media storage, and a
worker that lacks it fetches it instead of synthesizing again.

A stem set is stored as one plain tar under ``stems/<revision>/<set>-<SoundFont>.tar``, ``<set>``
naming what decides its samples (``stem_archive_name``; see
``tracks.engine.stem_cache`` for why plain: float32 audio barely compresses, and compressing costs
more than synthesis). Fetching is best effort: any trouble is logged and the render synthesizes.

Whether to fetch is priced per render (``stems_fetch_is_cheaper``): the archive's size over the fetch
throughput this worker process measured, against the song's length times its audible parts over the
synthesis speed it measured. Per-part stems are large (a 6-minute 13-part song is ~1.7 GB of float32),
so on a slow link a remix synthesizes faster than it fetches.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import threading
import time
from pathlib import Path

from django.conf import settings as django_settings
from django.core.files import File
from django.core.files.storage import default_storage

from tracks.engine import VariantSettings
from tracks.engine.arrangement import Arrangement
from tracks.engine.render import effective_part_gains
from tracks.engine.stem_cache import (
    stem_set_complete,
    stem_set_directory,
    stem_set_name,
    stem_set_pack,
    stem_set_unpack,
)
from tracks.models import Render, Revision
from tracks.services.sections import engine_use_sections
from tracks.services.sounds import sound_path
from tracks.services.storage import revision_arrangement_load

logger = logging.getLogger(__name__)

STEMS_PREFIX = "stems"

# Synthesis speeds this process assumes before it has measured its own, in part-seconds of audio
# per second (2-core dev machine, TimGM6mb, Dec 2026). A render synthesizes its audible parts in a
# few groups: 845 (6-minute 13-part song), 1179 (5-minute 18-part), 320 (3-minute 3-part) for whole
# renders. A stem build synthesizes every part alone, each with its own reverb and chorus: ~60.
# The fetch throughput assumed before any fetch is a setting (RENDER_STEMS_FETCH_MB_PER_S): it is
# the deployment's storage link, which no code can guess.
DEFAULT_RENDER_PART_S_PER_S = 800.0
DEFAULT_BUILD_PART_S_PER_S = 60.0
RATE_WEIGHT = 0.3  # weight of the newest measurement in the running means: recent work counts most


def stems_fetch_is_cheaper(
    *,
    archive_bytes: float,
    fetch_bytes_per_s: float,
    audio_s: float,
    parts: float,
    synth_audio_s_per_s: float,
) -> bool:
    """True when fetching a stem set of ``archive_bytes`` is estimated to take less time than
    synthesizing ``parts`` audible parts of ``audio_s`` seconds (see ``stems_estimates``)."""
    fetch_s, synth_s = stems_estimates(
        archive_bytes=archive_bytes,
        fetch_bytes_per_s=fetch_bytes_per_s,
        audio_s=audio_s,
        parts=parts,
        synth_audio_s_per_s=synth_audio_s_per_s,
    )
    return fetch_s < synth_s


def stems_estimates(
    *,
    archive_bytes: float,
    fetch_bytes_per_s: float,
    audio_s: float,
    parts: float,
    synth_audio_s_per_s: float,
) -> tuple[float, float]:
    """Estimated seconds to fetch (download and unpack) and to synthesize instead."""
    fetch_s = max(archive_bytes, 0) / max(fetch_bytes_per_s, 1e-9)
    synth_s = max(audio_s, 0.0) * max(parts, 0) / max(synth_audio_s_per_s, 1e-9)
    return fetch_s, synth_s


class _Rate:
    """An exponentially weighted mean of measured rates (amount per second), thread-safe: renders
    and setlist exports run in several threads of one worker process."""

    def __init__(self) -> None:
        self._mean: float | None = None
        self._lock = threading.Lock()

    def observe(self, *, amount: float, seconds: float) -> None:
        if amount <= 0 or seconds <= 0:
            return
        rate = amount / seconds
        with self._lock:
            self._mean = rate if self._mean is None else (1 - RATE_WEIGHT) * self._mean + RATE_WEIGHT * rate

    def value(self, *, default: float) -> float:
        with self._lock:
            return default if self._mean is None else self._mean

    def reset(self) -> None:
        with self._lock:
            self._mean = None


_fetch_rate = _Rate()  # bytes per second, download and unpack
_render_rate = _Rate()  # part-seconds of audio per second, a render without stems
_build_rate = _Rate()  # part-seconds of audio per second, a stem build (every part alone)


def stems_rates() -> dict[str, float]:
    """This process's speeds: fetch bytes per second, and part-seconds of audio synthesized per second
    by a render (``render``) and by a stem build (``build``)."""
    return {
        "fetch": _fetch_rate.value(default=django_settings.RENDER_STEMS_FETCH_MB_PER_S * 1e6),
        "render": _render_rate.value(default=DEFAULT_RENDER_PART_S_PER_S),
        "build": _build_rate.value(default=DEFAULT_BUILD_PART_S_PER_S),
    }


def stems_rates_reset() -> None:
    """Forget every measurement (back to the defaults); for tests."""
    for rate in (_fetch_rate, _render_rate, _build_rate):
        rate.reset()


def stems_fetch_observe(*, archive_bytes: int, seconds: float) -> None:
    """A fetch of ``archive_bytes`` (download and unpack) took ``seconds``."""
    _fetch_rate.observe(amount=archive_bytes, seconds=seconds)


def stems_synthesis_observe(*, audio_s: float, parts: int, seconds: float, build: bool = False) -> None:
    """A render (or, with ``build``, a stem build) synthesized ``parts`` parts of ``audio_s``
    seconds in ``seconds``."""
    (_build_rate if build else _render_rate).observe(amount=audio_s * parts, seconds=seconds)


def stems_synthesis_size(
    *, arrangement: Arrangement, variant: VariantSettings, build: bool = False
) -> tuple[float, int]:
    """The song's length at the variant's tempo and the parts synthesizing it takes: the audible
    ones (every one for a stem build) and the click."""
    gains = effective_part_gains(arrangement, variant)
    parts = len(gains) if build else sum(1 for gain in gains if gain != 0.0)
    return arrangement.end_s / variant.tempo, parts + int(variant.click)


def stems_local_dir(*, revision_id: int) -> Path:
    """This worker's stem folder for a revision (``render_execute`` renders from it)."""
    return Path(django_settings.RENDER_CACHE_DIR) / "stems" / str(revision_id)


def _soundfont_tag(soundfont: str) -> str:
    # Stems are only valid for the SoundFont they were synthesized with: name it by file name and size
    # (the same package on every machine), not by path or mtime, which differ between machines.
    path = Path(soundfont)
    return hashlib.sha256(f"{path.name}:{path.stat().st_size}".encode()).hexdigest()[:12]


def stem_archive_name(
    *, revision_id: int, arrangement: Arrangement, variant: VariantSettings, soundfont: str
) -> str:
    """Where a stem set lives in storage: named by what decides its samples (FluidSynth, its effects,
    the sections), so a set synthesized by another engine version or for other sections never serves."""
    name = stem_set_name(arrangement, variant)
    return f"{STEMS_PREFIX}/{revision_id}/{name}-{_soundfont_tag(soundfont)}.tar"


def _local_set(
    *, revision_id: int, arrangement: Arrangement, variant: VariantSettings, soundfont: str
) -> Path:
    return stem_set_directory(
        arrangement, variant, soundfont=soundfont, stem_dir=stems_local_dir(revision_id=revision_id)
    )


def _tmp_dir() -> Path:
    tmp = Path(django_settings.RENDER_CACHE_DIR) / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    return tmp


def stems_share(
    *, revision_id: int, arrangement: Arrangement, variant: VariantSettings, soundfont: str
) -> bool:
    """Upload this worker's stem set for (revision, stem key, SoundFont) unless storage has it;
    True if uploaded."""
    if not django_settings.RENDER_SHARE_STEMS:
        return False
    directory = _local_set(
        revision_id=revision_id, arrangement=arrangement, variant=variant, soundfont=soundfont
    )
    name = stem_archive_name(
        revision_id=revision_id, arrangement=arrangement, variant=variant, soundfont=soundfont
    )
    if not stem_set_complete(directory) or default_storage.exists(name):
        return False
    with tempfile.NamedTemporaryFile(dir=_tmp_dir(), suffix=".tar") as handle:
        stem_set_pack(directory, handle.name)
        handle.seek(0)
        try:
            default_storage.save(name, File(handle, name=Path(name).name))
        except Exception:
            logger.warning("could not share the stems of revision %s", revision_id, exc_info=True)
            return False
    return True


def stems_fetch(*, render: Render, build: bool = False) -> bool:
    """Bring a render's stem set from storage when this worker lacks it and fetching is estimated
    to be faster than synthesizing instead: what the render needs, or with ``build`` (the stems
    job) every part alone. True if fetched.

    Best effort, never raises: without the stems the render synthesizes what it needs.
    """
    if not django_settings.RENDER_SHARE_STEMS:
        return False
    try:
        revision: Revision = render.revision
        variant = VariantSettings.from_dict(render.settings)
        if variant.format == "midi":
            return False  # a MIDI file synthesizes nothing
        soundfont = sound_path(slug=variant.sound)
        # One listing first: most renders find no set for their sound, and then skip loading the song.
        try:
            _, stored_sets = default_storage.listdir(f"{STEMS_PREFIX}/{revision.pk}")
        except (FileNotFoundError, NotADirectoryError):
            return False
        if not any(file_name.endswith(f"-{_soundfont_tag(soundfont)}.tar") for file_name in stored_sets):
            return False
        arrangement = revision_arrangement_load(revision=revision)
        # The producer's sections, as the render will use them: the set of an arranged variant or
        # one with dynamics is named by them, so a fetch by the analysis' would land unused.
        engine_use_sections(arrangement=arrangement, revision=revision)
        name = stem_archive_name(
            revision_id=revision.pk, arrangement=arrangement, variant=variant, soundfont=soundfont
        )
        if Path(name).name not in stored_sets:
            return False
        directory = _local_set(
            revision_id=revision.pk, arrangement=arrangement, variant=variant, soundfont=soundfont
        )
        if stem_set_complete(directory):
            return False
        archive_bytes = default_storage.size(name)
        audio_s, parts = stems_synthesis_size(arrangement=arrangement, variant=variant, build=build)
        rates = stems_rates()
        priced = {
            "archive_bytes": archive_bytes,
            "fetch_bytes_per_s": rates["fetch"],
            "audio_s": audio_s,
            "parts": parts,
            "synth_audio_s_per_s": rates["build" if build else "render"],
        }
        fetch_s, synth_s = stems_estimates(**priced)
        cheaper = stems_fetch_is_cheaper(**priced)
        logger.info(
            "render %s: %s",
            render.pk,
            f"fetching stems (est. {fetch_s:.1f} s) rather than synthesizing (est. {synth_s:.1f} s)"
            if cheaper
            else f"synthesizing (est. {synth_s:.1f} s) rather than fetching stems (est. {fetch_s:.1f} s)",
        )
        if not cheaper:
            return False
        started = time.monotonic()
        with tempfile.NamedTemporaryFile(dir=_tmp_dir(), suffix=".tar") as handle:
            bucket = getattr(default_storage, "bucket", None)
            if bucket is not None:
                # S3: straight to disk in parallel parts (django-storages' open() would buffer the
                # whole set, hundreds of MB, in memory).
                bucket.download_fileobj(name, handle)
            else:
                with default_storage.open(name, "rb") as stored:
                    while chunk := stored.read(4 * 2**20):
                        handle.write(chunk)
            handle.flush()
            fetched = stem_set_unpack(handle.name, directory)
        stems_fetch_observe(archive_bytes=archive_bytes, seconds=time.monotonic() - started)
        if fetched:
            logger.info("render %s: fetched stems %s from storage", render.pk, name)
        return fetched
    except Exception:
        logger.warning("render %s: could not fetch its stems; it will synthesize", render.pk, exc_info=True)
        return False


def stems_storage_prune(*, budget_bytes: int, busy_revisions: set[int]) -> dict[str, int]:
    """Keep the stem sets in storage under the budget, oldest first; sets of deleted revisions go at
    once, sets of revisions with queued or rendering renders stay."""
    report = {"stored_stems_deleted": 0, "stored_stem_bytes_freed": 0}
    try:
        revision_dirs, _ = default_storage.listdir(STEMS_PREFIX)
    except (FileNotFoundError, NotADirectoryError):
        return report
    live = {str(pk) for pk in Revision.objects.values_list("pk", flat=True)}
    busy = {str(pk) for pk in busy_revisions}
    entries: list[tuple[float, int, str]] = []
    total = 0
    for revision_dir in revision_dirs:
        _, files = default_storage.listdir(f"{STEMS_PREFIX}/{revision_dir}")
        for file_name in files:
            name = f"{STEMS_PREFIX}/{revision_dir}/{file_name}"
            size = default_storage.size(name)
            if revision_dir not in live:
                default_storage.delete(name)
                report["stored_stems_deleted"] += 1
                report["stored_stem_bytes_freed"] += size
                continue
            total += size
            if revision_dir not in busy:
                entries.append((default_storage.get_modified_time(name).timestamp(), size, name))
    for _, size, name in sorted(entries):
        if total <= budget_bytes:
            break
        default_storage.delete(name)
        total -= size
        report["stored_stems_deleted"] += 1
        report["stored_stem_bytes_freed"] += size
    return report
