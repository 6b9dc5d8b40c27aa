"""factory_boy factories. Arrangements are composed by the engine (short, cached), never downloaded."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any

import factory
from django.core.files.base import ContentFile

from performers.models import Genre, Profile, User
from tracks.demo import compose_song
from tracks.engine import VariantSettings, load_arrangement
from tracks.models import Comment, Notification, Render, RenderStatus, Revision, Track

DEFAULT_PASSWORD = "correct-horse-battery-staple"


@lru_cache(maxsize=16)
def song_bytes(style: str = "pop", minutes: float = 0.25, seed: int = 0, parts: int = 4) -> bytes:
    return compose_song(style=style, minutes=minutes, parts=parts, seed=seed)


@lru_cache(maxsize=16)
def song_analysis(style: str = "pop", minutes: float = 0.25, seed: int = 0, parts: int = 4) -> dict[str, Any]:
    return load_arrangement(song_bytes(style, minutes, seed, parts)).analysis


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    is_performer = True
    is_producer = False
    password = factory.PostGenerationMethodCall("set_password", DEFAULT_PASSWORD)

    # factory_boy calls a post-generation hook with the created user, not with the factory.
    @factory.post_generation
    def profile(user: User, create: bool, extracted: Any, **kwargs: Any) -> None:  # noqa: N805
        if create:
            Profile.objects.get_or_create(user=user, defaults=kwargs)
            user.save()


class PerformerFactory(UserFactory):
    username = factory.Sequence(lambda n: f"singer{n}")
    is_performer = True
    is_producer = False


class ProducerFactory(UserFactory):
    username = factory.Sequence(lambda n: f"producer{n}")
    is_performer = False
    is_producer = True


def genre(slug: str = "pop") -> Genre:
    found, _ = Genre.objects.get_or_create(slug=slug, defaults={"name": slug.title()})
    return found


class TrackFactory(factory.django.DjangoModelFactory):
    """A track with revision 1 (a short composed pop song) as its current revision."""

    class Meta:
        model = Track
        skip_postgeneration_save = True

    producer = factory.SubFactory(ProducerFactory)
    title = factory.Sequence(lambda n: f"Song {n}")
    genre = factory.LazyFunction(genre)
    description = ""
    is_public = True

    @factory.post_generation
    def revision(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        if not create or extracted is False:
            return
        self.current_revision = RevisionFactory(track=self, number=1, **kwargs)
        self.save(update_fields=["current_revision"])


class RevisionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Revision

    class Params:
        style = "pop"
        minutes = 0.25
        seed = 0

    track = factory.SubFactory(TrackFactory, revision=False)
    number = factory.Sequence(lambda n: n + 1)
    notes = ""
    created_by = factory.SelfAttribute("track.producer")
    midi = factory.LazyAttribute(
        lambda o: ContentFile(song_bytes(o.style, o.minutes, o.seed), name=f"r{o.number}.mid")
    )
    midi_sha256 = factory.LazyAttribute(
        lambda o: hashlib.sha256(song_bytes(o.style, o.minutes, o.seed)).hexdigest()
    )
    analysis = factory.LazyAttribute(lambda o: song_analysis(o.style, o.minutes, o.seed))


def variant(**settings: Any) -> VariantSettings:
    return VariantSettings.from_dict(settings).normalised()


class RenderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Render

    class Params:
        variant_settings = factory.LazyFunction(dict)

    revision = factory.LazyFunction(lambda: TrackFactory().current_revision)
    settings = factory.LazyAttribute(lambda o: variant(**o.variant_settings).to_dict())
    settings_hash = factory.LazyAttribute(lambda o: variant(**o.variant_settings).cache_key())
    stem_key = factory.LazyAttribute(lambda o: variant(**o.variant_settings).stem_key())
    status = RenderStatus.QUEUED
    requested_by = factory.SubFactory(PerformerFactory)


class CommentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Comment

    track = factory.SubFactory(TrackFactory)
    author = factory.SubFactory(PerformerFactory)
    body = factory.Sequence(lambda n: f"Comment number {n}")
    revision = factory.SelfAttribute("track.current_revision")


class NotificationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Notification

    recipient = factory.SubFactory(PerformerFactory)
    kind = "comment"
    text = factory.Sequence(lambda n: f"Notification {n}")
