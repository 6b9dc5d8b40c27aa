from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tracks", "0002_notification_email_batches"),
    ]

    operations = [
        migrations.AddField(
            model_name="render",
            name="heartbeat_at",
            field=models.DateTimeField(
                blank=True, help_text="Last sign of life of the worker rendering it", null=True
            ),
        ),
    ]
