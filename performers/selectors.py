"""Reads for accounts and profiles."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
