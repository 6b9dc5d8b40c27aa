"""Dynamics per section on a revision: checking the names a render asks for, and what it plays.

Section levels name the revision's sections (the producer's corrections when there are some) or the
bar ranges of the render's arrangement. ``"build"`` is chosen by the engine from the music itself, so
what it chose is worked out the way the render works it out (the file, its sections, the
arrangement) and remembered per process: the same revision and settings always choose the same.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from django.core.exceptions import ValidationError

from tracks.engine import EngineError, InvalidSettings, VariantSettings, arranged_song
from tracks.engine.arrange import parse_arrangement
from tracks.engine.dynamics import check_section_names, dynamics_summary, levels_summary, parse_dynamics
from tracks.models import Render, Revision
from tracks.services.errors import TransientRenderError
from tracks.services.sections import engine_use_sections, revision_sections
from tracks.services.storage import revision_arrangement_load


def dynamics_check(*, revision: Revision, variant: VariantSettings) -> None:
    """Refuse (ValidationError naming the setting) levels for sections the revision does not have."""
    names = [str(section["name"]) for section in revision_sections(revision=revision)]
    names += [
        f"{spec.first_bar}-{spec.last_bar}"
        for spec in parse_arrangement(list(variant.arrangement))
        if spec.name is None
    ]
    try:
        check_section_names(variant.dynamics, names)
    except InvalidSettings as exc:
        raise ValidationError(str(exc)) from exc


def render_dynamics(*, render: Render) -> dict[str, Any] | None:
    """What the render's dynamics play: ``{method, summary, sections: [{index, name, gain_db}]}``
    for ``"build"`` (the levels it chose), ``{method: "sections", summary}`` for levels asked by
    name, None when it plays the song as written."""
    setting = parse_dynamics((render.settings or {}).get("dynamics"))
    if not setting:
        return None
    if isinstance(setting, dict):
        return {"method": "sections", "summary": levels_summary(setting)}
    revision = render.revision
    arrangement_items = tuple((render.settings or {}).get("arrangement") or ())
    return _build_choice(
        revision.pk,
        str(revision.midi.name),
        json.dumps(revision.sections or [], sort_keys=True),
        arrangement_items,
    )


@lru_cache(maxsize=256)
def _build_choice(
    revision_id: int, midi_name: str, sections: str, arrangement_items: tuple[str, ...]
) -> dict[str, Any] | None:
    """The engine's ``"build"`` choice for a revision (its file, sections and arrangement as keys)."""
    revision = Revision.objects.get(pk=revision_id)
    try:
        arrangement = revision_arrangement_load(revision=revision)
        engine_use_sections(arrangement=arrangement, revision=revision)
        arranged = arranged_song(arrangement, list(arrangement_items))
        return dynamics_summary(arranged, VariantSettings(dynamics="build")) or None
    except (EngineError, TransientRenderError):
        return None  # the render itself says why; the page just cannot tell what it chose
