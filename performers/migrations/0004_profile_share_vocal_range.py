from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("performers", "0003_seed_genres"),
    ]

    operations = [
        migrations.AddField(
            model_name="profile",
            name="share_vocal_range",
            field=models.BooleanField(default=False),
        ),
    ]
