"""Reads for tracks, revisions, renders, comments and notifications.

Visibility lives here, once: a public track is seen by everyone, a private one only by its producer;
everything hanging off a track (revisions, renders, comments) follows its track. Invisible objects are
reported as missing (404), never as forbidden, so their existence does not leak.
"""

from __future__ import annotations

import bisect
import contextlib
import re
import unicodedata
from datetime import date
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.db.models import Prefetch, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from backtrack.text import clock
from performers.models import User
from tracks.engine import CONTENT_TYPES, FORMAT_SUFFIXES, Timeline, note_name, suggest_keys, transpose_key
from tracks.models import (
    Comment,
    Notification,
    Render,
    RenderStatus,
    RequestStatus,
    Revision,
    Setlist,
    SetlistExport,
    SetlistItem,
    Track,
    TrackRequest,
)

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
        melody_histogram=histogram,
        key=current_key,
        vocal_low=vocal_low,
        vocal_high=vocal_high,
        melody_range=analysis.get("melody_range"),
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
        return {"bar": None, "beat": None, "seconds": None, "all_seconds": []}
    revision = render.revision if render is not None else (comment.revision or comment.track.current_revision)
    # ``all_seconds``: every moment the bar plays (an arrangement may repeat it); ``seconds`` the first.
    position: dict[str, Any] = {
        "bar": comment.at_bar,
        "beat": comment.at_beat,
        "seconds": None,
        "all_seconds": [],
    }
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
    if render is not None and render.settings.get("arrangement"):
        from tracks.services.sections import render_arranged_timeline  # services import selectors

        arranged = render_arranged_timeline(revision=revision, settings=render.settings)
        if arranged is not None:
            times = arranged.seconds_at(
                comment.at_bar, comment.at_beat, tempo_ratio=tempo_ratio, count_in_bars=count_in
            )
            position["all_seconds"] = [round(float(moment), 3) for moment in times]
            position["seconds"] = position["all_seconds"][0] if times else None
        return position
    seconds = timeline.seconds_at(
        comment.at_bar, comment.at_beat, tempo_ratio=tempo_ratio, count_in_bars=count_in
    )
    position["seconds"] = round(float(seconds), 3)
    position["all_seconds"] = [position["seconds"]]
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
    extension = FORMAT_SUFFIXES.get(str(render.settings.get("format", "mp3")), ".mp3")
    return f"{title[:120]}{suffix}{extension}"


def render_streams(*, render: Render) -> bool:
    """Whether the render can be listened to from its ``stream_url`` (its file is an MP3)."""
    return str(render.settings.get("format", "mp3")) == "mp3"


def render_content_type(*, render: Render) -> str:
    """The media type of the render's file (``audio/mpeg`` for an MP3, ``application/zip`` for stems…)."""
    return CONTENT_TYPES.get(str(render.settings.get("format", "mp3")), "audio/mpeg")


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


# --- requests and review (issue 13) ------------------------------------------------------------


def request_list(*, user: User, status: str | None = None) -> QuerySet[TrackRequest]:
    """The requests ``user`` made or received, most recently changed first."""
    requests = TrackRequest.objects.filter(Q(performer=user) | Q(producer=user)).select_related(
        "performer__profile", "producer__profile", "track", "delivered_revision"
    )
    if status:
        requests = requests.filter(status=status)
    return requests.order_by("-updated_at", "-id")


def request_get(*, user: AnyUser, request_id: int) -> TrackRequest:
    """A request, for its two parties only (anyone else: not found)."""
    found = None
    if user is not None and user.is_authenticated:
        found = request_list(user=user).filter(pk=request_id).first()
    if found is None:
        raise Http404("no such request")
    return found


def request_is_overdue(*, track_request: TrackRequest, today: date | None = None) -> bool:
    """Its due date has passed and it is neither approved nor declined."""
    today = today or timezone.localdate()
    return (
        track_request.due_date is not None
        and track_request.due_date < today
        and track_request.status not in (RequestStatus.APPROVED, RequestStatus.DECLINED)
    )


