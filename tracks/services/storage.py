"""Files in the media storage (the filesystem or S3): reading arrangements, storing and discarding.

Every failure path removes what it wrote, so a refused upload or a failed render leaves nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from django.conf import settings as django_settings
from django.core.files import File
from django.core.files.storage import default_storage

from tracks.engine import Arrangement, EngineError, load_arrangement
from tracks.models import Revision
from tracks.services.errors import TransientRenderError

logger = logging.getLogger(__name__)


def storage_discard(*, names: Iterable[str]) -> None:
    """Delete stored files, logging (not raising) what cannot be deleted."""
    for name in names:
        try:
            default_storage.delete(name)
        except Exception:
            # Clean-up runs on failure paths: it must never hide the failure it cleans up after.
            logger.exception("could not delete %s from storage", name)


def revision_midi_read(*, revision: Revision) -> bytes:
    """The arrangement's bytes; a missing file is the render's fault, a storage error transient."""
    try:
        with default_storage.open(str(revision.midi.name), "rb") as handle:
            return handle.read()
    except FileNotFoundError as exc:
        raise EngineError("the arrangement file is missing from storage") from exc
    except OSError as exc:
        logger.warning("could not read %s from storage: %s", revision.midi.name, exc)
        raise TransientRenderError("could not read the arrangement from storage") from exc


def revision_arrangement_load(*, revision: Revision) -> Arrangement:
    """The revision's arrangement as the engine plays it: its file, with the empty lead bars its
    analysis recorded as cut (none for revisions analysed before the engine cut them), so the song
    keeps the bars and seconds its stored analysis, sections and comments count in."""
    data = revision_midi_read(revision=revision)
    return load_arrangement(
        data,
        max_bytes=max(int(django_settings.MIDI_MAX_BYTES), len(data)),
        lead_trim_bars=revision_lead_trim_bars(revision=revision),
    )


def revision_lead_trim_bars(*, revision: Revision) -> int:
    """Empty bars the engine cut before the revision's music when it was analysed (0: none, or
    analysed before the engine cut any)."""
    return int((revision.analysis or {}).get("lead_trim_bars") or 0)


def audio_store(*, name: str, path: Path) -> tuple[str, int]:
    """Copy a finished file into storage under ``name``; ``(stored name, size)``.

    On any failure (a full disk, a dropped connection) whatever the storage wrote is removed before
    the error is raised, so no partial file is left for a download to find.
    """
    saved: str | None = None
    try:
        if default_storage.exists(name):
            default_storage.delete(name)
        with path.open("rb") as handle:
            saved = default_storage.save(name, File(handle, name=Path(name).name))
        return saved, path.stat().st_size
    except OSError as exc:
        # The detail (paths, errno) is for the log; the render's reason stays plain.
        logger.warning("could not store %s: %s", name, exc)
        storage_discard(names=[saved or name])
        raise TransientRenderError("could not store the rendered audio") from exc


def audio_open(*, name: str) -> IO[bytes]:
    """A stored render's file, opened for reading (OSError when it is gone)."""
    return default_storage.open(name, "rb")
