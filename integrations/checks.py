"""System checks (`manage.py check`) for settings that would fail only at send time."""

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Warning

TWILIO_BACKENDS = {"twilio", "integrations.twilio.TwilioBackend"}


def check_twilio_settings(
    app_configs: list[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Warn when Twilio is the backend but the server has no credentials.

    A warning, not an error: bots may send their own accountSID/authToken/
    fromNumber with each request, and then the server needs none.
    """
    if settings.SMS_BACKEND not in TWILIO_BACKENDS:
        return []
    messages: list[CheckMessage] = []
    missing = [
        name for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN") if not getattr(settings, name)
    ]
    if not (settings.TWILIO_FROM_NUMBER or settings.TWILIO_MESSAGING_SERVICE_SID):
        missing.append("TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID")
    if missing:
        messages.append(
            Warning(
                f"SMS_BACKEND is twilio but {', '.join(missing)} is not set.",
                hint="Set them in the environment; until then only sends that carry their own "
                "accountSID, authToken and fromNumber can succeed.",
                id="integrations.W001",
            )
        )
    if _sends_credentials_in_clear(settings.TWILIO_API_BASE_URL):
        messages.append(
            Warning(
                "TWILIO_API_BASE_URL is plain http to another machine: the auth token "
                "would cross the network in clear.",
                hint="Use https, or a fake Twilio on loopback for tests.",
                id="integrations.W002",
            )
        )
    return messages


def _sends_credentials_in_clear(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname == "localhost":
        return False
    try:
        return not ipaddress.ip_address(parts.hostname or "").is_loopback
    except ValueError:
        return True  # a name other than localhost: assume another machine
