"""Stems that travel: a worker that built a stem set shares it through the media storage, and a
worker that lacks it fetches it instead of synthesizing again.

A stem set is stored as one plain tar under ``stems/<revision>/<stem key>-<SoundFont>.tar`` (see
``tracks.engine.stem_cache`` for why plain: float32 audio barely compresses, and compressing costs
more than synthesis). Fetching is best effort: any trouble is logged and the render synthesizes.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from pathlib import Path

from django.conf import settings as django_settings
from django.core.files import File
from django.core.files.storage import default_storage

from tracks.engine import VariantSettings
from tracks.engine.arrangement import Arrangement
from tracks.engine.stem_cache import stem_set_complete, stem_set_directory, stem_set_pack, stem_set_unpack
from tracks.models import Render, Revision
from tracks.services.sounds import sound_path
from tracks.services.storage import revision_arrangement_load

logger = logging.getLogger(__name__)

STEMS_PREFIX = "stems"


def stems_local_dir(*, revision_id: int) -> Path:
    """This worker's stem folder for a revision (``render_execute`` renders from it)."""
    return Path(django_settings.RENDER_CACHE_DIR) / "stems" / str(revision_id)


def _soundfont_tag(soundfont: str) -> str:
    # Stems are only valid for the SoundFont they were synthesized with: name it by file name and size
    # (the same package on every machine), not by path or mtime, which differ between machines.
    path = Path(soundfont)
    return hashlib.sha256(f"{path.name}:{path.stat().st_size}".encode()).hexdigest()[:12]


def stem_archive_name(*, revision_id: int, variant: VariantSettings, soundfont: str) -> str:
    return f"{STEMS_PREFIX}/{revision_id}/{variant.stem_key()}-{_soundfont_tag(soundfont)}.tar"


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
    name = stem_archive_name(revision_id=revision_id, variant=variant, soundfont=soundfont)
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


def stems_fetch(*, render: Render) -> bool:
    """Before a render: bring its stem set from storage when this worker lacks it; True if fetched.

    Best effort, never raises: without the stems the render synthesizes what it needs.
    """
    if not django_settings.RENDER_SHARE_STEMS:
        return False
    try:
        revision: Revision = render.revision
        variant = VariantSettings.from_dict(render.settings)
        soundfont = sound_path(slug=variant.sound)
        name = stem_archive_name(revision_id=revision.pk, variant=variant, soundfont=soundfont)
        if not default_storage.exists(name):
            return False
        arrangement = revision_arrangement_load(revision=revision)
        directory = _local_set(
            revision_id=revision.pk, arrangement=arrangement, variant=variant, soundfont=soundfont
        )
        if stem_set_complete(directory):
            return False
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
