"""Dependency probes shared by the system checks and the /healthz endpoint."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection


@dataclass(frozen=True)
class Probe:
    ok: bool
    detail: str


def probe_ffmpeg() -> Probe:
    path = shutil.which(settings.FFMPEG_PATH)
    if path is None:
        return Probe(False, f"{settings.FFMPEG_PATH} was not found (FFMPEG_PATH; Debian package: ffmpeg)")
    return Probe(True, path)


def probe_fluidsynth() -> Probe:
    try:
        # Through the engine, which loads libfluidsynth quietly (pyfluidsynth prints under CI).
        import tracks.engine.synth  # noqa: F401
    except (ImportError, OSError) as exc:
        return Probe(
            False, f"the FluidSynth library could not be loaded (Debian package: libfluidsynth3): {exc}"
        )
    return Probe(True, "libfluidsynth loaded")


def probe_soundfont() -> Probe:
    path = Path(settings.SOUNDFONT_PATH)
    if not path.is_file():
        return Probe(
            False,
            f"SOUNDFONT_PATH points at {path}, which does not exist "
            "(install fluid-soundfont-gm or timgm6mb-soundfont, or set SOUNDFONT_PATH)",
        )
    with path.open("rb") as handle:
        header = handle.read(12)
    if header[:4] != b"RIFF" or header[8:12] != b"sfbk":
        return Probe(False, f"SOUNDFONT_PATH points at {path}, which is not a SoundFont 2 file")
    return Probe(True, str(path))


def probe_database() -> Probe:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return Probe(False, f"database unreachable (DATABASE_URL): {exc}")
    return Probe(True, connection.vendor)


def probe_redis() -> Probe:
    import redis

    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
    except Exception as exc:
        return Probe(False, f"Redis unreachable (REDIS_URL): {exc}")
    return Probe(True, "PONG")


def probe_all() -> dict[str, Probe]:
    """Every dependency a web process or a worker needs, by name."""
    return {
        "database": probe_database(),
        "redis": probe_redis(),
        "fluidsynth": probe_fluidsynth(),
        "soundfont": probe_soundfont(),
        "ffmpeg": probe_ffmpeg(),
    }
