from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The REST API app; its models are the stored backtest runs and simulated orders."""

    name = "dashboard.api"
    label = "api"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import schema  # noqa: F401 - registers the token's OpenAPI description
