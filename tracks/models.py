"""Tracks, their revisions (uploaded MIDI files), renders (audio variants) and the feedback thread.

Rows carry their own state (a render's status, error and attempts) so the web, the workers and the
periodic sweeper agree through the database; business rules live in ``tracks/services.py``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings
from django.db import models
from django.db.models import Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from tracks.rules import COMMENT_MAX, TEXT_MAX, TITLE_MAX


class Track(models.Model):
    producer = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tracks"
    )
    title = models.CharField(max_length=TITLE_MAX)
    genre = models.ForeignKey("performers.Genre", on_delete=models.PROTECT, related_name="tracks")
    description = models.TextField(blank=True, max_length=TEXT_MAX)
    is_public = models.BooleanField(default=True)
    current_revision = models.ForeignKey(
        "tracks.Revision", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The variant the producer recommends (a suggestion's settings applied), or None.
    recommended_settings = models.JSONField(null=True, blank=True)
    # The sound set (a slug of settings.SOUND_SETS) renders use when they name none; "" = the site's.
    default_sound = models.CharField(max_length=40, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["is_public", "-created_at"], name="track_public_recent")]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        try:
            return reverse("tracks:detail", kwargs={"pk": self.pk})
        except NoReverseMatch:
            return f"/tracks/{self.pk}/"


def revision_upload_to(instance: Revision, filename: str) -> str:
    return f"arrangements/{instance.track_id}/r{instance.number}.mid"


class Revision(models.Model):
    track = models.ForeignKey(Track, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    midi = models.FileField(upload_to=revision_upload_to, max_length=255)
    original_filename = models.CharField(max_length=255, blank=True)
    midi_sha256 = models.CharField(max_length=64)
    notes = models.TextField(blank=True, max_length=TEXT_MAX)
    analysis = models.JSONField(default=dict)
    # The producer's corrected sections ([{name, start_bar}, ...]); null: the analysis' sections.
    sections = models.JSONField(null=True, blank=True)
    # Measured loudness of the parts per sound set ({slug: LoudnessProfile.to_dict()}): streamed
    # renders master at a gain predicted from it. Never shown; kept out of the API.
    loudness = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="revisions"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["track", "-number"]
        constraints = [models.UniqueConstraint(fields=["track", "number"], name="revision_unique_number")]

    def __str__(self) -> str:
        return f"{self.track} r{self.number}"

    @property
    def parts(self) -> list[dict[str, Any]]:
        return list(self.analysis.get("parts", []))


class RenderStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RENDERING = "rendering", "Rendering"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


ACTIVE_RENDER_STATUSES = (RenderStatus.QUEUED, RenderStatus.RENDERING)


class Render(models.Model):
    """One audio variant of one revision; identical settings on one revision exist once."""

    revision = models.ForeignKey(Revision, on_delete=models.CASCADE, related_name="renders")
    settings = models.JSONField(help_text="Normalised VariantSettings.to_dict()")
    settings_hash = models.CharField(max_length=64)
    stem_key = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=10, choices=RenderStatus.choices, default=RenderStatus.QUEUED)
    error = models.TextField(blank=True)
    progress = models.FloatField(default=0.0)
    attempts = models.PositiveSmallIntegerField(default=0)
    task_id = models.CharField(max_length=64, blank=True)
    audio = models.FileField(blank=True, max_length=255)
    audio_size = models.BigIntegerField(default=0)
    duration_s = models.FloatField(null=True, blank=True)
    key = models.CharField(max_length=20, blank=True)
    tempo_bpm = models.FloatField(null=True, blank=True)
    peaks = models.JSONField(default=list, blank=True)
    stems_reused = models.BooleanField(default=False)
    # Where the first listener of a streamed render starts (seconds): encoded first when it can be.
    listen_from = models.FloatField(default=0.0)
    requested_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="renders",
    )
    requesters = models.ManyToManyField(
        django_settings.AUTH_USER_MODEL, blank=True, related_name="requested_renders"
    )
    created_at = models.DateTimeField(default=timezone.now)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Last sign of life of the worker rendering it"
    )
    finished_at = models.DateTimeField(null=True, blank=True)
    last_accessed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["revision", "settings_hash"], name="render_unique_settings"),
            models.CheckConstraint(
                condition=Q(progress__gte=0.0, progress__lte=1.0), name="render_progress_0_1"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "last_accessed_at"], name="render_status_access"),
            models.Index(fields=["requested_by", "status"], name="render_requester_status"),
        ]

    def __str__(self) -> str:
        return f"render {self.pk} of {self.revision} ({self.status})"

    @property
    def transpose(self) -> int:
        return int(self.settings.get("transpose", 0))

    @property
    def tempo(self) -> float:
        return float(self.settings.get("tempo", 1.0))

    @property
    def click(self) -> bool:
        return bool(self.settings.get("click", False))

    @property
    def count_in(self) -> int:
        return int(self.settings.get("count_in", 0))

    @property
    def mix(self) -> dict[str, Any]:
        return dict(self.settings.get("mix", {}))

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_RENDER_STATUSES


class Comment(models.Model):
    """A remark on a track; ``at_bar``/``at_beat`` pin it to a musical position, not to seconds."""

    track = models.ForeignKey(Track, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="comments"
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="replies"
    )
    body = models.TextField(max_length=COMMENT_MAX)
    revision = models.ForeignKey(
        Revision, null=True, blank=True, on_delete=models.SET_NULL, related_name="comments"
    )
    render = models.ForeignKey(
        Render, null=True, blank=True, on_delete=models.SET_NULL, related_name="comments"
    )
    at_bar = models.IntegerField(null=True, blank=True)
    at_beat = models.FloatField(null=True, blank=True)
    resolved = models.BooleanField(default=False)
    resolved_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_in_revision = models.ForeignKey(
        Revision, null=True, blank=True, on_delete=models.SET_NULL, related_name="resolved_comments"
    )
    created_at = models.DateTimeField(default=timezone.now)
    edited_at = models.DateTimeField(null=True, blank=True)
    # A deleted comment that others replied to keeps its place in the thread, without its text.
    is_deleted = models.BooleanField(default=False)
    # A suggestion that can be heard: normalised render settings ("try it like this"), or None.
    settings = models.JSONField(null=True, blank=True)
    # The request whose "changes" step wrote this comment.
    track_request = models.ForeignKey(
        "tracks.TrackRequest", null=True, blank=True, on_delete=models.SET_NULL, related_name="comments"
    )

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(at_bar__isnull=True, at_beat__isnull=True)
                | Q(at_bar__isnull=False, at_beat__isnull=False),
                name="comment_position_complete",
            ),
        ]
        indexes = [models.Index(fields=["track", "parent", "resolved"], name="comment_thread")]

    def __str__(self) -> str:
        return f"comment {self.pk} on {self.track_id} by {self.author_id}"

    @property
    def has_position(self) -> bool:
        return self.at_bar is not None


class NotificationKind(models.TextChoices):
    COMMENT = "comment", "New comment"
    REPLY = "reply", "Reply"
    RESOLVED = "resolved", "Comment resolved"
    REOPENED = "reopened", "Comment reopened"
    RENDER_DONE = "render_done", "Render ready"
    RENDER_FAILED = "render_failed", "Render failed"
    REQUEST_NEW = "request_new", "New request"
    REQUEST_ACCEPTED = "request_accepted", "Request accepted"
    REQUEST_DECLINED = "request_declined", "Request declined"
    REQUEST_DELIVERED = "request_delivered", "Request delivered"
    REQUEST_CHANGES = "request_changes", "Changes requested"
    REQUEST_APPROVED = "request_approved", "Request approved"


class Notification(models.Model):
    recipient = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=20, choices=NotificationKind.choices)
    text = models.CharField(max_length=500)
    url = models.CharField(max_length=500, blank=True)
    read = models.BooleanField(default=False)
    # Emails are batched per recipient: a notification waits (email_pending) while its recipient was
    # emailed less than NOTIFICATION_EMAIL_INTERVAL_S ago, and goes out with the others in one digest.
    email_pending = models.BooleanField(default=False)
    emailed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["recipient", "read", "-created_at"], name="notification_inbox"),
            models.Index(fields=["email_pending", "recipient"], name="notification_email_pending"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.recipient_id}: {self.text}"


class RequestStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACCEPTED = "accepted", "Accepted"
    DELIVERED = "delivered", "Delivered"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    APPROVED = "approved", "Approved"
    DECLINED = "declined", "Declined"


ACTIVE_REQUEST_STATUSES = (
    RequestStatus.OPEN,
    RequestStatus.ACCEPTED,
    RequestStatus.DELIVERED,
    RequestStatus.CHANGES_REQUESTED,
)


class TrackRequest(models.Model):
    """A performer orders a track from a producer; its status moves only through services/requests.py."""

    performer = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="requests_made"
    )
    producer = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="requests_received"
    )
    title = models.CharField(max_length=TITLE_MAX)
    brief = models.TextField(max_length=TEXT_MAX)
    track = models.ForeignKey(
        Track, null=True, blank=True, on_delete=models.SET_NULL, related_name="requests"
    )
    key = models.CharField(max_length=20, blank=True)
    tempo_bpm = models.FloatField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=RequestStatus.choices, default=RequestStatus.OPEN)
    decline_reason = models.TextField(blank=True, max_length=TEXT_MAX)
    delivered_revision = models.ForeignKey(
        Revision, null=True, blank=True, on_delete=models.SET_NULL, related_name="requests"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        indexes = [
            models.Index(fields=["performer", "status"], name="request_performer_status"),
            models.Index(fields=["producer", "status"], name="request_producer_status"),
        ]

    def __str__(self) -> str:
        return f"request {self.pk} “{self.title}” ({self.status})"


# --- setlists ------------------------------------------------------------------------------------------


class Setlist(models.Model):
    """A performer's songs in order; ``share_token`` (blank = not shared) opens a read-only page."""

    owner = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="setlists"
    )
    name = models.CharField(max_length=TITLE_MAX)
    share_token = models.CharField(max_length=64, blank=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]

    def __str__(self) -> str:
        return f"setlist {self.pk} “{self.name}”"


