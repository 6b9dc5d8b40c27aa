"""Reads for tracks, revisions, renders, comments and notifications.

Visibility lives here, once: a public track is seen by everyone, a private one only by its producer;
everything hanging off a track (revisions, renders, comments) follows its track. Invisible objects are
reported as missing (404), never as forbidden, so their existence does not leak.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.db.models import Prefetch, Q, QuerySet
from django.http import Http404

from backtrack.text import clock
from performers.models import User
from tracks.engine import Timeline, note_name, suggest_keys, transpose_key
from tracks.models import Comment, Notification, Render, RenderStatus, Revision, Track

AnyUser = User | AnonymousUser


def track_visible_q(*, user: AnyUser, prefix: str = "") -> Q:
    public = Q(**{f"{prefix}is_public": True})
    if user is not None and user.is_authenticated:
        return public | Q(**{f"{prefix}producer_id": user.pk})
    return public


def track_is_visible(*, track: Track, user: AnyUser) -> bool:
    return track.is_public or (user is not None and user.is_authenticated and track.producer_id == user.pk)


def track_list(*, user: AnyUser, genre: str | None = None, q: str | None = None) -> QuerySet[Track]:
    """Visible tracks, newest first, with what a list row shows fetched in the same query."""
    tracks = Track.objects.filter(track_visible_q(user=user)).select_related(
        "producer__profile", "genre", "current_revision"
    )
    if genre:
        tracks = tracks.filter(genre__slug=genre)
    if q and q.strip():
        term = q.strip()
        tracks = tracks.filter(
            Q(title__icontains=term)
            | Q(description__icontains=term)
            | Q(producer__username__icontains=term)
            | Q(producer__profile__display_name__icontains=term)
        )
    return tracks.order_by("-created_at", "-id")


def track_get(*, user: AnyUser, track_id: int) -> Track:
    track = (
        Track.objects.filter(track_visible_q(user=user), pk=track_id)
        .select_related("producer__profile", "genre", "current_revision")
        .first()
    )
    if track is None:
        raise Http404("no such track")
    return track


def revision_list(*, track: Track) -> QuerySet[Revision]:
    return track.revisions.select_related("created_by").order_by("-number")


def revision_get(*, user: AnyUser, revision_id: int) -> Revision:
    revision = (
        Revision.objects.filter(track_visible_q(user=user, prefix="track__"), pk=revision_id)
        .select_related("track__producer", "track__current_revision")
        .first()
    )
    if revision is None:
        raise Http404("no such revision")
    return revision


def key_suggestions(
    *, track: Track, revision: Revision | None = None, vocal_low: int | None, vocal_high: int | None
) -> dict[str, Any]:
    """Every transposition in -12..+12 ranked for a vocal range (see ``tracks.engine.suggest_keys``)."""
    revision = revision or track.current_revision
    if revision is None:
        raise ValidationError("this track has no revision yet")
    if vocal_low is None or vocal_high is None:
        raise ValidationError(
            "no vocal range: set your lowest and highest note in your profile (or pass ?performer=ID)"
        )
    analysis = revision.analysis
    histogram = analysis.get("melody_histogram") or []
    if analysis.get("melody_part") is None or not histogram:
        raise ValidationError("this arrangement has no melody part to fit to a vocal range")
    current_key = analysis.get("key", "")
    suggestions = suggest_keys(
        melody_histogram=histogram, key=current_key, vocal_low=vocal_low, vocal_high=vocal_high
    )
    return {
        "current_key": current_key,
        "revision": revision.number,
        "melody_part": analysis.get("melody_part"),
        "vocal_low": note_name(vocal_low),
        "vocal_high": note_name(vocal_high),
        "suggestions": suggestions,
    }


def render_get(*, user: AnyUser, render_id: int) -> Render:
    render = (
        Render.objects.filter(track_visible_q(user=user, prefix="revision__track__"), pk=render_id)
        .select_related("revision__track__producer__profile")
        .first()
    )
    if render is None:
        raise Http404("no such render")
    return render


def render_list(*, user: AnyUser, track: Track, status: str | None = None) -> QuerySet[Render]:
    if not track_is_visible(track=track, user=user):
        raise Http404("no such track")
    renders = Render.objects.filter(revision__track=track).select_related("revision").defer("peaks")
    if status:
        renders = renders.filter(status=status)
    return renders.order_by("-created_at", "-id")


def render_active_count(*, user: User) -> int:
    return Render.objects.filter(
        requested_by=user, status__in=[RenderStatus.QUEUED, RenderStatus.RENDERING]
    ).count()


def _comment_base() -> QuerySet[Comment]:
    return Comment.objects.select_related(
        "track", "author__profile", "revision", "render__revision", "resolved_by", "resolved_in_revision"
    )


def comment_list(*, user: AnyUser, track: Track, resolved: bool | None = None) -> QuerySet[Comment]:
    """Top-level comments of a track, oldest first, replies prefetched (one query per level)."""
    if not track_is_visible(track=track, user=user):
        raise Http404("no such track")
    comments = _comment_base().filter(track=track, parent__isnull=True)
    if resolved is not None:
        comments = comments.filter(resolved=resolved)
    replies = _comment_base().order_by("created_at", "id")
    return comments.prefetch_related(Prefetch("replies", queryset=replies)).order_by("created_at", "id")


def comment_get(*, user: AnyUser, comment_id: int) -> Comment:
    comment = (
        _comment_base()
        .filter(track_visible_q(user=user, prefix="track__"), pk=comment_id)
        .select_related("track__producer")
        .first()
    )
    if comment is None:
        raise Http404("no such comment")
    return comment


def comment_of_track(*, track_id: int, object_id: int) -> Comment | None:
    """A comment of the given track (already checked visible), or None."""
    return Comment.objects.filter(pk=object_id, track_id=track_id).first()


def revision_of_track(*, track_id: int, object_id: int) -> Revision | None:
    return Revision.objects.filter(pk=object_id, track_id=track_id).first()


def render_of_track(*, track_id: int, object_id: int) -> Render | None:
    return Render.objects.select_related("revision").filter(pk=object_id, revision__track_id=track_id).first()


def _timeline_for(revision: Revision, cache: dict[int, Any] | None) -> Any:
    if cache is not None and revision.pk in cache:
        return cache[revision.pk]
    timeline = Timeline.from_analysis(revision.analysis)
    if cache is not None:
        cache[revision.pk] = timeline
    return timeline


def comment_position(
    *, comment: Comment, render: Render | None, timelines: dict[int, Any] | None = None
) -> dict[str, Any]:
    """Where a pinned comment sits on ``render`` (or on its own revision at 1x without count-in).

    ``seconds`` is None when the comment has no position or when its bar no longer exists in the
    revision being viewed (a later revision may be shorter).
    """
    if comment.at_bar is None or comment.at_beat is None:
        return {"bar": None, "beat": None, "seconds": None}
    revision = render.revision if render is not None else (comment.revision or comment.track.current_revision)
    position: dict[str, Any] = {"bar": comment.at_bar, "beat": comment.at_beat, "seconds": None}
    if revision is None:
        return position
    timeline = _timeline_for(revision, timelines)
    try:
        at_original = timeline.seconds_at(comment.at_bar, comment.at_beat)
    except ValueError:
        return position
    if at_original > float(revision.analysis.get("duration_s", 0.0)) + 0.01:
        return position
    tempo_ratio = render.tempo if render is not None else 1.0
    count_in = render.count_in if render is not None else 0
    seconds = timeline.seconds_at(
        comment.at_bar, comment.at_beat, tempo_ratio=tempo_ratio, count_in_bars=count_in
    )
    position["seconds"] = round(float(seconds), 3)
    return position


def inbox_open_comments(*, producer: User) -> QuerySet[Comment]:
    """Open threads on a producer's tracks that someone else started, newest first."""
    return (
        _comment_base()
        .filter(track__producer=producer, parent__isnull=True, resolved=False, is_deleted=False)
        .exclude(author=producer)
        .select_related("track")
        .order_by("-created_at", "-id")
    )


