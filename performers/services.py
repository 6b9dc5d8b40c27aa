"""Writes for accounts and profiles."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from backtrack.text import clean_line, clean_text, has_control_characters
from performers.models import NOTE_MAX, NOTE_MIN, ChosenKey, Genre, Profile, User
from tracks.engine import note_name, note_number

if TYPE_CHECKING:
    from tracks.models import Track

ROLES = ("performer", "producer")


def user_register(*, username: str, password: str, email: str = "", role: str) -> User:
    """Create an account with one role and an empty profile; raises ValidationError per field."""
    errors: dict[str, list[str]] = {}
    raw_username = username or ""
    username = raw_username.strip()
    if role not in ROLES:
        errors["role"] = ['role must be "performer" or "producer"']
    if has_control_characters(raw_username):
        # Names end up in email headers and logs: refuse rather than guess what was meant.
        errors["username"] = ["a username cannot contain control characters (such as line breaks)"]
    elif not username:
        errors["username"] = ["a username is required"]
    elif len(username) > 150:
        errors["username"] = ["at most 150 characters"]
    else:
        try:
            User.username_validator(username)
        except ValidationError as exc:
            errors["username"] = list(exc.messages)
        if "username" not in errors and User.objects.filter(username__iexact=username).exists():
            errors["username"] = ["that username is taken"]
    if email:
        try:
            validate_email(email)
        except ValidationError as exc:
            errors["email"] = list(exc.messages)
    candidate = User(username=username, email=email)
    try:
        validate_password(password or "", user=candidate)
    except ValidationError as exc:
        errors["password"] = list(exc.messages)
    if errors:
        raise ValidationError(errors)

    user = User(
        username=username, email=email, is_performer=role == "performer", is_producer=role == "producer"
    )
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
            Profile.objects.create(user=user)
    except IntegrityError as exc:
        # Two sign-ups racing for one name: the unique index decides.
        raise ValidationError({"username": ["that username is taken"]}) from exc
    return user


def profile_get_or_create(*, user: User) -> Profile:
    profile, _ = Profile.objects.get_or_create(user=user)
    return profile


def _parse_note(value: str, field: str, errors: dict[str, list[str]]) -> int | None:
    if value in ("", None):
        return None
    try:
        number = note_number(value)
    except (ValueError, TypeError):
        errors[field] = [f"{value!r} is not a note name like G3 or C#5"]
        return None
    if not NOTE_MIN <= number <= NOTE_MAX:
        errors[field] = [f"{value} is outside {note_name(NOTE_MIN)}-{note_name(NOTE_MAX)}"]
        return None
    return number


def profile_update(
    *,
    user: User,
    display_name: str | None = None,
    vocal_low: str | None = None,
    vocal_high: str | None = None,
    genres: list[str] | None = None,
    bio: str | None = None,
    share_vocal_range: bool | None = None,
) -> Profile:
    """Change only the given fields; notes are names ("G3"); an empty string clears a note.

    Control characters never reach the profile: the display name becomes one clean line (it goes into
    email headers), the bio keeps its line breaks and loses the rest.
    """
    profile = profile_get_or_create(user=user)
    errors: dict[str, list[str]] = {}
    low = profile.vocal_low
    high = profile.vocal_high
    if vocal_low is not None:
        low = _parse_note(vocal_low, "vocal_low", errors)
    if vocal_high is not None:
        high = _parse_note(vocal_high, "vocal_high", errors)
    if not errors and low is not None and high is not None and low >= high:
        errors["vocal_high"] = [
            f"the highest note ({note_name(high)}) must be above the lowest ({note_name(low)})"
        ]
    genre_objects: list[Genre] = []
    if genres is not None:
        slugs = list(dict.fromkeys(genres))
        genre_objects = list(Genre.objects.filter(slug__in=slugs))
        unknown = sorted(set(slugs) - {genre.slug for genre in genre_objects})
        if unknown:
            errors["genres"] = [f"unknown genre: {', '.join(unknown)}"]
    if display_name is not None:
        display_name = clean_line(display_name)
        if len(display_name) > 80:
            errors["display_name"] = ["at most 80 characters"]
    if bio is not None:
        bio = clean_text(bio)
        if len(bio) > 4000:
            errors["bio"] = ["at most 4000 characters"]
    if errors:
        raise ValidationError(errors)

    with transaction.atomic():
        profile.vocal_low = low
        profile.vocal_high = high
        if display_name is not None:
            profile.display_name = display_name
        if bio is not None:
            profile.bio = bio
        if share_vocal_range is not None:
            profile.share_vocal_range = share_vocal_range
        profile.save()
        if genres is not None:
            profile.genres.set(genre_objects)
    return profile


def chosen_key_remember(*, performer: User, track: Track, transpose: int) -> ChosenKey:
    if not -12 <= transpose <= 12:
        raise ValidationError({"transpose": ["transpose must be between -12 and 12"]})
    chosen, _ = ChosenKey.objects.update_or_create(
        performer=performer, track=track, defaults={"transpose": transpose}
    )
    return chosen
