"""API keys, bot isolation, staff sessions, and the public endpoints (schema, docs, health)."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from integrations.models import Bot, BotAPIKey, Verification
from tests.conftest import code_in
from tests.otp_helpers import (
    GUIDE_SEND,
    GUIDE_VERIFY,
    US_PHONE,
    US_PHONE_2,
    VERIFICATIONS,
    start,
)

PROTECTED = [
    ("post", GUIDE_SEND, {"toNumber": US_PHONE}),
    ("post", GUIDE_VERIFY, {"systemOtp": "x", "userOtp": "123456"}),
    ("post", VERIFICATIONS, {"to": US_PHONE}),
    ("get", f"{VERIFICATIONS}/{{id}}", None),
    ("post", f"{VERIFICATIONS}/{{id}}/check", {"code": "123456"}),
    ("post", f"{VERIFICATIONS}/{{id}}/resend", None),
    ("post", f"{VERIFICATIONS}/{{id}}/cancel", None),
]


@pytest.fixture
def verification_id(api, outbox) -> str:
    return start(api).json()["id"]


def call(client: APIClient, method: str, path: str, body: dict | None, verification_id: str):
    path = path.replace("{id}", verification_id)
    if method == "get":
        return client.get(path)
    return client.post(path, body, format="json")


def keyed_client(header: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    return client


def assert_unauthenticated(response) -> None:
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
    assert response.headers["WWW-Authenticate"] == "Api-Key"


# --- API keys ---------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
def test_a_request_without_a_key_gets_401(verification_id, outbox, method, path, body):
    response = call(APIClient(), method, path, body, verification_id)

    assert_unauthenticated(response)
    assert len(outbox) == 1  # only the fixture's own send


@pytest.mark.parametrize(
    "header",
    [
        "Api-Key nonsense",
        "Api-Key abcdefgh.0123456789abcdef0123456789abcdef",
        "Api-Key ",
        "Bearer ",
        "Api-Key ab\x00cd.ef",
        "Api-Key ab%cd.ef'--",
        "Api-Key " + "a" * 5000 + "." + "b" * 5000,
    ],
)
@pytest.mark.parametrize(("method", "path", "body"), PROTECTED[:3])
def test_a_request_with_a_bad_key_gets_401(verification_id, outbox, header, method, path, body):
    response = call(keyed_client(header), method, path, body, verification_id)

    assert_unauthenticated(response)
    assert len(outbox) == 1


def test_a_key_with_a_wrong_secret_gets_401(api_key, verification_id):
    prefix = api_key.partition(".")[0]

    response = keyed_client(f"Api-Key {prefix}.{'0' * 32}").get(
        f"{VERIFICATIONS}/{verification_id}"
    )

    assert_unauthenticated(response)


def key_row(api_key: str) -> BotAPIKey:
    return BotAPIKey.objects.get(prefix=api_key.partition(".")[0])


def test_a_revoked_key_gets_401_at_once(api, api_key, verification_id):
    # The key was just used (the fixture started a verification with it).
    key = key_row(api_key)
    key.revoked = True
    key.save()  # as the admin's change form does

    response = api.get(f"{VERIFICATIONS}/{verification_id}")

    assert_unauthenticated(response)


def test_an_expired_key_gets_401(api, api_key, verification_id):
    key = key_row(api_key)
    key.expiry_date = timezone.now() + timedelta(seconds=60)
    key.save()
    assert api.get(f"{VERIFICATIONS}/{verification_id}").status_code == 200

    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        response = api.get(f"{VERIFICATIONS}/{verification_id}")

    assert_unauthenticated(response)


def test_a_deleted_bot_s_key_gets_401_at_once(api, bot, verification_id):
    bot.delete()

    response = api.get(f"{VERIFICATIONS}/{verification_id}")

    assert_unauthenticated(response)


def test_a_validated_key_costs_no_query_on_the_next_request(api, verification_id):
    with CaptureQueriesContext(connection) as queries:
        response = api.get(f"{VERIFICATIONS}/{verification_id}")

    assert response.status_code == 200
    assert not [q for q in queries if "integrations_botapikey" in q["sql"]]


def test_a_key_revoked_by_another_worker_stops_working_within_the_cache_time(
    api, api_key, verification_id, settings
):
    # Another process's revocation reaches this one only through the database.
    settings.API_KEY_CACHE_SECONDS = 5
    BotAPIKey.objects.filter(pk=key_row(api_key).pk).update(revoked=True)
    assert api.get(f"{VERIFICATIONS}/{verification_id}").status_code == 200

    with time_machine.travel(timezone.now() + timedelta(seconds=5)):
        response = api.get(f"{VERIFICATIONS}/{verification_id}")

    assert_unauthenticated(response)


def test_with_no_cache_time_every_request_checks_the_database(
    api, api_key, verification_id, settings
):
    settings.API_KEY_CACHE_SECONDS = 0
    BotAPIKey.objects.filter(pk=key_row(api_key).pk).update(revoked=True)

    response = api.get(f"{VERIFICATIONS}/{verification_id}")

    assert_unauthenticated(response)


def test_a_bearer_key_works(api_key, outbox):
    client = keyed_client(f"Bearer {api_key}")

    sent = start(client)

    assert sent.status_code == 201
    checked = client.post(
        f"{VERIFICATIONS}/{sent.json()['id']}/check", {"code": code_in(outbox[0])}, format="json"
    )
    assert checked.json()["verified"] is True


def test_the_keyword_is_case_insensitive(api_key, verification_id):
    response = keyed_client(f"api-key {api_key}").get(f"{VERIFICATIONS}/{verification_id}")

    assert response.status_code == 200


def test_keys_are_stored_hashed(api_key):
    stored = BotAPIKey.objects.get(prefix=api_key.partition(".")[0])

    assert api_key.partition(".")[2] not in stored.hashed_key
    assert stored.hashed_key != api_key


# --- Isolation between bots ---------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED[3:])
def test_another_bots_verification_is_not_found(
    other_api, verification_id, outbox, method, path, body
):
    response = call(other_api, method, path, body, verification_id)

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert len(outbox) == 1
    untouched = Verification.objects.get(pk=verification_id)
    assert (untouched.status, untouched.attempts, untouched.send_count) == ("pending", 0, 1)


def test_another_bots_verification_is_not_found_by_the_guide_verify(other_api, api, outbox):
    system_otp = api.post(GUIDE_SEND, {"toNumber": US_PHONE}, format="json").json()["systemOtp"]

    response = other_api.post(
        GUIDE_VERIFY, {"systemOtp": system_otp, "userOtp": code_in(outbox[0])}, format="json"
    )

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert response.json()["success"] is False
    assert Verification.objects.get(pk=system_otp).status == "pending"


def test_a_bot_sees_its_own_verification(api, verification_id):
    response = api.get(f"{VERIFICATIONS}/{verification_id}")

    assert response.status_code == 200
    assert response.json()["id"] == verification_id


# --- Staff sessions ---------------------------------------------------------------------------


@pytest.fixture
def staff_client(db) -> APIClient:
    """A logged-in staff member whose browser has the CSRF cookie, as after visiting the admin."""
    staff = User.objects.create_user("staff", password="x", is_staff=True)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(staff)
    assert client.get("/admin/").status_code == 200
    client.credentials(HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)
    return client


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED[2:])
def test_a_staff_session_may_call_the_native_api_on_any_bots_verification(
    staff_client, verification_id, outbox, settings, method, path, body
):
    response = call(staff_client, method, path, body, verification_id)

    assert response.status_code < 500
    assert response.status_code not in (401, 403, 404), response.content


def test_a_staff_session_may_send_and_check_a_code_through_the_guide_endpoints(
    staff_client, outbox
):
    sent = staff_client.post(GUIDE_SEND, {"toNumber": US_PHONE_2}, format="json")
    checked = staff_client.post(
        GUIDE_VERIFY,
        {"systemOtp": sent.json()["systemOtp"], "userOtp": code_in(outbox[0])},
        format="json",
    )

    assert sent.status_code == 200
    assert checked.json()["verified"] is True


def test_a_staff_session_without_the_csrf_token_is_refused(staff_client, outbox):
    staff_client.credentials()

    response = staff_client.post(VERIFICATIONS, {"to": US_PHONE}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert outbox == []


def test_a_session_of_a_user_who_is_not_staff_is_refused(db, outbox):
    client = APIClient()
    client.force_login(User.objects.create_user("visitor", password="x"))

    response = client.post(VERIFICATIONS, {"to": US_PHONE}, format="json")

    assert response.status_code == 403
    assert outbox == []


def test_a_verification_started_by_staff_belongs_to_no_bot(staff_client, api, outbox):
    verification_id = staff_client.post(VERIFICATIONS, {"to": US_PHONE}, format="json").json()["id"]

    assert Verification.objects.get(pk=verification_id).bot is None
    assert api.get(f"{VERIFICATIONS}/{verification_id}").status_code == 404


# --- Public endpoints ----------------------------------------------------------------------


def test_the_schema_answers_without_a_key(client, db):
    response = client.get("/api/schema/")

    assert response.status_code == 200
    text = response.content.decode()
    assert "/api/v1/verifications/{verification_id}/check" in text
    assert "/integrations/custom-feature/send-otp-sms" in text


def test_the_schema_documents_each_error_a_send_may_answer_with_its_codes(client, db):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    native = schema["paths"]["/api/v1/verifications"]["post"]["responses"]
    guide = schema["paths"]["/integrations/custom-feature/send-otp-sms"]["post"]["responses"]

    assert sorted(native) == ["201", "400", "401", "413", "415", "429", "502", "503"]
    assert "`cache_unavailable`" in native["503"]["description"]
    assert "`provider_code`" in native["502"]["description"]
    error = native["429"]["content"]["application/json"]["schema"]["$ref"]
    guide_error = guide["429"]["content"]["application/json"]["schema"]["$ref"]
    assert (error, guide_error) == ("#/components/schemas/Error", "#/components/schemas/GuideError")


def test_the_docs_page_loads_nothing_from_another_host(client, db):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    assert any("swagger-ui-bundle.js" in asset for asset in assets)
    assert all(asset.startswith("/") and not asset.startswith("//") for asset in assets), assets
    assert not re.search(r"https?://|//cdn|unpkg|jsdelivr|cdnjs", html)


def test_healthz_reports_the_database_and_the_cache(client, db):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "cache": "ok"}


def test_healthz_answers_a_head_probe(client, db):
    assert client.head("/healthz").status_code == 200


def test_healthz_answers_a_probe_at_the_nodes_own_address_over_plain_http(client, db, settings):
    settings.ALLOWED_HOSTS = ["chatbot-auth.example.com"]
    settings.SECURE_SSL_REDIRECT = True

    probe = client.get("/healthz", HTTP_HOST="10.0.3.7:8000")
    other = client.get("/api/schema/", HTTP_HOST="10.0.3.7:8000")

    assert probe.status_code == 200
    assert probe.json()["status"] == "ok"
    assert other.status_code == 400  # every other URL still checks the Host


def test_healthz_refuses_other_methods(client, db):
    response = client.post("/healthz")

    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


def test_the_site_serves_the_favicon_that_browsers_ask_for(client, db):
    response = client.get("/favicon.ico")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    assert b"".join(response.streaming_content).startswith(b"\x00\x00\x01\x00")  # an icon file


def test_a_bot_with_two_keys_may_use_either(api, bot, verification_id):
    _, second_key = BotAPIKey.objects.create_key(bot=bot, name="second")

    response = keyed_client(f"Api-Key {second_key}").get(f"{VERIFICATIONS}/{verification_id}")

    assert response.status_code == 200
    assert Bot.objects.count() == 1
