"""System checks (`manage.py check`) for settings that would fail only at send time."""

from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Warning

TWILIO_BACKENDS = {"twilio", "integrations.twilio.TwilioBackend"}


def check_twilio_credentials(
    app_configs: list[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Warn when Twilio is the backend but the server has no credentials.

    A warning, not an error: bots may send their own accountSID/authToken/
    fromNumber with each request, and then the server needs none.
    """
    if settings.SMS_BACKEND not in TWILIO_BACKENDS:
        return []
    missing = [
        name for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN") if not getattr(settings, name)
    ]
    if not (settings.TWILIO_FROM_NUMBER or settings.TWILIO_MESSAGING_SERVICE_SID):
        missing.append("TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID")
    if not missing:
        return []
    return [
        Warning(
            f"SMS_BACKEND is twilio but {', '.join(missing)} is not set.",
            hint="Set them in the environment; until then only sends that carry their own "
            "accountSID, authToken and fromNumber can succeed.",
            id="integrations.W001",
        )
    ]
