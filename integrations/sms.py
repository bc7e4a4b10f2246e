"""SMS backends, chosen by the SMS_BACKEND setting (as Django chooses e-mail backends).

A backend has one method, `send(message)`, which returns the provider's
message id or raises one of our errors: `InvalidPhoneNumberError`,
`ProviderError` (permanent) or `ProviderUnavailableError` (try later).
"""

import re
import sys
import threading
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.utils.module_loading import import_string

from .connections import release_database_connection

BACKENDS = {
    "console": "integrations.sms.ConsoleBackend",
    "locmem": "integrations.sms.LocmemBackend",
    "twilio": "integrations.twilio.TwilioBackend",
}


# A Twilio account SID; the twilio client puts it into the URL path unescaped,
# so nothing else may pass for one.
ACCOUNT_SID_SHAPE = re.compile(r"^AC[0-9a-fA-F]{32}$")


@dataclass(frozen=True)
class ProviderAccount:
    """Credentials sent with a request (the guide's accountSID/authToken/fromNumber)."""

    account_sid: str
    auth_token: str = field(repr=False)
    from_number: str = ""


@dataclass(frozen=True)
class SmsMessage:
    to: str  # E.164
    body: str = field(repr=False)  # holds the code: never log it
    channel: str = "sms"
    account: ProviderAccount | None = None
    status_callback: str | None = None


class BaseSmsBackend:
    """Sends one message; subclasses talk to a provider."""

    def send(self, message: SmsMessage) -> str:
        """Send `message`; return the provider's id for it."""
        raise NotImplementedError


class ConsoleBackend(BaseSmsBackend):
    """Writes messages to the server's standard output, for local use.

    This is the one place a code is shown in clear, on purpose: it stands in
    for the person's phone so the demo can be finished without Twilio.
    """

    def send(self, message: SmsMessage) -> str:
        sid = "CONSOLE" + uuid.uuid4().hex[:26]
        sys.stdout.write(
            f"\n----- {message.channel.upper()} to {message.to} -----\n{message.body}\n"
            f"----- end of message {sid} -----\n"
        )
        sys.stdout.flush()
        return sid


class LocmemBackend(BaseSmsBackend):
    """Keeps messages in `LocmemBackend.outbox`, for tests."""

    outbox: list[SmsMessage] = []
    _lock = threading.Lock()

    def send(self, message: SmsMessage) -> str:
        with self._lock:
            type(self).outbox.append(message)
        return "LOCMEM" + uuid.uuid4().hex[:26]


def get_backend() -> BaseSmsBackend:
    path = BACKENDS.get(settings.SMS_BACKEND, settings.SMS_BACKEND)
    return import_string(path)()


def send_message(message: SmsMessage) -> str:
    """Send through the configured backend, holding no pooled database connection meanwhile."""
    release_database_connection()
    return get_backend().send(message)
