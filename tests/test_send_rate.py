"""BOT_SEND_RATE: a bot's sends per window, new verifications and resends alike."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from rest_framework.test import APIClient

from config.cache import RedisCache
from tests.otp_helpers import (
    GUIDE_SEND,
    US_PHONE,
    US_PHONE_2,
    US_PHONE_3,
    resend,
    start,
    startup_failure,
)

# On a minute's boundary, so a refused send waits out the whole minute.
START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
FOURTH_PHONE = "+14155552674"


@pytest.fixture(autouse=True)
def three_sends_a_minute(settings, time_machine) -> None:
    settings.BOT_SEND_RATE = "3/minute"
    settings.OTP_RESEND_COOLDOWN_SECONDS = 0
    time_machine.move_to(START, tick=False)


def test_a_bot_past_its_send_rate_is_refused_before_the_provider(api, outbox):
    sent = [start(api, phone).status_code for phone in (US_PHONE, US_PHONE_2, US_PHONE_3)]

    refused = start(api, FOURTH_PHONE)

    assert sent == [201, 201, 201]
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert refused.json()["detail"] == "This bot has sent too many codes. Try again later."
    assert refused.headers["Retry-After"] == "60"
    assert len(outbox) == 3


def test_resends_count_against_the_send_rate(api, outbox):
    verification_id = start(api).json()["id"]
    assert resend(api, verification_id).status_code == 200
    assert resend(api, verification_id).status_code == 200

    refused = resend(api, verification_id)

    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert len(outbox) == 3


def test_the_guide_send_is_capped_too(api, outbox):
    for phone in (US_PHONE, US_PHONE_2, US_PHONE_3):
        assert api.post(GUIDE_SEND, {"toNumber": phone}, format="json").status_code == 200

    refused = api.post(GUIDE_SEND, {"toNumber": FOURTH_PHONE}, format="json")

    assert refused.status_code == 429
    assert refused.json()["success"] is False
    assert refused.json()["code"] == "rate_limited"
    assert len(outbox) == 3


def test_the_send_rate_is_counted_per_bot(api, other_api, outbox):
    for phone in (US_PHONE, US_PHONE_2, US_PHONE_3):
        start(api, phone)

    assert start(other_api, FOURTH_PHONE).status_code == 201


def test_the_next_window_allows_sends_again(api, outbox, time_machine):
    for phone in (US_PHONE, US_PHONE_2, US_PHONE_3):
        start(api, phone)
    time_machine.shift(timedelta(seconds=59))
    assert start(api, FOURTH_PHONE).status_code == 429

    time_machine.shift(timedelta(seconds=1))

    assert start(api, FOURTH_PHONE).status_code == 201


def test_an_hourly_count_outlasts_a_quiet_spell_in_its_window(api, outbox, settings, time_machine):
    settings.BOT_SEND_RATE = "3/hour"
    for phone in (US_PHONE, US_PHONE_2, US_PHONE_3):
        start(api, phone)

    time_machine.shift(timedelta(minutes=10))

    assert start(api, FOURTH_PHONE).status_code == 429
    assert len(outbox) == 3


def test_the_database_caches_incr_keeps_the_keys_expiry(db, settings, time_machine):
    if "redis" in settings.CACHES["default"]["BACKEND"].lower():
        pytest.skip("Redis keeps a key's TTL through INCR itself, on its own clock")
    cache.set("sends", 1, timeout=3600)
    assert cache.incr("sends") == 2

    time_machine.shift(timedelta(minutes=10))  # past Django's default timeout of 300 s
    assert cache.get("sends") == 2
    time_machine.shift(timedelta(minutes=51))

    assert cache.get("sends") is None


def test_an_empty_send_rate_caps_nothing(api, outbox, settings):
    settings.BOT_SEND_RATE = ""
    phones = [f"+1415555{n:04d}" for n in range(2700, 2710)]

    assert {start(api, phone).status_code for phone in phones} == {201}


def test_staff_sessions_are_not_capped(db, outbox):
    staff = get_user_model().objects.create_user("staff", password="x", is_staff=True)
    client = APIClient()
    client.force_login(staff)
    phones = (US_PHONE, US_PHONE_2, US_PHONE_3, FOURTH_PHONE)

    answers = [client.post(GUIDE_SEND, {"toNumber": p}, format="json") for p in phones]

    assert [a.status_code for a in answers] == [200, 200, 200, 200]


@pytest.mark.parametrize("rate", ["60", "60/fortnight", "0/minute", "-1/minute", "x/minute"])
def test_a_malformed_send_rate_is_refused_at_startup(rate):
    failure = startup_failure(BOT_SEND_RATE=rate)

    assert "BOT_SEND_RATE must look like 60/minute" in failure


def test_the_redis_cache_builds_one_client_per_connection_pool():
    # Django's own client builds a redis.Redis at every call, which cost more
    # CPU per send than the INCR it sends. Building one connects to nothing.
    cache = RedisCache("redis://127.0.0.1:6379/0", {})

    assert cache._cache.get_client(write=True) is cache._cache.get_client(write=True)
    assert cache._cache.get_client() is cache._cache.get_client()


@pytest.fixture
def redis_cache(settings):
    if "redis" not in settings.CACHES["default"]["BACKEND"].lower():
        pytest.skip("needs Redis (REDIS_URL)")
    return cache


def test_incr_on_redis_counts_on_and_keeps_the_keys_timeout(redis_cache):
    redis_cache.set("sends", 1, timeout=60)

    assert redis_cache.incr("sends") == 2
    assert redis_cache.incr("sends", 3) == 5
    assert 0 < redis_cache._cache.get_client().ttl(redis_cache.make_key("sends")) <= 60


def test_incr_on_redis_refuses_a_missing_key_and_creates_none(redis_cache):
    with pytest.raises(ValueError):
        redis_cache.incr("never-set")

    assert redis_cache.get("never-set") is None