def notification_list(*, user: User, unread_only: bool = False) -> QuerySet[Notification]:
    notifications = Notification.objects.filter(recipient=user)
    if unread_only:
        notifications = notifications.filter(read=False)
    return notifications.order_by("-created_at", "-id")


def notification_unread_count(*, user: User) -> int:
    return Notification.objects.filter(recipient=user, read=False).count()


def notification_get(*, user: User, notification_id: int) -> Notification:
    """One of the user's own notifications; anyone else's is missing (404)."""
    notification = Notification.objects.filter(recipient=user, pk=notification_id).first()
    if notification is None:
        raise Http404("no such notification")
    return notification


_UNSAFE_FILENAME = re.compile(r"[^\w\s\-.,'()&!+#]")


def render_key(*, render: Render) -> str:
    if render.key:
        return render.key
    original = render.revision.analysis.get("key", "")
    try:
        return transpose_key(original, render.transpose) if original else ""
    except ValueError:
        return original


def render_tempo_bpm(*, render: Render) -> float | None:
    if render.tempo_bpm:
        return render.tempo_bpm
    bpm = render.revision.analysis.get("tempo_bpm")
    return round(float(bpm) * render.tempo, 2) if bpm else None


def render_download_filename(*, render: Render) -> str:
    """A name that is safe on every file system and in a header: ``Title (D major, 96 bpm).mp3``."""
    title = unicodedata.normalize("NFKC", render.revision.track.title)
    title = _UNSAFE_FILENAME.sub("", title).replace("\n", " ")
    title = re.sub(r"\s+", " ", title).strip(" .") or "Backtrack render"
    details = []
    key = render_key(render=render)
    if key:
        details.append(key)
    bpm = render_tempo_bpm(render=render)
    if bpm:
        details.append(f"{round(bpm):d} bpm")
    suffix = f" ({', '.join(details)})" if details else ""
    return f"{title[:120]}{suffix}.mp3"


