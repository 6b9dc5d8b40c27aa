"""Input and output shapes of the tracks API (one small serializer per direction)."""

from __future__ import annotations

from typing import Any, cast

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tracks import rules, selectors
from tracks.models import Comment, Notification, Render, RenderStatus, Revision, Track
from tracks.services.dynamics import render_dynamics
from tracks.services.sounds import render_effective_mix

# --- tracks and revisions ----------------------------------------------------------------------


class UserBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    username = serializers.CharField()
    display_name = serializers.CharField()


class RevisionOutputSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None)
    analysis = serializers.JSONField(help_text="As printed by `manage.py analyze`")

    class Meta:
        model = Revision
        fields = [
            "id",
            "track",
            "number",
            "notes",
            "analysis",
            "original_filename",
            "created_by",
            "created_at",
        ]


class RevisionBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.IntegerField()
    key = serializers.CharField(source="analysis.key", default="")
    tempo_bpm = serializers.FloatField(source="analysis.tempo_bpm", default=None)
    duration_s = serializers.FloatField(source="analysis.duration_s", default=None)
    time_signature = serializers.CharField(source="analysis.time_signature", default="")
    created_at = serializers.DateTimeField()


class TrackOutputSerializer(serializers.ModelSerializer):
    genre: serializers.SlugRelatedField = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    genre_name = serializers.CharField(source="genre.name")
    producer = UserBriefSerializer()
    current_revision = RevisionOutputSerializer(allow_null=True)

    class Meta:
        model = Track
        fields = [
            "id",
            "title",
            "genre",
            "genre_name",
            "description",
            "is_public",
            "producer",
            "current_revision",
            "default_sound",
            "created_at",
            "updated_at",
        ]


class TrackListOutputSerializer(TrackOutputSerializer):
    current_revision = RevisionBriefSerializer(allow_null=True)  # type: ignore[assignment]


class TrackPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = TrackListOutputSerializer(many=True)


class TrackListFilterSerializer(serializers.Serializer):
    """Query parameters of the track list (CharField refuses NUL characters, which Postgres cannot store)."""

    genre = serializers.CharField(required=False, allow_blank=True)
    q = serializers.CharField(required=False, allow_blank=True)


class TrackCreateInputSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=rules.TITLE_MAX)
    genre = serializers.SlugField(help_text="genre slug, see /api/genres/")
    midi = serializers.FileField(help_text="Standard MIDI File, at most MIDI_MAX_BYTES")
    description = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=rules.TEXT_MAX
    )
    is_public = serializers.BooleanField(required=False, default=True)


class TrackUpdateInputSerializer(serializers.Serializer):
    title = serializers.CharField(required=False, max_length=rules.TITLE_MAX)
    genre = serializers.SlugField(required=False)
    description = serializers.CharField(required=False, allow_blank=True, max_length=rules.TEXT_MAX)
    is_public = serializers.BooleanField(required=False)
    default_sound = serializers.CharField(required=False, allow_blank=True, max_length=40)


class RevisionCreateInputSerializer(serializers.Serializer):
    midi = serializers.FileField()
    notes = serializers.CharField(required=False, allow_blank=True, default="", max_length=rules.TEXT_MAX)


class KeySuggestionSerializer(serializers.Serializer):
    transpose = serializers.IntegerField()
    key = serializers.CharField()
    fits = serializers.BooleanField()
    melody_low = serializers.CharField()
    melody_high = serializers.CharField()
    out_of_range = serializers.IntegerField(help_text="melody notes still outside the range")
    out_of_range_share = serializers.FloatField(required=False, help_text="share of melody time outside")


class KeySuggestionsOutputSerializer(serializers.Serializer):
    current_key = serializers.CharField()
    revision = serializers.IntegerField(help_text="revision number")
    melody_part = serializers.IntegerField(allow_null=True)
    vocal_low = serializers.CharField()
    vocal_high = serializers.CharField()
    chosen_transpose = serializers.IntegerField(
        allow_null=True, help_text="the requester's remembered choice"
    )
    suggestions = KeySuggestionSerializer(many=True)


class TrackChosenKeyInputSerializer(serializers.Serializer):
    transpose = serializers.IntegerField(min_value=-12, max_value=12)


class TrackChosenKeyOutputSerializer(serializers.Serializer):
    track = serializers.IntegerField()
    transpose = serializers.IntegerField()


# --- renders -----------------------------------------------------------------------------------


class PartMixSerializer(serializers.Serializer):
    gain_db = serializers.FloatField(required=False, default=0.0)
    mute = serializers.BooleanField(required=False, default=False)
    solo = serializers.BooleanField(required=False, default=False)


