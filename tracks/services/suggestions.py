"""Suggestions that can be heard: a comment's render settings applied as the track's recommended variant."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError

from performers.models import User
from tracks import rules
from tracks.models import Comment, Track


def track_recommend_settings(*, user: User, comment: Comment) -> Track:
    """The producer makes a suggestion's settings the track's recommended variant."""
    track = comment.track
    if not rules.may_change_track(user, track):
        raise PermissionDenied("only the track's producer can choose its recommended variant")
    if comment.settings is None or comment.is_deleted:
        raise ValidationError("this comment suggests no settings")
    track.recommended_settings = dict(comment.settings)
    track.save(update_fields=["recommended_settings", "updated_at"])
    return track
