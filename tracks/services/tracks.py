"""Writes for tracks and their revisions (uploaded MIDI files)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import partial
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from backtrack.text import clean_line
from performers.models import Genre, User
from tracks import rules
from tracks.engine import InvalidArrangement, load_arrangement
from tracks.models import Comment, Revision, Track
from tracks.services.comments import comment_resolve
from tracks.services.listening import revision_loudness_enqueue
from tracks.services.storage import storage_discard


def _read_upload(midi: UploadedFile | None, errors: dict[str, list[str]]) -> tuple[bytes, Any] | None:
    """Let the engine validate the upload; its reason goes in ``errors["midi"]``.

    A large upload is on disk already: the engine is given its path, so a 100 MB file is refused by
    its size without being read into memory.
    """
    if midi is None:
        errors["midi"] = ["a MIDI file is required"]
        return None
    limit = int(django_settings.MIDI_MAX_BYTES)
    temporary_path = getattr(midi, "temporary_file_path", None)
    try:
        if callable(temporary_path):
            arrangement = load_arrangement(temporary_path(), max_bytes=limit)
        else:
            midi.seek(0)
            arrangement = load_arrangement(midi.read(limit + 1), max_bytes=limit)
    except InvalidArrangement as exc:
        errors["midi"] = [str(exc)]
        return None
    return arrangement.data, arrangement


def _store_revision(
    *,
    track: Track,
    number: int,
    data: bytes,
    arrangement: Any,
    user: User,
    notes: str,
    original_filename: str,
    stored: list[str],
) -> Revision:
    digest = hashlib.sha256(data).hexdigest()
    name = default_storage.save(f"arrangements/{track.pk}/r{number}-{digest[:12]}.mid", ContentFile(data))
    stored.append(name)
    revision = Revision.objects.create(
        track=track,
        number=number,
        midi=name,
        original_filename=clean_line(original_filename)[:255],
        midi_sha256=digest,
        notes=notes,
        analysis=arrangement.analysis,
        created_by=user,
    )
    # Measured in the background, so the first new key or tempo asked for can stream at once.
    transaction.on_commit(partial(revision_loudness_enqueue, revision_id=revision.pk))
    return revision


def track_create_check(*, user: User) -> None:
    """PermissionDenied unless ``user`` may upload tracks (checked before the upload is validated)."""
    if not rules.may_upload_tracks(user):
        raise PermissionDenied("only producers upload tracks")


def track_change_check(*, user: User, track: Track, action: str = "changes it") -> None:
    """PermissionDenied unless ``user`` is the track's producer (who edits it and uploads revisions)."""
    if not rules.may_change_track(user, track):
        raise PermissionDenied(f"only the track's producer {action}")


def track_create(
    *,
    producer: User,
    title: str,
    genre: str,
    midi: UploadedFile,
    description: str = "",
    is_public: bool = True,
) -> Track:
    """A new track with revision 1; a refused file leaves no row and no stored file behind."""
    track_create_check(user=producer)
    errors: dict[str, list[str]] = {}
    title = rules.text_field(title, field="title", limit=rules.TITLE_MAX, errors=errors)
    if not title and "title" not in errors:
        errors["title"] = ["a title is required"]
    description = rules.text_field(
        description, field="description", limit=rules.TEXT_MAX, errors=errors, multiline=True
    )
    genre_obj = Genre.objects.filter(slug=genre).first() if genre else None
    if genre_obj is None:
        errors["genre"] = [f"unknown genre {genre!r}" if genre else "a genre is required"]
    upload = _read_upload(midi, errors)
    if errors or upload is None or genre_obj is None:
        raise ValidationError(errors)
    data, arrangement = upload

    stored: list[str] = []
    try:
        with transaction.atomic():
            track = Track.objects.create(
                producer=producer, title=title, genre=genre_obj, description=description, is_public=is_public
            )
            revision = _store_revision(
                track=track,
                number=1,
                data=data,
                arrangement=arrangement,
                user=producer,
                notes="",
                original_filename=getattr(midi, "name", "") or "",
                stored=stored,
            )
            track.current_revision = revision
            track.save(update_fields=["current_revision", "updated_at"])
    except BaseException:
        storage_discard(names=stored)
        raise
    return track


