"""Shared plumbing of the engine's management commands: one-line errors and the SoundFont default."""

import sys
from pathlib import Path
from typing import NoReturn

from django.conf import settings

SOUNDFONT_CANDIDATES = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
)


def default_soundfont() -> str:
    """settings.SOUNDFONT_PATH (from the environment), else the first Debian SoundFont installed."""
    configured = getattr(settings, "SOUNDFONT_PATH", None)
    if configured:
        return str(configured)
    for candidate in SOUNDFONT_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    return SOUNDFONT_CANDIDATES[0]


def fail(reason: str) -> NoReturn:
    """Exactly one ``error: <reason>`` line on stderr and a non-zero exit, never a traceback."""
    text = " ".join(str(reason).split())
    sys.stderr.write(f"error: {text}\n")
    sys.stderr.flush()
    raise SystemExit(1)


def sound_soundfont(slug: str) -> str:
    """The SoundFont of the installed sound set ``slug`` ("" for none); an unknown slug fails."""
    if not slug:
        return ""
    sets = getattr(settings, "SOUND_SETS", {})
    if slug not in sets:
        fail(f"sound {slug!r} is not installed; choose one of {', '.join(sorted(sets))}")
    return str(sets[slug]["path"])
