"""The render engine's configuration, built from Django settings in one place.

The engine reads no environment variables (it is a library); workers, the management commands and
the system checks all pass it this.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from tracks.engine import EngineConfig


def engine_config() -> EngineConfig:
    """``RENDER_THREADS``, ``RENDER_SLOTS_DIR``, ``FFMPEG_PATH``/``FFPROBE_PATH`` and
    ``RENDER_MAX_SCRATCH_MB`` as the engine's configuration (an unset one keeps the engine's default)."""
    defaults = EngineConfig()
    slot_dir = settings.RENDER_SLOTS_DIR
    scratch_mb = settings.RENDER_MAX_SCRATCH_MB
    return EngineConfig(
        threads=settings.RENDER_THREADS or None,
        slot_dir=Path(slot_dir) if slot_dir else None,
        ffmpeg=settings.FFMPEG_PATH or defaults.ffmpeg,
        ffprobe=settings.FFPROBE_PATH or defaults.ffprobe,
        max_scratch_bytes=int(scratch_mb) * 1_000_000 if scratch_mb else defaults.max_scratch_bytes,
    )
