from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        from django.core import checks
        from django.db.models.signals import post_delete, post_save

        from .auth import forget_validated_keys
        from .checks import check_twilio_settings
        from .models import Bot, BotAPIKey

        checks.register(check_twilio_settings)
        # A key revoked, expired or deleted in the admin stops working at once.
        for signal in (post_save, post_delete):
            for model in (Bot, BotAPIKey):
                signal.connect(forget_validated_keys, sender=model, weak=False)
