"""Input and output shapes of the accounts API (one small serializer per direction)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from performers.models import Genre, Profile, User
from tracks.engine import note_name


def note_or_none(value: int | None) -> str | None:
    return note_name(value) if value is not None else None


class RegisterInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(write_only=True, style={"input_type": "password"}, max_length=128)
    email = serializers.EmailField(required=False, allow_blank=True)
    role = serializers.ChoiceField(choices=["performer", "producer"])


class TokenInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(write_only=True, style={"input_type": "password"}, max_length=128)


class TokenOutputSerializer(serializers.Serializer):
    token = serializers.CharField()


class GenreSerializer(serializers.ModelSerializer):
    class Meta:
        model = Genre
        fields = ["slug", "name"]


class MeOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=["performer", "producer"])
    roles = serializers.ListField(child=serializers.CharField())
    display_name = serializers.CharField()
    vocal_low = serializers.CharField(allow_null=True, help_text="scientific pitch name, e.g. G3")
    vocal_high = serializers.CharField(allow_null=True, help_text="scientific pitch name, e.g. C5")
    genres = serializers.ListField(child=serializers.SlugField(), help_text="genre slugs")
    bio = serializers.CharField()
    share_vocal_range = serializers.BooleanField(
        help_text="whether others may see your vocal range (and key suggestions made for it)"
    )

    @staticmethod
    def from_profile(profile: Profile) -> dict[str, Any]:
        user: User = profile.user
        return {
            "id": user.pk,
            "username": user.username,
            "email": user.email,
            "role": user.role,
            "roles": user.roles,
            "display_name": profile.display_name,
            "vocal_low": note_or_none(profile.vocal_low),
            "vocal_high": note_or_none(profile.vocal_high),
            "genres": [genre.slug for genre in profile.genres.all()],
            "bio": profile.bio,
            "share_vocal_range": profile.share_vocal_range,
        }


class RegisterOutputSerializer(MeOutputSerializer):
    token = serializers.CharField()


class MeInputSerializer(serializers.Serializer):
    display_name = serializers.CharField(required=False, allow_blank=True, max_length=80)
    vocal_low = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=8)
    vocal_high = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=8)
    genres = serializers.ListField(child=serializers.SlugField(), required=False, max_length=50)
    bio = serializers.CharField(required=False, allow_blank=True, max_length=4000)
    share_vocal_range = serializers.BooleanField(required=False)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        values = super().to_internal_value(data)
        # null clears a note, like "" does; the service treats None as "unchanged".
        for field in ("vocal_low", "vocal_high"):
            if field in values and values[field] is None:
                values[field] = ""
        return values


class ChosenKeyOutputSerializer(serializers.Serializer):
    track = serializers.IntegerField(source="track_id")
    track_title = serializers.CharField(source="track.title")
    transpose = serializers.IntegerField()
    updated_at = serializers.DateTimeField()
