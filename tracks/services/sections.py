"""Sections of a revision (the producer's corrections over the analysis) and saved arrangements.

The analysis' sections are the default; a producer's correction is stored on the revision as
``[{name, start_bar}, ...]`` and every reader goes through :func:`revision_sections`, which gives
the full ``{index, name, start_bar, end_bar, start_s, end_s, source}`` list either way.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import Http404

from backtrack.text import clean_line
from tracks import rules, selectors
from tracks.engine import InvalidSettings, Timeline, VariantSettings, arranged_timeline, check_arrangement
from tracks.engine.arrange import parse_arrangement
from tracks.models import Render, RenderStatus, Revision, SavedArrangement, Track
from tracks.services.storage import storage_discard

if TYPE_CHECKING:
    from performers.models import User

SECTION_NAME_MAX = 60
SECTIONS_MAX = 200
ARRANGEMENT_NAME_MAX = 80
SAVED_ARRANGEMENTS_MAX = 50  # per performer and track


def revision_bars(*, revision: Revision) -> int:
    """The revision's bar count (computed for revisions analysed before bars were counted)."""
    analysis = revision.analysis or {}
    bars = analysis.get("bars")
    if isinstance(bars, int) and bars > 0:
        return bars
    duration = float(analysis.get("duration_s") or 0.0)
    if duration <= 0:
        return 0
    bar, _beat = Timeline.from_analysis(analysis).position_at(max(duration - 1e-6, 0.0))
    return max(1, int(bar))


def revision_sections(*, revision: Revision) -> list[dict[str, Any]]:
    """The sections that tile the revision: the producer's correction, else the analysis'."""
    analysis = revision.analysis or {}
    override = revision.sections
    if not override:
        return list(analysis.get("sections") or [])
    bars = revision_bars(revision=revision)
    timeline = Timeline.from_analysis(analysis)
    sections = []
    for index, entry in enumerate(override):
        start_bar = int(entry["start_bar"])
        end_bar = int(override[index + 1]["start_bar"]) - 1 if index + 1 < len(override) else bars
        sections.append(
            {
                "index": index,
                "name": str(entry["name"]),
                "start_bar": start_bar,
                "end_bar": end_bar,
                "start_s": round(timeline.seconds_at(start_bar, 1.0), 3),
                "end_s": round(timeline.seconds_at(end_bar + 1, 1.0), 3),
                "source": "producer",
            }
        )
    return sections


def revision_analysis_with_sections(*, revision: Revision) -> dict[str, Any]:
    """The revision's analysis with its bar count and effective sections (what the engine needs)."""
    return {
        **(revision.analysis or {}),
        "bars": revision_bars(revision=revision),
        "sections": revision_sections(revision=revision),
    }


def _clean_sections(sections: object, bars: int) -> list[dict[str, Any]]:
    if not isinstance(sections, list) or not sections:
        raise ValidationError("sections must be a non-empty list of {name, start_bar}")
    if len(sections) > SECTIONS_MAX:
        raise ValidationError(f"at most {SECTIONS_MAX} sections")
    cleaned: list[dict[str, Any]] = []
    for position, entry in enumerate(sections, start=1):
        if not isinstance(entry, dict) or set(entry) - {"name", "start_bar"}:
            raise ValidationError(f"section {position} must be an object with name and start_bar")
        raw_name = entry.get("name")
        name = clean_line(raw_name) if isinstance(raw_name, str) else ""
        if not name:
            raise ValidationError(f"section {position} needs a name")
        if len(name) > SECTION_NAME_MAX:
            raise ValidationError(
                f"section name {name[:20]!r}... is longer than {SECTION_NAME_MAX} characters"
            )
        start_bar = entry.get("start_bar")
        if not isinstance(start_bar, int) or isinstance(start_bar, bool):
            raise ValidationError(f"start_bar of section {position} must be a whole bar number")
        if position == 1 and start_bar != 1:
            raise ValidationError("the first section must start at bar 1")
        if cleaned and start_bar <= cleaned[-1]["start_bar"]:
            raise ValidationError(
                f"start_bar must increase: section {position} starts at bar {start_bar}, "
                f"not after bar {cleaned[-1]['start_bar']}"
            )
        if start_bar > bars:
            raise ValidationError(f"section {position} starts at bar {start_bar}; the song has {bars} bars")
        cleaned.append({"name": name, "start_bar": start_bar})
    return cleaned


