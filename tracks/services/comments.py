"""Writes for the feedback thread: comments, replies, pinned moments, resolving, editing, deleting."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from backtrack.text import clock, excerpt
from performers.models import User
from tracks import rules, selectors
from tracks.engine import Timeline
from tracks.models import Comment, NotificationKind, Render, Revision, Track
from tracks.services.errors import CommentLimitReached
from tracks.services.notifications import notification_create
from tracks.services.renders import render_settings_normalise
from tracks.services.sections import render_arranged_timeline


def _check_comment_rate(user: User) -> None:
    """CommentLimitReached past COMMENTS_PER_MINUTE or COMMENTS_PER_HOUR (counted in the database,
    so every web process and every path (page or API) shares one count)."""
    now = timezone.now()
    for window, limit in (
        (timedelta(minutes=1), int(django_settings.COMMENTS_PER_MINUTE)),
        (timedelta(hours=1), int(django_settings.COMMENTS_PER_HOUR)),
    ):
        if Comment.objects.filter(author=user, created_at__gte=now - window).count() >= limit:
            span = "minute" if window < timedelta(hours=1) else "hour"
            raise CommentLimitReached(
                f"you have posted {limit} comments in the last {span}; wait a little before the next",
                retry_after_s=int(window.total_seconds()),
            )


def _position_from_seconds(
    *, revision: Revision, render: Render | None, at_seconds: float
) -> tuple[int, float]:
    timeline = Timeline.from_analysis(revision.analysis)
    tempo_ratio = render.tempo if render is not None else 1.0
    count_in = render.count_in if render is not None else 0
    arranged = (
        render_arranged_timeline(revision=revision, settings=render.settings) if render is not None else None
    )
    if render is not None and arranged is not None:
        # A moment of an arranged render is stored against the bar of the song as written.
        if at_seconds < 0:
            raise ValidationError({"at_seconds": ["a moment cannot be before the start of the render"]})
        end = arranged.count_in_s(count_in, tempo_ratio) + arranged.length_s / tempo_ratio
        if at_seconds > max(end, render.duration_s or 0.0) + 0.5:
            raise ValidationError(
                {"at_seconds": [f"that moment is past the end of the render ({clock(end)})"]}
            )
        bar, beat = arranged.position_at(at_seconds, tempo_ratio=tempo_ratio, count_in_bars=count_in)
        return int(bar), round(float(beat), 3)
    music_start = timeline.seconds_at(1, 1.0, tempo_ratio=tempo_ratio, count_in_bars=count_in)
    length = music_start + float(revision.analysis.get("duration_s", 0.0)) / tempo_ratio
    if render is not None and render.duration_s:
        length = max(length, render.duration_s)
    if at_seconds < 0:
        raise ValidationError({"at_seconds": ["a moment cannot be before the start of the render"]})
    if at_seconds > length + 0.5:
        raise ValidationError(
            {"at_seconds": [f"that moment is past the end of the render ({clock(length)})"]}
        )
    bar, beat = timeline.position_at(at_seconds, tempo_ratio=tempo_ratio, count_in_bars=count_in)
    return int(bar), round(float(beat), 3)


def comment_post(
    *,
    user: User,
    track: Track,
    body: str,
    parent: Comment | None = None,
    revision: Revision | None = None,
    render: Render | None = None,
    at_seconds: float | None = None,
    settings: dict[str, Any] | None = None,
) -> Comment:
    """A comment or reply, optionally about a revision or render and pinned to a moment of it.

    ``settings`` (render settings) make it a suggestion that can be heard: validated like a render
    request against its revision (or the track's current one) and stored normalised.
    """
    if not user.is_authenticated:
        raise PermissionDenied("log in to comment")
    if not selectors.track_is_visible(track=track, user=user):
        raise Http404("no such track")
    _check_comment_rate(user)
    errors: dict[str, list[str]] = {}
    body = rules.text_field(body, field="body", limit=rules.COMMENT_MAX, errors=errors, multiline=True)
    if not body and "body" not in errors:
        errors["body"] = ["a comment cannot be empty"]
    if parent is not None:
        if parent.track_id != track.pk:
            errors["parent"] = ["that comment belongs to another track"]
        elif parent.parent_id is not None:
            parent = parent.parent  # threads are one level deep: a reply to a reply joins the thread
    if render is not None and render.revision.track_id != track.pk:
        errors["render"] = ["that render belongs to another track"]
    if revision is not None and revision.track_id != track.pk:
        errors["revision"] = ["that revision belongs to another track"]
    if not errors and render is not None and revision is not None and render.revision_id != revision.pk:
        errors["revision"] = ["the render was made from another revision"]
    if errors:
        raise ValidationError(errors)
    if render is not None and revision is None:
        revision = render.revision

    suggestion: dict[str, Any] | None = None
    if settings is not None:
        suggested_on = revision or track.current_revision
        if suggested_on is None:
            raise ValidationError({"settings": ["this track has no revision to suggest settings for"]})
        try:
            suggestion = render_settings_normalise(revision=suggested_on, settings=settings).to_dict()
        except ValidationError as exc:
            raise ValidationError({"settings": exc.messages}) from exc
        revision = suggested_on  # mix settings name parts of this revision

    at_bar: int | None = None
    at_beat: float | None = None
    if at_seconds is not None:
        if revision is None:
            revision = track.current_revision
        if revision is None:
            raise ValidationError({"at_seconds": ["this track has no revision to pin a moment to"]})
        at_bar, at_beat = _position_from_seconds(
            revision=revision, render=render, at_seconds=float(at_seconds)
        )

    with transaction.atomic():
        comment = Comment.objects.create(
            track=track,
            author=user,
            parent=parent,
            body=body,
            revision=revision,
            render=render,
            at_bar=at_bar,
            at_beat=at_beat,
            settings=suggestion,
        )
        who = user.display_name
        quote = excerpt(body)
        recipients: list[tuple[User, NotificationKind, str]] = []
        if parent is not None and parent.author_id != user.pk:
            text = f"{who} replied to your comment on “{track.title}”: “{quote}”"
            recipients.append((parent.author, NotificationKind.REPLY, text))
        if track.producer_id != user.pk and (parent is None or parent.author_id != track.producer_id):
            text = f"{who} commented on “{track.title}”: “{quote}”"
            recipients.append((track.producer, NotificationKind.COMMENT, text))
        for recipient, kind, text in recipients:
            notification_create(recipient=recipient, kind=kind, text=text, url=_comment_url(comment))
    return comment


def _comment_url(comment: Comment) -> str:
    return f"{comment.track.get_absolute_url()}#comment-{comment.pk}"


def comment_resolve(
    *, user: User, comment: Comment, resolved: bool = True, revision: Revision | None = None
) -> Comment:
    """Mark a thread resolved (optionally "in revision N") or open again: producer or author only."""
    if not rules.may_resolve_comment(user, comment):
        raise PermissionDenied("only the track's producer or the comment's author can resolve it")
    if comment.parent_id is not None:
        raise ValidationError("replies are resolved with their thread: resolve the first comment")
    if revision is not None and revision.track_id != comment.track_id:
        raise ValidationError({"revision": ["that revision belongs to another track"]})
    if revision is not None and not resolved:
        raise ValidationError({"revision": ["a reopened comment is not resolved in a revision"]})
    with transaction.atomic():
        changed = comment.resolved != resolved or comment.resolved_in_revision_id != (
            revision.pk if revision else None
        )
        comment.resolved = resolved
        comment.resolved_by = user if resolved else None
        comment.resolved_at = timezone.now() if resolved else None
        comment.resolved_in_revision = revision if resolved else None
        comment.save(update_fields=["resolved", "resolved_by", "resolved_at", "resolved_in_revision"])
        if changed and comment.author_id != user.pk:
            who = user.display_name
            if resolved:
                where = f" in revision {revision.number}" if revision is not None else ""
                text = f"{who} resolved your comment on “{comment.track.title}”{where}"
                kind = NotificationKind.RESOLVED
            else:
                text = f"{who} reopened your comment on “{comment.track.title}”"
                kind = NotificationKind.REOPENED
            notification_create(recipient=comment.author, kind=kind, text=text, url=_comment_url(comment))
    return comment


def comment_update(*, user: User, comment: Comment, body: str) -> Comment:
    if not rules.may_edit_comment(user, comment):
        raise PermissionDenied("only the author edits a comment")
    if comment.is_deleted:
        raise ValidationError("a deleted comment cannot be edited")
    errors: dict[str, list[str]] = {}
    text = rules.text_field(body, field="body", limit=rules.COMMENT_MAX, errors=errors, multiline=True)
    if not text and "body" not in errors:
        errors["body"] = ["a comment cannot be empty"]
    if errors:
        raise ValidationError(errors)
    comment.body = text
    comment.edited_at = timezone.now()
    comment.save(update_fields=["body", "edited_at"])
    return comment


def comment_delete(*, user: User, comment: Comment) -> None:
    """The author removes a comment; a thread others replied to keeps its place without the text."""
    if not rules.may_edit_comment(user, comment):
        raise PermissionDenied("only the author deletes a comment")
    with transaction.atomic():
        if comment.replies.exists():
            comment.body = ""
            comment.is_deleted = True
            comment.edited_at = timezone.now()
            comment.save(update_fields=["body", "is_deleted", "edited_at"])
        else:
            parent = comment.parent
            comment.delete()
            if parent is not None and parent.is_deleted and not parent.replies.exists():
                parent.delete()
