"""Limits hold under concurrent requests (PostgreSQL only: SQLite has no row locks).

Each request runs in its own thread with its own database connection, all
released together by a barrier, and every thread closes its connection.
"""

import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, connections
from rest_framework.test import APIClient

from integrations.models import Verification, VerificationEvent
from tests.conftest import code_in
from tests.otp_helpers import US_PHONE, VERIFICATIONS, wrong_code_for

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture(autouse=True)
def _needs_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("race tests need PostgreSQL's row locks: set DATABASE_URL to a server")


def run_together(count: int, request: Callable[[APIClient, int], Any], api_key: str) -> list:
    """Run `request` in `count` threads released at once; return their answers in order."""
    barrier = threading.Barrier(count)
    answers: list[Any] = [None] * count
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key}")
        try:
            barrier.wait(timeout=30)
            answers[index] = request(client, index)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a request never finished"
    assert not errors, errors
    return answers


def check_request(verification_id: str, code: str) -> Callable[[APIClient, int], Any]:
    def request(client: APIClient, index: int) -> Any:
        return client.post(
            f"{VERIFICATIONS}/{verification_id}/check", {"code": code}, format="json"
        )

    return request


def events_of(verification_id: str, kind: str) -> int:
    return VerificationEvent.objects.filter(verification_id=verification_id, kind=kind).count()


def test_twenty_concurrent_right_codes_verify_exactly_once(api, api_key, outbox):
    verification_id = api.post(VERIFICATIONS, {"to": US_PHONE}, format="json").json()["id"]
    code = code_in(outbox[0])

    answers = run_together(20, check_request(verification_id, code), api_key)

    assert [a.status_code for a in answers] == [200] * 20
    assert sum(a.json()["verified"] for a in answers) == 1
    assert {a.json()["status"] for a in answers} == {"approved"}
    assert events_of(verification_id, "approved") == 1


def test_fifty_concurrent_wrong_codes_compare_at_most_the_limit(api, api_key, outbox, settings):
    settings.OTP_MAX_CHECK_ATTEMPTS = 5
    verification_id = api.post(VERIFICATIONS, {"to": US_PHONE}, format="json").json()["id"]
    code = code_in(outbox[0])

    answers = run_together(50, check_request(verification_id, wrong_code_for(code)), api_key)

    assert [a.status_code for a in answers] == [200] * 50
    assert not any(a.json()["verified"] for a in answers)
    verification = Verification.objects.get(pk=verification_id)
    assert verification.attempts == 5
    assert verification.status == "max_attempts_reached"
    assert events_of(verification_id, "check_failed") == 5
    assert events_of(verification_id, "max_attempts_reached") == 1
    after = api.post(f"{VERIFICATIONS}/{verification_id}/check", {"code": code}, format="json")
    assert after.json()["verified"] is False
    assert after.json()["status"] == "max_attempts_reached"


def test_concurrent_wrong_codes_on_several_verifications_stop_at_the_phone_lock(
    api, api_key, outbox, settings
):
    settings.OTP_RESEND_COOLDOWN_SECONDS = 0
    settings.OTP_MAX_SENDS_PER_PHONE = 10
    settings.OTP_MAX_CHECK_ATTEMPTS = 5
    settings.OTP_PHONE_LOCK_FAILURES = 4
    ids = [api.post(VERIFICATIONS, {"to": US_PHONE}, format="json").json()["id"] for _ in range(3)]
    codes = [code_in(message) for message in outbox]

    def request(client: APIClient, index: int) -> Any:
        which = index % 3
        return check_request(ids[which], wrong_code_for(codes[which]))(client, index)

    answers = run_together(15, request, api_key)

    statuses = Counter(a.status_code for a in answers)
    assert statuses == {200: 4, 429: 11}, unexpected(answers, 200, 429)
    assert VerificationEvent.objects.filter(kind="check_failed").count() == 4
    assert VerificationEvent.objects.filter(kind="locked").count() == 1


def unexpected(answers: list, *expected: int) -> list:
    """The bodies of answers with a status not in `expected`, for failure messages."""
    return [(a.status_code, a.content[:300]) for a in answers if a.status_code not in expected]


