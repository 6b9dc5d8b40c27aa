"""Reads for accounts and profiles."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth.models import AnonymousUser
from django.db.models import Q, QuerySet

from performers.models import ChosenKey, Genre, Profile, User

if TYPE_CHECKING:
    from tracks.models import Track


def genre_list() -> QuerySet[Genre]:
    return Genre.objects.order_by("name")


def profile_get(*, user: User) -> Profile:
    """The user's profile (created on first read for accounts made outside ``user_register``)."""
    profile, _ = Profile.objects.prefetch_related("genres").get_or_create(user=user)
    return profile


# The one answer for a missing performer, a range not set and a private range, so none can be told apart.
VOCAL_RANGE_HIDDEN = "no such performer, or their vocal range is private"


def vocal_range_visible(*, viewer: User | AnonymousUser, profile: Profile) -> bool:
    """Whether ``viewer`` may see ``profile``'s vocal range, or anything derived from it (key
    suggestions). The one home of that rule: a range is private unless its performer shares it, and
    then it is shown to signed-in users (producers suggesting keys), never to anonymous visitors.
    """
    if not viewer.is_authenticated:
        return False
    if viewer.pk == profile.user_id or profile.share_vocal_range:
        return True
    # A producer answering this performer's request (not yet approved or declined) sees it too.
    from tracks.models import ACTIVE_REQUEST_STATUSES, TrackRequest  # tracks depends on performers

    return TrackRequest.objects.filter(
        producer_id=viewer.pk, performer_id=profile.user_id, status__in=ACTIVE_REQUEST_STATUSES
    ).exists()


def vocal_range_get(*, viewer: User | AnonymousUser, performer_id: int) -> tuple[int, int] | None:
    """The performer's vocal range as MIDI notes (low, high), when ``viewer`` may see it.

    None alike when there is no such user, no range set, or the range is private to them: callers
    must answer those the same way, so nobody learns which accounts exist or have a range.
    """
    profile = Profile.objects.filter(user_id=performer_id).first()
    if profile is None or profile.vocal_low is None or profile.vocal_high is None:
        return None
    if not vocal_range_visible(viewer=viewer, profile=profile):
        return None
    return profile.vocal_low, profile.vocal_high


def chosen_key_get(*, performer: User, track: Track) -> int | None:
    return (
        ChosenKey.objects.filter(performer=performer, track=track).values_list("transpose", flat=True).first()
    )


def chosen_key_list(*, performer: User) -> QuerySet[ChosenKey]:
    """The keys a performer chose, for tracks they can still see."""
    return (
        ChosenKey.objects.filter(performer=performer)
        .filter(Q(track__is_public=True) | Q(track__producer=performer))
        .select_related("track")
        .order_by("-updated_at")
    )
