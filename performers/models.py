"""Accounts and performer profiles.

A user may be a performer, a producer or both (two flags); ``role`` is the single name the API shows.
Vocal ranges are stored as MIDI note numbers and shown as scientific pitch names ("G3").
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import F, Q

# C1 and C7: the range a human voice (or any sensible instrument profile) can be given.
NOTE_MIN = 24
NOTE_MAX = 96


class User(AbstractUser):
    is_performer = models.BooleanField(default=False)
    is_producer = models.BooleanField(default=False)

    @property
    def role(self) -> str:
        """The role the API reports; a user who is both is shown as a producer (the wider rights)."""
        return "producer" if self.is_producer else "performer"

    @property
    def display_name(self) -> str:
        """How the user is shown everywhere (pages, API, emails): the profile's name, else the username."""
        profile = getattr(self, "profile", None)
        return (profile.display_name if profile is not None else "") or self.username

    @property
    def roles(self) -> list[str]:
        return [
            name for name, flag in (("performer", self.is_performer), ("producer", self.is_producer)) if flag
        ]


class Genre(models.Model):
    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=60)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Profile(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    display_name = models.CharField(max_length=80, blank=True)
    vocal_low = models.PositiveSmallIntegerField(null=True, blank=True, help_text="MIDI note number")
    vocal_high = models.PositiveSmallIntegerField(null=True, blank=True, help_text="MIDI note number")
    genres = models.ManyToManyField(Genre, blank=True, related_name="profiles")
    bio = models.TextField(blank=True, max_length=4000)
    # A vocal range is private: others see it (and suggestions made from it) only when this is on.
    share_vocal_range = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(vocal_low__isnull=True)
                | Q(vocal_high__isnull=True)
                | Q(vocal_low__lt=F("vocal_high")),
                name="profile_vocal_low_below_high",
            ),
            models.CheckConstraint(
                condition=Q(vocal_low__isnull=True) | Q(vocal_low__gte=NOTE_MIN, vocal_low__lte=NOTE_MAX),
                name="profile_vocal_low_in_bounds",
            ),
            models.CheckConstraint(
                condition=Q(vocal_high__isnull=True) | Q(vocal_high__gte=NOTE_MIN, vocal_high__lte=NOTE_MAX),
                name="profile_vocal_high_in_bounds",
            ),
        ]

    def __str__(self) -> str:
        return self.user.display_name

    @property
    def name(self) -> str:
        return self.user.display_name

    @property
    def has_vocal_range(self) -> bool:
        return self.vocal_low is not None and self.vocal_high is not None


class ChosenKey(models.Model):
    """The transposition a performer last chose for a track, offered again next time."""

    performer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chosen_keys"
    )
    track = models.ForeignKey("tracks.Track", on_delete=models.CASCADE, related_name="chosen_keys")
    transpose = models.SmallIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            models.UniqueConstraint(fields=["performer", "track"], name="chosen_key_unique_per_track"),
            models.CheckConstraint(
                condition=Q(transpose__gte=-12, transpose__lte=12), name="chosen_key_transpose_in_bounds"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.performer} / {self.track_id}: {self.transpose:+d}"
