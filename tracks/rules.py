"""The rules of the tracks app, one home each: field limits, and who may do what.

Services enforce them; forms, serializers, views and templates import them to show or pre-check the
same rule, so a limit or a permission is never written twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from backtrack.text import clean_line, clean_text
from tracks.engine.settings import GAIN_RANGE

if TYPE_CHECKING:
    from tracks.models import Comment, Track

TITLE_MAX = 200
TEXT_MAX = 4000
COMMENT_MAX = 5000
SEARCH_MAX = 100
GAIN_MIN_DB, GAIN_MAX_DB = GAIN_RANGE


def text_field(
    value: str | None, *, field: str, limit: int, errors: dict[str, list[str]], multiline: bool = False
) -> str:
    """A cleaned text field (control characters removed); a too-long value is an error on ``field``."""
    text = clean_text(value) if multiline else clean_line(value)
    if len(text) > limit:
        errors[field] = [f"at most {limit} characters"]
    return text


def may_upload_tracks(user: Any) -> bool:
    return bool(user.is_authenticated and user.is_producer)


def may_change_track(user: Any, track: Track) -> bool:
    """The track's producer edits it, uploads its revisions and answers its thread."""
    return bool(user.is_authenticated and track.producer_id == user.pk)


def may_resolve_comment(user: Any, comment: Comment) -> bool:
    """The track's producer or the comment's author resolves (or reopens) a thread."""
    return bool(user.is_authenticated and user.pk in (comment.author_id, comment.track.producer_id))


def may_edit_comment(user: Any, comment: Comment) -> bool:
    """Only the author edits or deletes a comment."""
    return bool(user.is_authenticated and comment.author_id == user.pk)
