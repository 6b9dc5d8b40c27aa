"""The sections strip and arrangement builder of the track page."""

from __future__ import annotations

from typing import Any

from django import template

from tracks.models import Revision, Track
from tracks.services.sections import revision_bars, revision_sections

register = template.Library()


@register.inclusion_tag("tracks/_sections.html", takes_context=True)
def track_sections(context: dict[str, Any], track: Track, revision: Revision | None) -> dict[str, Any]:
    """Coloured section bands (click: add to the arrangement, or play from there while listening),
    a loop button per section, the arrangement builder with its length, saved arrangements."""
    request = context.get("request")
    user = getattr(request, "user", None)
    sections = revision_sections(revision=revision) if revision is not None else []
    names = list(dict.fromkeys(str(s["name"]) for s in sections))
    shown = [
        {
            **s,
            "bar_count": int(s["end_bar"]) - int(s["start_bar"]) + 1,
            # Sections of one name share a colour.
            "hue": (names.index(str(s["name"])) * 137) % 360,
        }
        for s in sections
    ]
    return {
        "track": track,
        "revision": revision,
        "sections": shown,
        "data": {
            "track": track.pk,
            "revision": revision.pk if revision is not None else None,
            "bars": revision_bars(revision=revision) if revision is not None else 0,
            "sections": sections,
        },
        "signed_in": bool(user is not None and user.is_authenticated),
    }
