"""Redis down or hung: sends refuse with 503 before any provider, checks and staff pages go on.

The cache holds each bot's send count (BOT_SEND_RATE). These tests point the
cache at a port where nothing listens, or at a server that accepts and never
answers, through the real Redis client.
"""

import socket
from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from integrations.models import Verification
from tests.conftest import code_in
from tests.otp_helpers import GUIDE_SEND, US_PHONE, check, start

REDIS = "config.cache.RedisCache"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _use_redis_at(settings, url: str, timeout: float = 2.0) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": REDIS,
            "LOCATION": url,
            "OPTIONS": {"socket_connect_timeout": timeout, "socket_timeout": timeout},
        }
    }


@pytest.fixture
def redis_down(settings) -> None:
    _use_redis_at(settings, f"redis://127.0.0.1:{_free_port()}/0")


@pytest.fixture
def redis_hung(settings) -> Iterator[None]:
    """A server that accepts connections and never says a word."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        _use_redis_at(settings, f"redis://127.0.0.1:{server.getsockname()[1]}/0", timeout=0.5)
        yield


def test_a_send_with_redis_down_answers_503_and_reaches_no_provider(api, outbox, redis_down):
    response = start(api)

    assert response.status_code == 503
    assert response.json()["code"] == "cache_unavailable"
    assert response.headers["Retry-After"] == "1"
    assert outbox == []
    assert not Verification.objects.exists()


def test_the_guide_send_with_redis_down_answers_in_its_own_shape(api, outbox, redis_down):
    response = api.post(GUIDE_SEND, {"toNumber": US_PHONE}, format="json")

    assert response.status_code == 503
    assert response.json()["success"] is False
    assert response.json()["code"] == "cache_unavailable"
    assert outbox == []


def test_a_hung_redis_is_cut_off_by_its_socket_timeout(api, outbox, redis_hung):
    # The server never answers: only the client's socket timeout ends the request.
    response = start(api)

    assert response.status_code == 503
    assert response.json()["code"] == "cache_unavailable"
    assert outbox == []


def test_a_code_sent_before_redis_went_down_can_still_be_checked(api, outbox, settings):
    verification_id = start(api).json()["id"]
    code = code_in(outbox[-1])
    _use_redis_at(settings, f"redis://127.0.0.1:{_free_port()}/0")

    response = check(api, verification_id, code)

    assert response.status_code == 200
    assert response.json()["verified"] is True


def test_healthz_answers_503_naming_the_cache(client, db, redis_down):
    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "ok", "cache": "unreachable"}


def test_the_dashboard_reads_the_database_when_redis_is_down(db, redis_down, caplog):
    staff = Client()
    staff.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "x"))

    response = staff.get("/admin/integrations/verification/dashboard/")

    assert response.status_code == 200
    assert "Verification dashboard" in response.content.decode()
    assert "no cache (ConnectionError)" in caplog.text


def test_staff_can_still_log_in_with_redis_down(db, redis_down, caplog):
    get_user_model().objects.create_user("alice", password="correct horse", is_staff=True)
    client = Client()

    client.post("/admin/login/", {"username": "alice", "password": "wrong"})
    client.post("/admin/login/", {"username": "alice", "password": "correct horse"})

    assert "_auth_user_id" in client.session
    assert "Failed staff login not counted: no cache (ConnectionError)" in caplog.text
