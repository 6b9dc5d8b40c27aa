"""System checks: refuse to start when the renderer's dependencies are missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.checks import CheckMessage, Error, register

from backtrack import health


@register("backtrack")
def render_dependencies_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for check_id, probe, hint in (
        ("backtrack.E001", health.probe_ffmpeg(), "apt-get install ffmpeg"),
        ("backtrack.E002", health.probe_fluidsynth(), "apt-get install libfluidsynth3 fluidsynth"),
        (
            "backtrack.E003",
            health.probe_soundfont(),
            "apt-get install fluid-soundfont-gm, or set SOUNDFONT_PATH",
        ),
    ):
        if not probe.ok:
            errors.append(Error(probe.detail, hint=hint, id=check_id))
    return errors


@register("backtrack")
def sound_sets_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """A configured sound set whose SoundFont is missing stops start-up, never a render."""
    from django.conf import settings

    return [
        Error(
            f"sound set {slug!r} ({entry['name']}) points at {entry['path']}, which does not exist",
            hint="install its Debian package (see the Makefile's RUN_DEBS) or fix SOUND_SETS",
            id="backtrack.E010",
        )
        for slug, entry in settings.SOUND_SETS.items()
        if not Path(entry["path"]).is_file()
    ]
