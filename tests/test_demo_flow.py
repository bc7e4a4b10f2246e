"""The demo flow end to end: a bot drives it over REST; its API steps call this server over HTTP.

`setup_demo` points the demo's Send OTP / Verify OTP definitions at
PUBLIC_BASE_URL, here the live test server, so every API step is a real HTTP
request through the executor; the code is read from the locmem outbox.
"""

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from rest_framework.test import APIClient

from chatflows import demo, engine
from chatflows.models import Flow
from integrations.management.commands.setup_demo import DEMO_BOT
from integrations.models import ApiCallLog, Bot, BotAPIKey
from tests.conftest import code_in

PHONE = "+14155552671"

pytestmark = pytest.mark.django_db(transaction=True)


class Chat:
    """A bot's side of one conversation."""

    def __init__(self, client: APIClient, flow: Flow) -> None:
        self.client = client
        response = client.post(f"/api/v1/flows/{flow.pk}/conversations", {}, format="json")
        assert response.status_code == 201, response.json()
        self.last = response.json()

    def say(self, text: str) -> dict:
        response = self.client.post(
            f"/api/v1/conversations/{self.last['id']}/messages", {"text": text}, format="json"
        )
        assert response.status_code == 200, response.json()
        self.last = response.json()
        return self.last

    @property
    def texts(self) -> list[str]:
        return [m["text"] for m in self.last["messages"] if m["type"] == "text"]