def request_waits_on(*, track_request: TrackRequest) -> str | None:
    """Whose move it is: "producer", "performer" or None (finished)."""
    if track_request.status in (RequestStatus.OPEN, RequestStatus.ACCEPTED, RequestStatus.CHANGES_REQUESTED):
        return "producer"
    if track_request.status == RequestStatus.DELIVERED:
        return "performer"
    return None


def request_approvals(*, track: Track) -> QuerySet[TrackRequest]:
    """Approved requests on ``track`` ("Approved by …" on its page)."""
    return track.requests.filter(status=RequestStatus.APPROVED).select_related(
        "performer__profile", "delivered_revision"
    )


def request_for_revision(*, revision: Revision) -> TrackRequest | None:
    """The latest request this revision was delivered for (its brief is shown next to it)."""
    return revision.requests.select_related("performer__profile").order_by("-updated_at").first()


MINUS, TIMES = "\u2212", "\u00d7"  # typographic minus and times signs, as musicians write them


def _signed(value: float, unit: str) -> str:
    sign = "+" if value > 0 else MINUS if value < 0 else "±"
    return f"{sign}{abs(value):g} {unit}"


def settings_summary(*, settings: dict[str, Any] | None, parts: list[dict[str, Any]] | None = None) -> str:
    """What a variant changes, in words, e.g. "\u22122 semitones, 0.9\u00d7, strings \u22126 dB".

    ``parts`` (a revision's analysis parts) names the parts of the mix; without them they are numbered.
    "" when there are no settings, "the original" when they change nothing.
    """
    if not settings:
        return ""
    names = {int(part.get("index", i)): _part_title(part) for i, part in enumerate(parts or [])}
    words: list[str] = []
    transpose = int(settings.get("transpose") or 0)
    if transpose:
        words.append(_signed(transpose, "semitone" if abs(transpose) == 1 else "semitones"))
    tempo = float(settings.get("tempo") or 1.0)
    if tempo != 1.0:
        words.append(f"{tempo:g}{TIMES}")
    for index, mix in sorted((settings.get("mix") or {}).items(), key=lambda item: int(item[0])):
        name = names.get(int(index), f"part {int(index) + 1}")
        if mix.get("mute"):
            words.append(f"{name} muted")
        elif mix.get("solo"):
            words.append(f"{name} solo")
        if float(mix.get("gain_db") or 0.0) and not mix.get("mute"):
            words.append(f"{name} {_signed(float(mix['gain_db']), 'dB')}")
    if settings.get("click"):
        words.append("click")
    if settings.get("count_in"):
        bars = int(settings["count_in"])
        words.append(f"{bars}-bar count-in")
    for key in ("sound", "preset", "format", "layout"):
        if settings.get(key):
            words.append(f"{key} {settings[key]}")
    if settings.get("space_for_voice"):
        words.append(f"space for voice {float(settings['space_for_voice']):g} dB")
    dynamics = settings.get("dynamics")
    if dynamics == "build":
        words.append("dynamics build")
    elif isinstance(dynamics, dict) and dynamics:
        levels = ", ".join(f"{name} {_signed(float(level), 'dB')}" for name, level in dynamics.items())
        words.append(f"dynamics {levels}")
    return ", ".join(words) or "the original"


def comment_settings_summary(*, comment: Comment) -> str:
    """A suggestion's settings in words, naming the parts of the revision it was made on."""
    if comment.settings is None:
        return ""
    parts = comment.revision.parts if comment.revision is not None else None
    return settings_summary(settings=comment.settings, parts=parts)


DIFF_CACHE_S = 7 * 24 * 3600


def revision_previous(*, revision: Revision) -> Revision | None:
    return revision.track.revisions.filter(number__lt=revision.number).order_by("-number").first()


