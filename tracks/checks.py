"""System checks: refuse to start when the renderer's dependencies are missing."""

from __future__ import annotations

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
