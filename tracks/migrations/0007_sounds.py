from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("tracks", "0006_setlists")]

    operations = [
        migrations.AddField(
            model_name="track",
            name="default_sound",
            field=models.CharField(blank=True, default="", max_length=40),
        ),
    ]