def revision_diff(*, revision: Revision, against: Revision | None = None) -> dict[str, Any]:
    """What changed from ``against`` (default: the previous revision) to ``revision``, computed from
    the notes by ``tracks.engine.diff`` and cached by the two files' hashes."""
    from django.core.cache import cache

    from tracks.engine import EngineError
    from tracks.engine.diff import diff_arrangements
    from tracks.services.errors import TransientRenderError
    from tracks.services.storage import revision_arrangement_load, revision_lead_trim_bars

    base = against if against is not None else revision_previous(revision=revision)
    # Each side in the bars its page shows: its file, less the lead bars its analysis cut.
    sides = [
        f"{item.midi_sha256}+{revision_lead_trim_bars(revision=item)}" if item else "-"
        for item in (base, revision)
    ]
    key = f"revision-diff:v2:{sides[0]}:{sides[1]}"
    try:
        cached = cache.get(key)
    except Exception:  # a cache that is down only costs the computation
        cached = None
    if cached is None:
        try:
            loaded = [
                revision_arrangement_load(revision=item) for item in (base, revision) if item is not None
            ]
        except (EngineError, TransientRenderError) as exc:
            raise Http404(f"the arrangement cannot be read: {exc}") from exc
        cached = diff_arrangements(loaded[0] if base is not None else None, loaded[-1]).to_dict()
        with contextlib.suppress(Exception):  # see above
            cache.set(key, cached, DIFF_CACHE_S)
    return {"revision": revision.pk, "against": base.pk if base else None, **cached}


# --- setlists ------------------------------------------------------------------------------------------


def setlist_list(*, user: User) -> QuerySet[Setlist]:
    return Setlist.objects.filter(owner=user).prefetch_related(_setlist_items_prefetch())


def _setlist_items_prefetch() -> Prefetch:
    return Prefetch(
        "items",
        queryset=SetlistItem.objects.select_related("track__current_revision").order_by("position", "id"),
    )


def setlist_get(*, user: AnyUser, setlist_id: int) -> Setlist:
    """The caller's own setlist; anyone else's is "not found"."""
    if user is None or not user.is_authenticated:
        raise Http404("no such setlist")
    setlist = setlist_list(user=user).filter(pk=setlist_id).first()
    if setlist is None:
        raise Http404("no such setlist")
    return setlist


def setlist_get_shared(*, token: str) -> Setlist:
    """The setlist a share link opens (no login); a revoked or unknown token is "not found"."""
    if not token:
        raise Http404("no such setlist")
    setlist = Setlist.objects.filter(share_token=token).prefetch_related(_setlist_items_prefetch()).first()
    if setlist is None:
        raise Http404("no such setlist")
    return setlist


def setlist_item_revision(*, item: SetlistItem) -> Revision | None:
    """The revision a song plays (its track's current one), or None when the track was deleted, made
    private to the setlist's owner, or has no revision: the song is then shown as unavailable."""
    track = item.track
    if track is None or track.current_revision is None:
        return None
    if not track_is_visible(track=track, user=item.setlist.owner):
        return None
    return track.current_revision


def setlist_item_duration_s(*, item: SetlistItem, revision: Revision | None = None) -> float:
    """About how long the song plays in its variant (count-in included), without its gap."""
    revision = revision if revision is not None else setlist_item_revision(item=item)
    if revision is None:
        return 0.0
    analysis = revision.analysis or {}
    tempo = float(item.settings.get("tempo", 1.0) or 1.0)
    bpm = float(analysis.get("tempo_bpm") or 120.0)
    count_in_s = int(item.settings.get("count_in", 0) or 0) * 4 * 60.0 / (bpm * tempo)
    return float(analysis.get("duration_s") or 0.0) / tempo + count_in_s


def setlist_duration_s(*, setlist: Setlist) -> float:
    """Songs and gaps, in seconds."""
    return sum(setlist_item_duration_s(item=item) + item.gap_s for item in setlist.items.all())


