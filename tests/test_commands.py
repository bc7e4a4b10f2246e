"""`manage.py create_bot NAME`: a bot and a new API key, the key alone on the last line."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from integrations.models import Bot, BotAPIKey
from tests.otp_helpers import US_PHONE, US_PHONE_2, VERIFICATIONS


def create_bot(*args: str) -> str:
    out = StringIO()
    call_command("create_bot", *args, stdout=out)
    return out.getvalue()


def last_line(output: str) -> str:
    return output.strip().splitlines()[-1]


def client_with(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


def test_create_bot_prints_a_working_key_on_its_last_line(db, outbox):
    key = last_line(create_bot("Support bot"))

    sent = client_with(key).post(VERIFICATIONS, {"to": US_PHONE}, format="json")

    assert sent.status_code == 201
    assert Bot.objects.get().name == "Support bot"


def test_create_bot_reuses_a_bot_of_that_name_and_adds_a_key(db, outbox):
    first = last_line(create_bot("Support bot"))
    output = create_bot("Support bot")
    second = last_line(output)

    assert "Reusing" in output
    assert first != second
    assert Bot.objects.count() == 1
    assert BotAPIKey.objects.filter(bot__name="Support bot").count() == 2
    assert (
        client_with(first).post(VERIFICATIONS, {"to": US_PHONE}, format="json").status_code == 201
    )
    assert (
        client_with(second).post(VERIFICATIONS, {"to": US_PHONE_2}, format="json").status_code
        == 201
    )


def test_create_bot_names_the_key(db):
    create_bot("Support bot", "--key-name", "production")

    assert BotAPIKey.objects.get().name == "production"


def test_create_bot_stores_only_a_hash_of_the_key(db):
    key = last_line(create_bot("Support bot"))

    stored = BotAPIKey.objects.get()
    assert stored.prefix == key.partition(".")[0]
    assert key.partition(".")[2] not in stored.hashed_key


def test_the_keys_of_two_bots_see_only_their_own_verifications(db, outbox):
    first = client_with(last_line(create_bot("First bot")))
    second = client_with(last_line(create_bot("Second bot")))
    verification_id = first.post(VERIFICATIONS, {"to": US_PHONE}, format="json").json()["id"]

    assert second.get(f"{VERIFICATIONS}/{verification_id}").status_code == 404
    assert first.get(f"{VERIFICATIONS}/{verification_id}").status_code == 200


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_create_bot_refuses_a_name_a_bot_cannot_have(db, name):
    with pytest.raises(CommandError):
        create_bot(name)

    assert Bot.objects.count() == 0
