from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        from django.core import checks

        from .checks import check_twilio_settings

        checks.register(check_twilio_settings)