def revision_sections_update(*, user: User, revision: Revision, sections: object) -> Revision:
    """The track's producer corrects the names and boundaries of a revision's sections."""
    if not selectors.track_is_visible(track=revision.track, user=user):
        raise Http404("no such revision")
    if not rules.may_change_track(user, revision.track):
        raise PermissionDenied("only the track's producer corrects its sections")
    cleaned = _clean_sections(sections, revision_bars(revision=revision))
    with transaction.atomic():
        locked = Revision.objects.select_for_update().get(pk=revision.pk)
        changed = locked.sections != cleaned
        locked.sections = cleaned
        locked.save(update_fields=["sections"])
        if changed:
            # Finished arranged renders (and those with dynamics per section) played the old sections;
            # the same names now mean other bars, so they go (a new request renders the new ones).
            # Their files go after the commit.
            stale = Render.objects.filter(
                Q(settings__has_key="arrangement") | Q(settings__has_key="dynamics"),
                revision=locked,
                status__in=[RenderStatus.DONE, RenderStatus.FAILED],
            )
            names = [name for name in stale.values_list("audio", flat=True) if name]
            stale.delete()
            if names:
                transaction.on_commit(partial(storage_discard, names=names))
    revision.sections = cleaned
    return revision


def arrangement_check(*, revision: Revision, variant: VariantSettings) -> None:
    """Refuse (ValidationError with the reason) an arrangement the revision cannot give."""
    if not variant.arrangement:
        return
    analysis = revision_analysis_with_sections(revision=revision)
    try:
        check_arrangement(
            analysis, list(variant.arrangement), tempo=variant.tempo, sections=analysis["sections"]
        )
    except InvalidSettings as exc:
        raise ValidationError(str(exc)) from exc


def render_arranged_timeline(*, revision: Revision, settings: dict[str, Any]) -> Any | None:
    """The ArrangedTimeline of a render's arrangement on its revision (None: not arranged, or its
    items no longer resolve against the revision's sections)."""
    items = (settings or {}).get("arrangement")
    if not items:
        return None
    analysis = revision_analysis_with_sections(revision=revision)
    try:
        return arranged_timeline(analysis, items, sections=analysis["sections"])
    except InvalidSettings:
        return None


def saved_arrangement_list(*, user: User, track: Track) -> list[SavedArrangement]:
    if not user.is_authenticated:
        return []
    return list(SavedArrangement.objects.filter(performer=user, track=track).order_by("name", "id"))


def saved_arrangement_save(
    *, user: User, track: Track, name: object, items: object
) -> tuple[SavedArrangement, bool]:
    """Save (or replace, by name) a performer's named arrangement of ``track``; (row, created)."""
    if not user.is_authenticated:
        raise PermissionDenied("log in to save arrangements")
    if not selectors.track_is_visible(track=track, user=user):
        raise Http404("no such track")
    clean_name = clean_line(name) if isinstance(name, str) else ""
    if not clean_name:
        raise ValidationError({"name": ["give the arrangement a name"]})
    if len(clean_name) > ARRANGEMENT_NAME_MAX:
        raise ValidationError({"name": [f"at most {ARRANGEMENT_NAME_MAX} characters"]})
    try:
        specs = parse_arrangement(items)
    except InvalidSettings as exc:
        raise ValidationError({"items": [str(exc)]}) from exc
    if not specs:
        raise ValidationError({"items": ["an arrangement needs at least one section or bar range"]})
    texts = [spec.text for spec in specs]
    if track.current_revision is not None:
        try:
            arrangement_check(
                revision=track.current_revision, variant=VariantSettings.from_dict({"arrangement": texts})
            )
        except ValidationError as exc:
            raise ValidationError({"items": exc.messages}) from exc
    try:
        with transaction.atomic():
            existing = SavedArrangement.objects.select_for_update().filter(
                performer=user, track=track, name=clean_name
            )
            row = existing.first()
            if row is not None:
                row.items = texts
                row.save(update_fields=["items"])
                return row, False
            if SavedArrangement.objects.filter(performer=user, track=track).count() >= SAVED_ARRANGEMENTS_MAX:
                raise ValidationError(f"at most {SAVED_ARRANGEMENTS_MAX} saved arrangements per track")
            return SavedArrangement.objects.create(
                performer=user, track=track, name=clean_name, items=texts
            ), True
    except IntegrityError:
        row = SavedArrangement.objects.get(performer=user, track=track, name=clean_name)
        row.items = texts
        row.save(update_fields=["items"])
        return row, False


def saved_arrangement_delete(*, user: User, arrangement_id: int) -> None:
    """A performer deletes one of their saved arrangements (others' are not found)."""
    if not user.is_authenticated:
        raise PermissionDenied("log in to delete arrangements")
    deleted, _ = SavedArrangement.objects.filter(pk=arrangement_id, performer=user).delete()
    if not deleted:
        raise Http404("no such arrangement")


def engine_use_sections(*, arrangement: Any, revision: Revision) -> None:
    """Make the engine arrange by the producer's sections when they corrected the analysis'."""
    if revision.sections:
        arrangement.analysis["sections"] = revision_sections(revision=revision)