def track_update(
    *,
    user: User,
    track: Track,
    title: str | None = None,
    genre: str | None = None,
    description: str | None = None,
    is_public: bool | None = None,
    default_sound: str | None = None,
) -> Track:
    track_change_check(user=user, track=track, action="edits it")
    errors: dict[str, list[str]] = {}
    fields = ["updated_at"]
    if title is not None:
        track.title = rules.text_field(title, field="title", limit=rules.TITLE_MAX, errors=errors)
        if not track.title and "title" not in errors:
            errors["title"] = ["a title is required"]
        fields.append("title")
    if description is not None:
        track.description = rules.text_field(
            description, field="description", limit=rules.TEXT_MAX, errors=errors, multiline=True
        )
        fields.append("description")
    if genre is not None:
        genre_obj = Genre.objects.filter(slug=genre).first()
        if genre_obj is None:
            errors["genre"] = [f"unknown genre {genre!r}"]
        else:
            track.genre = genre_obj
            fields.append("genre")
    if is_public is not None:
        track.is_public = is_public
        fields.append("is_public")
    if default_sound is not None:
        if default_sound and default_sound not in django_settings.SOUND_SETS:
            choices = ", ".join(sorted(django_settings.SOUND_SETS))
            errors["default_sound"] = [f"sound {default_sound!r} is not installed; choose one of {choices}"]
        else:
            track.default_sound = default_sound
            fields.append("default_sound")
    if errors:
        raise ValidationError(errors)
    track.save(update_fields=fields)
    return track


def revision_create(
    *, track: Track, user: User, midi: UploadedFile, notes: str = "", resolves: Sequence[int] = ()
) -> Revision:
    """Revision N+1 of a track, by its producer only; earlier revisions and renders stay.

    ``resolves`` names open threads of this track that the revision answers: they are resolved "in
    revision N" together with the upload (an unknown or foreign id is a ValidationError, and then
    nothing is stored).
    """
    track_change_check(user=user, track=track, action="uploads revisions")
    errors: dict[str, list[str]] = {}
    answered = list(
        Comment.objects.select_related("track", "author").filter(
            track=track, pk__in=list(resolves), parent__isnull=True
        )
    )
    if len(answered) != len(set(resolves)):
        errors["resolves"] = ["some of those comments are not open threads of this track"]
    notes = rules.text_field(notes, field="notes", limit=rules.TEXT_MAX, errors=errors, multiline=True)
    upload = _read_upload(midi, errors)
    if errors or upload is None:
        raise ValidationError(errors)
    data, arrangement = upload

    stored: list[str] = []
    try:
        with transaction.atomic():
            # The lock serialises concurrent uploads of one track, so numbers never collide. Writing
            # first takes the lock at once on every database (see _lock_render).
            Track.objects.filter(pk=track.pk).update(updated_at=timezone.now())
            locked = Track.objects.select_for_update().get(pk=track.pk)
            number = (locked.revisions.aggregate(top=Max("number"))["top"] or 0) + 1
            revision = _store_revision(
                track=locked,
                number=number,
                data=data,
                arrangement=arrangement,
                user=user,
                notes=notes,
                original_filename=getattr(midi, "name", "") or "",
                stored=stored,
            )
            locked.current_revision = revision
            locked.save(update_fields=["current_revision", "updated_at"])
            for comment in answered:
                comment_resolve(user=user, comment=comment, resolved=True, revision=revision)
    except BaseException:
        storage_discard(names=stored)
        raise
    track.current_revision = revision
    return revision
