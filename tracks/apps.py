from django.apps import AppConfig


class TracksConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "tracks"
    verbose_name = "Tracks"

    def ready(self) -> None:
        from tracks import checks  # noqa: F401  (registers the system checks)
