"""The producer's correction of a revision's guide melody.

The analysis picks the melody part from the music; the track's producer can name another part (or
none). The choice is stored in the revision's analysis, so key suggestions, the mixer's "Melody" tag
and anything built on the parts' roles use it; what the analysis had chosen stays beside it
(``melody_detected``). A new revision starts again from its own analysis.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from performers.models import User
from tracks import rules
from tracks.engine import InvalidArrangement, melody_analysis
from tracks.models import Revision
from tracks.services.storage import revision_arrangement_load


def revision_melody_set(*, user: User, revision: Revision, part: int | None) -> Revision:
    """Make ``part`` (a part index, or None for "no melody") the revision's melody part."""
    if not rules.may_change_track(user, revision.track):
        raise PermissionDenied("only the track's producer chooses the melody part")
    try:
        arrangement = revision_arrangement_load(revision=revision)
        melody = melody_analysis(arrangement, part)
    except (ValueError, InvalidArrangement) as exc:
        raise ValidationError({"part": [str(exc)]}) from exc
    roles = {p.index: p.family_role for p in arrangement.parts}

    with transaction.atomic():
        locked = Revision.objects.select_for_update().get(pk=revision.pk)
        analysis: dict[str, Any] = dict(locked.analysis)
        analysis.setdefault(
            "melody_detected",
            {"part": analysis.get("melody_part"), "confidence": analysis.get("melody_confidence")},
        )
        analysis.update(melody)
        analysis["melody_source"] = "producer"
        parts = []
        for entry in analysis.get("parts", []):
            index = int(entry["index"])
            role = "lead" if index == part else roles.get(index, entry.get("role"))
            parts.append({**entry, "role": role})
        analysis["parts"] = parts
        locked.analysis = analysis
        locked.save(update_fields=["analysis"])
    revision.analysis = locked.analysis
    return revision
