"""Demo data: a producer, a performer with a vocal range, arrangements composed by our own code.

Idempotent: running it again changes nothing that exists (it resets the demo passwords).
"""

from __future__ import annotations

from typing import Any, TypedDict

from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand
from django.db import transaction

from performers.models import Profile, User
from performers.services import profile_update
from tracks.demo import compose_song
from tracks.models import Comment, Track
from tracks.services import comment_post, track_create

DEMO_PASSWORD = "backtrack-demo"  # noqa: S105  (printed for the demo; documented in the README)


class DemoTrack(TypedDict):
    title: str
    genre: str
    style: str
    minutes: float
    parts: int
    seed: int
    description: str


DEMO_TRACKS: list[DemoTrack] = [
    {
        "title": "Sunlit Avenue",
        "genre": "pop",
        "style": "pop",
        "minutes": 3.0,
        "parts": 8,
        "seed": 1,
        "description": "Upbeat pop in 4/4: drums, bass, keys, guitar, strings, pad, brass and a lead melody.",
    },
    {
        "title": "Quiet Harbour",
        "genre": "ballad",
        "style": "ballad",
        "minutes": 2.5,
        "parts": 5,
        "seed": 2,
        "description": "A slow ballad in 3/4 with piano, strings, bass and a melody guide.",
    },
    {
        "title": "Night Drive",
        "genre": "pop",
        "style": "pop",
        "minutes": 2.0,
        "parts": 6,
        "seed": 3,
        "description": "Mid-tempo pop groove, good for practising with a click.",
    },
]


class Command(BaseCommand):
    help = "Create the demo producer, performer and arrangements (safe to run again)."

    def handle(self, *args: Any, **options: Any) -> None:
        producer = self._user("producer", role="producer", display_name="Demo Producer")
        singer = self._user("singer", role="performer", display_name="Demo Singer")
        if Profile.objects.get(user=singer).vocal_low is None:
            profile_update(user=singer, vocal_low="A3", vocal_high="E5", genres=["pop", "ballad"])

        for spec in DEMO_TRACKS:
            if Track.objects.filter(producer=producer, title=spec["title"]).exists():
                continue
            midi = compose_song(
                style=spec["style"], minutes=spec["minutes"], parts=spec["parts"], seed=spec["seed"]
            )
            upload = SimpleUploadedFile(f"{spec['title']}.mid", midi, content_type="audio/midi")
            track = track_create(
                producer=producer,
                title=spec["title"],
                genre=spec["genre"],
                midi=upload,
                description=spec["description"],
            )
            self.stdout.write(f"created track {track.title!r} (id {track.pk})")

        first = Track.objects.filter(producer=producer, title=DEMO_TRACKS[0]["title"]).first()
        revision = first.current_revision if first is not None else None
        if revision is not None and not Comment.objects.filter(track=revision.track, author=singer).exists():
            comment_post(
                user=singer,
                track=revision.track,
                body="Love the groove! Could the brass come in a bit softer in the second chorus?",
                revision=revision,
                at_seconds=min(30.0, revision.analysis["duration_s"] / 3),
            )

        self.stdout.write(self.style.SUCCESS("demo data ready"))
        self.stdout.write(f"  producer login: producer / {DEMO_PASSWORD}")
        self.stdout.write(f"  performer login: singer / {DEMO_PASSWORD}")

    @transaction.atomic
    def _user(self, username: str, *, role: str, display_name: str) -> User:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User(username=username, email=f"{username}@backtrack.local")
        user.is_performer = user.is_performer or role == "performer"
        user.is_producer = user.is_producer or role == "producer"
        user.set_password(DEMO_PASSWORD)
        user.save()
        profile, _ = Profile.objects.get_or_create(user=user)
        if not profile.display_name:
            profile.display_name = display_name
            profile.save(update_fields=["display_name"])
        return user
