import uuid
from collections.abc import Iterator

import pytest
from rest_framework.test import APIClient

from integrations.models import Bot, BotAPIKey
from integrations.sms import LocmemBackend
from tests.fake_twilio import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    DEFAULT_FROM_NUMBER,
    FakeTwilio,
)


@pytest.fixture(autouse=True)
def outbox() -> list:
    """The locmem SMS backend's outbox, emptied for each test."""
    LocmemBackend.outbox.clear()
    return LocmemBackend.outbox


@pytest.fixture(autouse=True)
def cache_keys_of_its_own(settings) -> None:
    """Each test counts in cache keys of its own.

    Redis outlives a test's rollback (and a run), and on SQLite ids start again
    at 1 in every test: two tests' bots would otherwise share one send count.
    """
    default = {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}
    settings.CACHES = {**settings.CACHES, "default": default}


@pytest.fixture
def fake_twilio(settings) -> Iterator[FakeTwilio]:
    """A fake Twilio on loopback, with the twilio backend and server credentials pointed at it."""
    with FakeTwilio(accounts={DEFAULT_ACCOUNT_SID: DEFAULT_AUTH_TOKEN}) as fake:
        settings.SMS_BACKEND = "twilio"
        settings.TWILIO_API_BASE_URL = fake.url
        settings.TWILIO_ACCOUNT_SID = DEFAULT_ACCOUNT_SID
        settings.TWILIO_AUTH_TOKEN = DEFAULT_AUTH_TOKEN
        settings.TWILIO_FROM_NUMBER = DEFAULT_FROM_NUMBER
        settings.TWILIO_MESSAGING_SERVICE_SID = ""
        yield fake


@pytest.fixture
def bot(db) -> Bot:
    return Bot.objects.create(name="Support bot")


@pytest.fixture
def api_key(bot) -> str:
    _, key = BotAPIKey.objects.create_key(bot=bot, name="test")
    return key


@pytest.fixture
def api(api_key) -> APIClient:
    """An API client authenticated as `bot`."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key}")
    return client


@pytest.fixture
def other_api(db) -> APIClient:
    """An API client of another bot."""
    other = Bot.objects.create(name="Other bot")
    _, key = BotAPIKey.objects.create_key(bot=other, name="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


def code_in(message) -> str:
    """The code in an SMS, as the person reads it on the phone."""
    return "".join(ch for ch in message.body.split(" is ")[1].split(".")[0] if ch.isdigit())