class RenderCreateInputSerializer(serializers.Serializer):
    revision = serializers.IntegerField(required=False, help_text="revision id; or give `track`")
    track = serializers.IntegerField(required=False, help_text="track id: its current revision")
    transpose = serializers.IntegerField(required=False, default=0, help_text="-12..12 semitones")
    tempo = serializers.FloatField(required=False, default=1.0, help_text="0.5..1.5")
    mix = serializers.DictField(
        child=PartMixSerializer(),
        required=False,
        default=dict,
        help_text='{"<part index>": {gain_db, mute, solo}}',
    )
    click = serializers.BooleanField(required=False, default=False)
    count_in = serializers.IntegerField(required=False, default=0, help_text="0..4 bars")
    format = serializers.CharField(required=False, default="mp3", help_text="mp3, wav, flac, stems, midi")
    layout = serializers.CharField(required=False, default="stereo", help_text="stereo, or split")
    cues = serializers.BooleanField(required=False, default=False, help_text="spoken count-in and sections")
    sound = serializers.CharField(required=False, allow_blank=True, help_text="a slug of GET /api/sounds/")
    preset = serializers.CharField(
        required=False, allow_blank=True, help_text="full, unplugged, groove or ambient"
    )
    space_for_voice = serializers.FloatField(
        required=False, help_text="dB 0..12 the accompaniment gives way in the voice's band"
    )
    arrangement = serializers.JSONField(
        required=False, help_text='sections or bar ranges in order: ["Intro", "Chorus x2", "17-24"]'
    )
    dynamics = serializers.JSONField(
        required=False, help_text='section levels in dB (-12..+6), {"Verse": -4, "Chorus": 2}, or "build"'
    )

    listen_from = serializers.FloatField(
        required=False,
        min_value=0.0,
        max_value=24 * 3600,
        help_text="seconds: where a listener of stream_url will start (encoded first when it can be)",
    )

    def validate_mix(self, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not (str(key).isascii() and str(key).isdigit()):
                raise serializers.ValidationError(f"mix keys are part indexes, not {key!r}")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("revision") is None and attrs.get("track") is None:
            raise serializers.ValidationError("give a revision or a track")
        return attrs


class RenderListFilterSerializer(serializers.Serializer):
    status = serializers.CharField(required=False, allow_blank=True)


class RenderOutputSerializer(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()
    stream_url = serializers.SerializerMethodField()
    key = serializers.SerializerMethodField()
    tempo_bpm = serializers.SerializerMethodField()
    transpose = serializers.IntegerField()
    tempo = serializers.FloatField()
    mix = serializers.JSONField()
    click = serializers.BooleanField()
    count_in = serializers.IntegerField()
    format = serializers.CharField(source="settings.format", default="mp3")
    layout = serializers.CharField(source="settings.layout", default="stereo")
    cues = serializers.BooleanField(source="settings.cues", default=False)
    sound = serializers.CharField(source="settings.sound", default="")
    preset = serializers.CharField(source="settings.preset", default="")
    space_for_voice = serializers.FloatField(source="settings.space_for_voice", default=0.0)
    arrangement = serializers.ListField(
        child=serializers.CharField(), source="settings.arrangement", default=list, read_only=True
    )
    effective_mix = serializers.SerializerMethodField()
    dynamics = serializers.SerializerMethodField()
    dynamics_played = serializers.SerializerMethodField()
    revision_number = serializers.IntegerField(source="revision.number")
    track = serializers.IntegerField(source="revision.track_id")
    filename = serializers.SerializerMethodField()

    class Meta:
        model = Render
        fields = [
            "id",
            "status",
            "error",
            "progress",
            "download_url",
            "stream_url",
            "filename",
            "key",
            "tempo_bpm",
            "duration_s",
            "transpose",
            "tempo",
            "mix",
            "click",
            "count_in",
            "format",
            "layout",
            "cues",
            "sound",
            "preset",
            "space_for_voice",
            "arrangement",
            "effective_mix",
            "dynamics",
            "dynamics_played",
            "revision",
            "revision_number",
            "track",
            "attempts",
            "stems_reused",
            "created_at",
            "finished_at",
        ]

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_download_url(self, render: Render) -> str | None:
        if render.status != RenderStatus.DONE:
            return None
        path = reverse("api-render-download", kwargs={"pk": render.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_stream_url(self, render: Render) -> str | None:
        """MP3 renders play while they render (``?from=SECONDS`` starts there); other formats do not."""
        if not selectors.render_streams(render=render):
            return None
        path = reverse("api-render-stream", kwargs={"pk": render.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    def get_key(self, render: Render) -> str:
        return selectors.render_key(render=render)

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_tempo_bpm(self, render: Render) -> float | None:
        return selectors.render_tempo_bpm(render=render)

    def get_filename(self, render: Render) -> str:
        return selectors.render_download_filename(render=render)

    @extend_schema_field(serializers.DictField(child=serializers.DictField()))
    def get_effective_mix(self, render: Render) -> dict[str, dict[str, Any]]:
        """The mix played: the preset's with the render's own mix entries over it."""
        return render_effective_mix(render=render)

    @extend_schema_field(serializers.JSONField())
    def get_dynamics(self, render: Render) -> dict[str, float] | str:
        """Section levels in dB, "build", or "" (as written)."""
        return (render.settings or {}).get("dynamics") or ""

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_dynamics_played(self, render: Render) -> dict[str, Any] | None:
        """What the dynamics play: for "build", the section levels it chose (null: as written)."""
        return render_dynamics(render=render)


class RenderDetailOutputSerializer(RenderOutputSerializer):
    peaks = serializers.ListField(child=serializers.FloatField(), help_text="waveform peaks 0..1")

    class Meta(RenderOutputSerializer.Meta):
        fields = [*RenderOutputSerializer.Meta.fields, "peaks"]


class RenderPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = RenderOutputSerializer(many=True)


# --- comments ----------------------------------------------------------------------------------


class PositionSerializer(serializers.Serializer):
    bar = serializers.IntegerField(allow_null=True)
    beat = serializers.FloatField(allow_null=True)
    seconds = serializers.FloatField(allow_null=True, help_text="in the render being viewed (?render=ID)")


class CommentOutputSerializer(serializers.ModelSerializer):
    """Needs ``context["viewer"]`` (user), ``context["render"]`` (or None) and ``context["timelines"]``."""

    author = UserBriefSerializer()
    body = serializers.CharField(help_text="plain text; escape it when showing it")
    revision_number = serializers.IntegerField(source="revision.number", default=None)
    at = serializers.SerializerMethodField()
    at_seconds = serializers.SerializerMethodField()
    resolved_by = serializers.CharField(source="resolved_by.username", default=None)
    resolved_in_revision = serializers.IntegerField(source="resolved_in_revision.number", default=None)
    can_edit = serializers.SerializerMethodField()
    can_resolve = serializers.SerializerMethodField()
    settings = serializers.JSONField(allow_null=True, help_text="suggested render settings, or null")
    settings_summary = serializers.SerializerMethodField()
    listen_url = serializers.SerializerMethodField()

    class Meta:
        model = Comment
        fields = [
            "id",
            "track",
            "parent",
            "author",
            "body",
            "revision",
            "revision_number",
            "render",
            "at",
            "at_seconds",
            "resolved",
            "resolved_by",
            "resolved_at",
            "resolved_in_revision",
            "is_deleted",
            "created_at",
            "edited_at",
            "can_edit",
            "can_resolve",
            "settings",
            "settings_summary",
            "listen_url",
        ]

    def _position(self, comment: Comment) -> dict[str, Any]:
        context = cast(dict[str, Any], self.context)
        cache = context.setdefault("positions", {})
        if comment.pk not in cache:
            render = context.get("render") or comment.render
            cache[comment.pk] = selectors.comment_position(
                comment=comment, render=render, timelines=context.setdefault("timelines", {})
            )
        return cache[comment.pk]

    @extend_schema_field(PositionSerializer(allow_null=True))
    def get_at(self, comment: Comment) -> dict[str, Any] | None:
        return self._position(comment) if comment.has_position else None

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_at_seconds(self, comment: Comment) -> float | None:
        return self._position(comment)["seconds"] if comment.has_position else None

    def get_can_edit(self, comment: Comment) -> bool:
        viewer = self.context.get("viewer")
        return bool(
            viewer and viewer.is_authenticated and viewer.pk == comment.author_id and not comment.is_deleted
        )

    def get_settings_summary(self, comment: Comment) -> str:
        return selectors.comment_settings_summary(comment=comment)

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_listen_url(self, comment: Comment) -> str | None:
        if comment.settings is None or comment.is_deleted:
            return None
        path = reverse("api-comment-listen", kwargs={"pk": comment.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    def get_can_resolve(self, comment: Comment) -> bool:
        viewer = self.context.get("viewer")
        return bool(
            viewer
            and viewer.is_authenticated
            and comment.parent_id is None
            and viewer.pk in (comment.author_id, comment.track.producer_id)
        )


class CommentThreadOutputSerializer(CommentOutputSerializer):
    replies = CommentOutputSerializer(many=True)

    class Meta(CommentOutputSerializer.Meta):
        fields = [*CommentOutputSerializer.Meta.fields, "replies"]


class CommentPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = CommentThreadOutputSerializer(many=True)


class CommentCreateInputSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=rules.COMMENT_MAX)
    # DRF's metaclass moves declared fields off the class, so "parent" does not shadow Field.parent.
    parent = serializers.IntegerField(required=False, allow_null=True)  # type: ignore[assignment]
    revision = serializers.IntegerField(required=False, allow_null=True, help_text="revision id")
    render = serializers.IntegerField(required=False, allow_null=True, help_text="render id")
    at_seconds = serializers.FloatField(required=False, allow_null=True, min_value=0.0)
    settings = serializers.JSONField(required=False, allow_null=True, help_text="render settings to suggest")


class CommentUpdateInputSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=rules.COMMENT_MAX)


class CommentResolveInputSerializer(serializers.Serializer):
    resolved = serializers.BooleanField(required=False, default=True)
    revision = serializers.IntegerField(
        required=False, allow_null=True, help_text="resolved in this revision id"
    )


# --- notifications -----------------------------------------------------------------------------


class NotificationOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = ["id", "kind", "text", "url", "read", "created_at"]


class NotificationPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = NotificationOutputSerializer(many=True)


class NotificationReadInputSerializer(serializers.Serializer):
    # Bounded like the ids themselves (64-bit), so a huge number is a 400, not a database overflow.
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), required=False, allow_null=True
    )


class NotificationReadOutputSerializer(serializers.Serializer):
    marked = serializers.IntegerField()