def revision_changes(*, old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, str]]:
    """What changed between two analyses, in the words a singer would use."""
    changes: list[dict[str, str]] = []
    for label, field in (("Key", "key"), ("Time signature", "time_signature")):
        if old.get(field) != new.get(field):
            changes.append(
                {"kind": "changed", "text": f"{label}: {old.get(field) or '—'} → {new.get(field) or '—'}"}
            )
    old_bpm, new_bpm = old.get("tempo_bpm"), new.get("tempo_bpm")
    if old_bpm and new_bpm and abs(float(old_bpm) - float(new_bpm)) >= 0.05:
        changes.append({"kind": "changed", "text": f"Tempo: {float(old_bpm):g} → {float(new_bpm):g} BPM"})
    old_len, new_len = float(old.get("duration_s") or 0), float(new.get("duration_s") or 0)
    if abs(old_len - new_len) >= 0.5:
        changes.append(
            {
                "kind": "changed",
                "text": f"Length: {clock(old_len)} → {clock(new_len)} ({new_len - old_len:+.0f} s)",
            }
        )
    old_parts = {_part_key(p): p for p in old.get("parts") or []}
    new_parts = {_part_key(p): p for p in new.get("parts") or []}
    for key, part in new_parts.items():
        if key not in old_parts:
            changes.append({"kind": "added", "text": f"Part added: {_part_title(part)}"})
            continue
        before = old_parts[key]
        diffs = []
        if before.get("instrument") != part.get("instrument"):
            diffs.append(f"instrument {before.get('instrument')} → {part.get('instrument')}")
        if before.get("role") != part.get("role"):
            diffs.append(f"role {before.get('role')} → {part.get('role')}")
        if (before.get("low"), before.get("high")) != (part.get("low"), part.get("high")):
            diffs.append(
                f"range {before.get('low')} to {before.get('high')} → {part.get('low')} to {part.get('high')}"
            )
        if before.get("notes") != part.get("notes"):
            diffs.append(f"{before.get('notes')} → {part.get('notes')} notes")
        if diffs:
            changes.append({"kind": "changed", "text": f"{_part_title(part)}: " + "; ".join(diffs)})
    for key, part in old_parts.items():
        if key not in new_parts:
            changes.append({"kind": "removed", "text": f"Part removed: {_part_title(part)}"})
    if old.get("melody_part") is not None and new.get("melody_part") is None:
        changes.append({"kind": "removed", "text": "No melody part any more"})
    return changes


def _part_key(part: dict[str, Any]) -> str:
    return str(part.get("name") or f"#{part.get('index')} {part.get('instrument')}")


def _part_title(part: dict[str, Any]) -> str:
    return str(part.get("name") or part.get("instrument") or f"Part {int(part.get('index', 0)) + 1}")
