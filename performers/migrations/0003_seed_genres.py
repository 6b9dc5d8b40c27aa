from django.db import migrations

GENRES = [
    ("pop", "Pop"),
    ("rock", "Rock"),
    ("ballad", "Ballad"),
    ("jazz", "Jazz"),
    ("blues", "Blues"),
    ("soul", "Soul & R&B"),
    ("country", "Country"),
    ("folk", "Folk"),
    ("musical", "Musical theatre"),
    ("gospel", "Gospel"),
    ("latin", "Latin"),
    ("electronic", "Electronic"),
    ("hip-hop", "Hip-hop"),
    ("classical", "Classical"),
    ("other", "Other"),
]


def seed_genres(apps, schema_editor):
    Genre = apps.get_model("performers", "Genre")
    for slug, name in GENRES:
        Genre.objects.update_or_create(slug=slug, defaults={"name": name})


def unseed_genres(apps, schema_editor):
    Genre = apps.get_model("performers", "Genre")
    Genre.objects.filter(slug__in=[slug for slug, _ in GENRES], tracks__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("performers", "0002_initial")]

    operations = [migrations.RunPython(seed_genres, unseed_genres)]