def send_request(to: str) -> Callable[[APIClient, int], Any]:
    def request(client: APIClient, index: int) -> Any:
        return client.post(VERIFICATIONS, {"to": to}, format="json")

    return request


def test_twenty_concurrent_sends_to_one_phone_send_one_message_in_the_cooldown(
    api_key, fake_twilio
):
    answers = run_together(20, send_request(US_PHONE), api_key)

    statuses = Counter(a.status_code for a in answers)
    assert statuses == {201: 1, 429: 19}, unexpected(answers, 201, 429)
    assert {a.json()["code"] for a in answers if a.status_code == 429} == {"rate_limited"}
    assert len(fake_twilio.requests) == 1


def test_twenty_concurrent_sends_to_one_phone_stay_within_the_send_window(
    api_key, fake_twilio, settings
):
    settings.OTP_RESEND_COOLDOWN_SECONDS = 0
    settings.OTP_MAX_SENDS_PER_PHONE = 3

    answers = run_together(20, send_request(US_PHONE), api_key)

    assert Counter(a.status_code for a in answers) == {201: 3, 429: 17}, unexpected(
        answers, 201, 429
    )
    assert len(fake_twilio.requests) == 3


@pytest.fixture(params=["redis", "database"])
def counting_cache(request, settings) -> str:
    """The cache that counts each bot's sends: Redis (with REDIS_URL), or the database's."""
    if request.param == "redis":
        if "redis" not in settings.CACHES["default"]["BACKEND"].lower():
            pytest.skip("needs Redis: set REDIS_URL")
        return request.param
    settings.CACHES = {
        "default": {
            "BACKEND": "config.cache.DatabaseCache",
            "LOCATION": "cache_entries",
            "KEY_PREFIX": settings.CACHES["default"].get("KEY_PREFIX", ""),
        }
    }
    call_command("createcachetable")
    return request.param


def test_twenty_concurrent_sends_of_one_bot_stay_within_its_send_rate(
    api_key, fake_twilio, settings, time_machine, counting_cache
):
    settings.BOT_SEND_RATE = "5/minute"
    time_machine.move_to(datetime(2026, 3, 2, 12, 0, 30, tzinfo=UTC), tick=False)
    phones = [f"+1415555{2700 + i:04d}" for i in range(20)]

    def request(client: APIClient, index: int) -> Any:
        return client.post(VERIFICATIONS, {"to": phones[index]}, format="json")

    answers = run_together(20, request, api_key)

    assert Counter(a.status_code for a in answers) == {201: 5, 429: 15}, unexpected(
        answers, 201, 429
    )
    assert len(fake_twilio.requests) == 5


def test_twenty_concurrent_resends_stay_within_the_send_window(api, api_key, fake_twilio, settings):
    settings.OTP_RESEND_COOLDOWN_SECONDS = 0
    settings.OTP_MAX_SENDS_PER_PHONE = 3
    verification_id = api.post(VERIFICATIONS, {"to": US_PHONE}, format="json").json()["id"]

    def request(client: APIClient, index: int) -> Any:
        return client.post(f"{VERIFICATIONS}/{verification_id}/resend", format="json")

    answers = run_together(20, request, api_key)

    assert Counter(a.status_code for a in answers) == {200: 2, 429: 18}, unexpected(
        answers, 200, 429
    )
    assert len(fake_twilio.requests) == 3
    assert Verification.objects.get(pk=verification_id).send_count == 3


def test_twenty_concurrent_sends_to_different_phones_stop_at_the_daily_cap(
    api_key, fake_twilio, settings
):
    settings.SMS_DAILY_CAP = 5

    def request(client: APIClient, index: int) -> Any:
        return client.post(VERIFICATIONS, {"to": f"+1415555{2600 + index}"}, format="json")

    answers = run_together(20, request, api_key)

    assert Counter(a.status_code for a in answers) == {201: 5, 503: 15}, unexpected(
        answers, 201, 503
    )
    assert {a.json()["code"] for a in answers if a.status_code == 503} == {"daily_cap_reached"}
    assert len(fake_twilio.requests) == 5