@pytest.fixture
def chat(live_server, settings):
    settings.PUBLIC_BASE_URL = live_server.url
    settings.INTEGRATIONS_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1", "localhost"]
    call_command("setup_demo", stdout=StringIO())
    call_command("setup_demo_flow", stdout=StringIO())
    bot = Bot.objects.get(name=DEMO_BOT)
    _, key = BotAPIKey.objects.create_key(bot=bot, name="demo flow test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    flow = Flow.objects.get(bot=bot, slug=demo.DEMO_FLOW_SLUG)
    return lambda: Chat(client, flow)


def wrong(code: str) -> str:
    return "0" * len(code) if code != "0" * len(code) else "1" * len(code)


def test_the_demo_welcomes_and_asks_for_the_phone(chat):
    conversation = chat()
    assert conversation.texts[0].startswith("Hi!")
    assert conversation.last["expects"] == "phone"


def test_the_demo_sends_a_code_waits_and_asks_for_it(chat, outbox):
    conversation = chat()
    body = conversation.say(PHONE)
    assert len(outbox) == 1
    assert outbox[0].to == PHONE
    assert {"type": "delay", "seconds": 5} in body["messages"]
    assert body["expects"] == "code"
    assert body["attributes"]["phone"] == PHONE


def test_the_demo_verifies_the_number_with_the_code_from_the_sms(chat, outbox):
    conversation = chat()
    conversation.say(PHONE)
    body = conversation.say(code_in(outbox[0]))
    assert conversation.texts == [demo.VERIFIED_TEXT]
    assert body["status"] == "finished"
    assert body["attributes"]["otp_verified"] is True
    assert "otp_code" not in body["attributes"]


def test_a_wrong_code_is_asked_again_after_a_pause(chat, outbox):
    conversation = chat()
    conversation.say(PHONE)
    code = code_in(outbox[0])
    body = conversation.say(wrong(code))
    assert body["messages"] == [
        {"type": "text", "text": demo.WRONG_CODE_TEXT},
        {"type": "delay", "seconds": 2},
    ]
    assert body["expects"] == "code"
    conversation.say(code)
    assert conversation.texts == [demo.VERIFIED_TEXT]


def test_three_wrong_codes_offer_a_new_code_which_works(chat, outbox, settings):
    conversation = chat()
    conversation.say(PHONE)
    first = code_in(outbox[0])
    for _ in range(demo.TRIES):
        body = conversation.say(wrong(first))
    assert "last try" in conversation.texts[0]
    assert body["expects"] == "choice"
    assert body["choices"] == [demo.NEW_CODE, demo.NO_THANKS]

    # A new code for the same phone may be sent once the resend cooldown is over.
    later = datetime.now(tz=UTC) + timedelta(seconds=settings.OTP_RESEND_COOLDOWN_SECONDS + 1)
    with time_machine.travel(later, tick=True):
        body = conversation.say(demo.NEW_CODE)
        assert len(outbox) == 2
        assert body["expects"] == "code"
        conversation.say(code_in(outbox[1]))
    assert conversation.texts == [demo.VERIFIED_TEXT]


def test_a_new_code_asked_for_too_soon_asks_to_wait_then_sends_it(chat, outbox, settings):
    conversation = chat()
    conversation.say(PHONE)
    for _ in range(demo.TRIES):
        conversation.say(wrong(code_in(outbox[0])))
    body = conversation.say(demo.NEW_CODE)
    assert conversation.texts == [demo.TOO_SOON_TEXT]
    assert body["choices"] == [demo.NEW_CODE, demo.NO_THANKS]
    assert len(outbox) == 1

    later = datetime.now(tz=UTC) + timedelta(seconds=settings.OTP_RESEND_COOLDOWN_SECONDS + 1)
    with time_machine.travel(later, tick=True):
        body = conversation.say(demo.NEW_CODE)
        assert body["expects"] == "code"
        conversation.say(code_in(outbox[1]))
    assert conversation.texts == [demo.VERIFIED_TEXT]


def test_a_locked_phone_is_told_to_come_back_later(chat, outbox, settings):
    settings.OTP_PHONE_LOCK_FAILURES = demo.TRIES
    conversation = chat()
    conversation.say(PHONE)
    for _ in range(demo.TRIES):
        conversation.say(wrong(code_in(outbox[0])))

    later = datetime.now(tz=UTC) + timedelta(seconds=settings.OTP_RESEND_COOLDOWN_SECONDS + 1)
    with time_machine.travel(later, tick=True):
        conversation.say(demo.NEW_CODE)

    assert conversation.texts == [demo.LOCKED_TEXT]
    assert conversation.last["status"] == "finished"
    assert len(outbox) == 1


def test_an_expired_code_offers_a_new_code(chat, outbox, settings):
    conversation = chat()
    conversation.say(PHONE)
    later = datetime.now(tz=UTC) + timedelta(seconds=settings.OTP_TTL_SECONDS + 5)
    with time_machine.travel(later, tick=True):
        body = conversation.say(code_in(outbox[0]))
    assert body["attributes"]["otp_status"] == "expired"
    assert body["expects"] == "choice"
    conversation.say(demo.NO_THANKS)
    assert conversation.last["status"] == "finished"


def test_a_send_that_fails_says_so_and_asks_for_the_number_again(chat, outbox, settings):
    settings.SMS_DAILY_CAP = 0
    conversation = chat()
    body = conversation.say(PHONE)
    assert conversation.texts[0] == demo.SEND_FAILED_TEXT
    assert body["expects"] == "phone"
    assert outbox == []
    log = ApiCallLog.objects.filter(definition__name=demo.SEND_OTP).latest("created_at")
    assert log.outcome == "error"
    assert log.status == 503

    settings.SMS_DAILY_CAP = 10000
    assert conversation.say(PHONE)["expects"] == "code"


def test_an_invalid_phone_is_asked_again_without_calling_the_api(chat, outbox):
    conversation = chat()
    body = conversation.say("555")
    assert body["expects"] == "phone"
    assert "country code" in conversation.texts[0]
    assert not ApiCallLog.objects.exists()


def test_the_demo_flow_passes_the_admins_validation_without_warnings(chat):
    flow = Flow.objects.get(slug=demo.DEMO_FLOW_SLUG)
    report = engine.validate_flow(flow.definition())
    assert report.errors == []
    assert report.warnings == []


def test_loading_the_demo_flow_again_keeps_the_flow_as_staff_edited_it(chat):
    flow = Flow.objects.get(slug=demo.DEMO_FLOW_SLUG)
    flow.steps.filter(kind="message").update(text="Edited")
    call_command("setup_demo_flow", stdout=StringIO())
    assert Flow.objects.filter(slug=demo.DEMO_FLOW_SLUG).count() == 1
    assert not flow.steps.filter(kind="message").exclude(text="Edited").exists()
