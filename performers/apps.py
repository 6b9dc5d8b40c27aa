from django.apps import AppConfig


class PerformersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "performers"
    verbose_name = "Performers"