def setlist_song_filename(
    *, number: int, title: str, key: str, bpm: float | None, extension: str = ".mp3"
) -> str:
    """``01 Title (E major, 82 bpm).mp3``: safe on every file system."""
    clean = unicodedata.normalize("NFKC", title)
    clean = re.sub(r"\s+", " ", _UNSAFE_FILENAME.sub("", clean)).strip(" .") or "Song"
    details = [text for text in (key, f"{round(bpm):d} bpm" if bpm else "") if text]
    suffix = f" ({', '.join(details)})" if details else ""
    return f"{number:02d} {clean[:100]}{suffix}{extension}"


def setlist_export_get(*, user: AnyUser, export_id: int) -> SetlistExport:
    if user is None or not user.is_authenticated:
        raise Http404("no such export")
    export = SetlistExport.objects.select_related("setlist").filter(pk=export_id, setlist__owner=user).first()
    if export is None:
        raise Http404("no such export")
    return export


def comment_bar_changed_in(*, comment: Comment, limit: int = 12) -> Revision | None:
    """The first later revision (up to the track's current one) whose notes changed in the bar the
    comment is pinned to, or None (not pinned, no later revision, or the bar is unchanged)."""
    if comment.at_bar is None or comment.revision is None:
        return None
    later = comment.track.revisions.filter(number__gt=comment.revision.number).order_by("number")[:limit]
    previous = comment.revision
    for revision in later:
        try:
            diff = revision_diff(revision=revision, against=previous)
        except Http404:
            return None
        for part in diff["parts"]:
            if any(first <= comment.at_bar <= last for first, last in part["changed_bars"]):
                return revision
        previous = revision
    return None


def render_bar_grid(*, render: Render, max_bars: int = 2000) -> list[float]:
    """Seconds in ``render`` where bars 1, 2, … start, and where the bar after the last one would:
    the grid the A/B player maps positions with (bar and fraction of bar, across tempi)."""
    analysis = render.revision.analysis
    timeline = Timeline.from_analysis(analysis)
    end = float(analysis.get("duration_s", 0.0))
    grid: list[float] = []
    for bar in range(1, max_bars + 1):
        if timeline.seconds_at(bar, 1.0) > end + 1e-6 and len(grid) >= 2:
            break
        grid.append(
            round(timeline.seconds_at(bar, 1.0, tempo_ratio=render.tempo, count_in_bars=render.count_in), 4)
        )
    return grid


def ab_seconds(*, grid_from: list[float], grid_to: list[float], seconds: float) -> float:
    """The moment of the other render at the same bar and fraction of a bar (static/js/ab.js does the
    same in the browser). Before bar 1 (a count-in) it keeps the distance to bar 1 in bars."""
    if len(grid_from) < 2 or len(grid_to) < 2:
        return seconds
    if seconds < grid_from[0]:
        bars = (grid_from[0] - seconds) / (grid_from[1] - grid_from[0])
        return max(0.0, grid_to[0] - bars * (grid_to[1] - grid_to[0]))
    index = min(bisect.bisect_right(grid_from, seconds) - 1, len(grid_from) - 2)
    fraction = min(1.0, (seconds - grid_from[index]) / (grid_from[index + 1] - grid_from[index]))
    if index + 1 >= len(grid_to):
        return grid_to[-1]
    return grid_to[index] + fraction * (grid_to[index + 1] - grid_to[index])


def ab_pair(*, revision: Revision) -> tuple[Render, Render] | None:
    """Two finished renders of the same settings, of the previous revision and of this one, for A/B."""
    previous = revision_previous(revision=revision)
    if previous is None:
        return None
    done = Render.objects.filter(status=RenderStatus.DONE).exclude(audio="")
    for render in done.filter(revision=revision).order_by("-last_accessed_at")[:20]:
        other = done.filter(revision=previous, settings_hash=render.settings_hash).first()
        if other is not None:
            return other, render
    return None