class SetlistItem(models.Model):
    """One song of a setlist: a track (null once deleted), its variant settings and the gap after it."""

    setlist = models.ForeignKey(Setlist, on_delete=models.CASCADE, related_name="items")
    track = models.ForeignKey(Track, null=True, on_delete=models.SET_NULL, related_name="setlist_items")
    title = models.CharField(max_length=TITLE_MAX, help_text="the track's title when added (kept if deleted)")
    settings = models.JSONField(default=dict, help_text="render settings of this song's variant")
    gap_s = models.FloatField(default=0.0)
    position = models.PositiveIntegerField()

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return f"{self.position}. {self.title}"


class SetlistExportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RENDERING = "rendering", "Rendering"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class SetlistExport(models.Model):
    """A ZIP of numbered MP3s or one continuous MP3 of a setlist, made by a Celery task."""

    setlist = models.ForeignKey(Setlist, on_delete=models.CASCADE, related_name="exports")
    requested_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="setlist_exports"
    )
    format = models.CharField(max_length=12)
    status = models.CharField(
        max_length=12, choices=SetlistExportStatus.choices, default=SetlistExportStatus.QUEUED
    )
    progress = models.CharField(max_length=40, blank=True)
    error = models.TextField(blank=True)
    file = models.FileField(upload_to="setlists/", blank=True, max_length=255)
    file_size = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"export {self.pk} of setlist {self.setlist_id} ({self.status})"


class SavedArrangement(models.Model):
    """A performer's named arrangement of a track ("Encore version"): items as the render setting."""

    performer = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_arrangements"
    )
    track = models.ForeignKey(Track, on_delete=models.CASCADE, related_name="saved_arrangements")
    name = models.CharField(max_length=80)
    items = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["performer", "track", "name"], name="saved_arrangement_unique_name"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.track_id})"
