import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tracks", "0004_sections"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="comment",
            name="settings",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="track",
            name="recommended_settings",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="notification",
            name="kind",
            field=models.CharField(
                choices=[
                    ("comment", "New comment"),
                    ("reply", "Reply"),
                    ("resolved", "Comment resolved"),
                    ("reopened", "Comment reopened"),
                    ("render_done", "Render ready"),
                    ("render_failed", "Render failed"),
                    ("request_new", "New request"),
                    ("request_accepted", "Request accepted"),
                    ("request_declined", "Request declined"),
                    ("request_delivered", "Request delivered"),
                    ("request_changes", "Changes requested"),
                    ("request_approved", "Request approved"),
                ],
                max_length=20,
            ),
        ),
        migrations.CreateModel(
            name="TrackRequest",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("title", models.CharField(max_length=200)),
                ("brief", models.TextField(max_length=4000)),
                ("key", models.CharField(blank=True, max_length=20)),
                ("tempo_bpm", models.FloatField(blank=True, null=True)),
                ("due_date", models.DateField(blank=True, null=True)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("open", "Open"),
                            ("accepted", "Accepted"),
                            ("delivered", "Delivered"),
                            ("changes_requested", "Changes requested"),
                            ("approved", "Approved"),
                            ("declined", "Declined"),
                        ],
                        default="open",
                        max_length=20,
                    ),
                ),
                ("decline_reason", models.TextField(blank=True, max_length=4000)),
                ("approved_at", models.DateTimeField(blank=True, null=True)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "delivered_revision",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="requests",
                        to="tracks.revision",
                    ),
                ),
                (
                    "performer",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="requests_made",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "producer",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="requests_received",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "track",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="requests",
                        to="tracks.track",
                    ),
                ),
            ],
            options={"ordering": ["-updated_at", "-id"]},
        ),
        migrations.AddField(
            model_name="comment",
            name="track_request",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="comments",
                to="tracks.trackrequest",
            ),
        ),
        migrations.AddIndex(
            model_name="trackrequest",
            index=models.Index(fields=["performer", "status"], name="request_performer_status"),
        ),
        migrations.AddIndex(
            model_name="trackrequest",
            index=models.Index(fields=["producer", "status"], name="request_producer_status"),
        ),
    ]
