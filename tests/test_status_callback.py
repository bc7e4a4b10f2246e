"""The Twilio status callback, driven as Twilio drives it: a signed form POST."""

import threading
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.db import connection, connections
from django.test import Client
from twilio.request_validator import RequestValidator

from integrations.models import Verification, VerificationEvent

CALLBACK = "/integrations/twilio/status-callback"
URL = "http://testserver" + CALLBACK  # PUBLIC_BASE_URL of the test settings + the path
SERVER_SID = "AC" + "1" * 32
SERVER_TOKEN = "server-auth-token-0123456789"
BOT_SID = "AC" + "2" * 32
BOT_TOKEN = "bot-own-auth-token-9876543210"
PHONE = "+14155552671"
OTHER_PHONE = "+14155552672"


@pytest.fixture(autouse=True)
def twilio_account(settings):
    settings.TWILIO_ACCOUNT_SID = SERVER_SID
    settings.TWILIO_AUTH_TOKEN = SERVER_TOKEN


@pytest.fixture
def verification(api) -> Verification:
    sent = api.post("/api/v1/verifications", {"to": PHONE}, format="json")
    assert sent.status_code == 201, sent.json()
    return Verification.objects.get(pk=sent.json()["id"])


@pytest.fixture
def bot_account_verification(api) -> Verification:
    sent = api.post(
        "/integrations/custom-feature/send-otp-sms",
        {
            "toNumber": OTHER_PHONE,
            "accountSID": BOT_SID,
            "authToken": BOT_TOKEN,
            "fromNumber": "+15005550006",
        },
        format="json",
    )
    assert sent.status_code == 200, sent.json()
    return Verification.objects.get(pk=sent.json()["verificationId"])


def report(verification: Verification, status: str = "delivered", **extra: str) -> dict[str, str]:
    return {
        "MessageSid": verification.current_message_sid(),
        "MessageStatus": status,
        "SmsStatus": status,
        "AccountSid": SERVER_SID,
        "To": verification.phone,
        **extra,
    }


def post(form: dict[str, str], *, token: str | None = SERVER_TOKEN, signed: dict | None = None):
    """POST `form` as Twilio would, signed over `signed` (default: the form itself)."""
    headers = {}
    if token is not None:
        signature = RequestValidator(token).compute_signature(URL, signed or form)
        headers["HTTP_X_TWILIO_SIGNATURE"] = signature
    return Client(enforce_csrf_checks=True).post(
        CALLBACK, urlencode(form), content_type="application/x-www-form-urlencoded", **headers
    )


def delivery_events(verification: Verification) -> list[VerificationEvent]:
    return list(verification.events.filter(kind=VerificationEvent.Kind.DELIVERY))


def test_a_signed_report_updates_the_delivery_status(verification):
    response = post(report(verification, "delivered"))
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "recorded"}
    verification.refresh_from_db()
    assert verification.delivery_status == "delivered"


def test_a_report_adds_a_delivery_event_with_the_providers_error_code(verification):
    post(report(verification, "undelivered", ErrorCode="30003"))
    [event] = delivery_events(verification)
    assert event.detail == {
        "message_sid": verification.current_message_sid(),
        "status": "undelivered",
        "error_code": "30003",
    }


def test_it_refuses_a_report_with_a_tampered_parameter(verification):
    signed = report(verification, "undelivered")
    response = post({**signed, "MessageStatus": "delivered"}, signed=signed)
    assert response.status_code == 403
    assert response.json()["code"] == "invalid_signature"
    verification.refresh_from_db()
    assert verification.delivery_status == ""


def test_it_refuses_a_report_without_a_signature(verification):
    response = post(report(verification), token=None)
    assert response.status_code == 403
    assert response.json()["code"] == "invalid_signature"
    assert delivery_events(verification) == []


def test_it_refuses_a_report_signed_with_the_wrong_token(verification):
    response = post(report(verification), token="not-the-auth-token")
    assert response.status_code == 403
    assert delivery_events(verification) == []


def test_it_refuses_reports_signed_with_an_empty_token_when_none_is_configured(
    verification, settings
):
    settings.TWILIO_AUTH_TOKEN = ""
    response = post(report(verification), token="")
    assert response.status_code == 403


def test_the_same_report_twice_is_recorded_once(verification):
    first = post(report(verification, "delivered"))
    second = post(report(verification, "delivered"))
    assert first.json() == {"status": "recorded"}
    assert second.status_code == 200
    assert second.json() == {"status": "duplicate"}
    assert len(delivery_events(verification)) == 1


def test_a_late_report_of_an_earlier_state_does_not_undo_delivery(verification):
    post(report(verification, "delivered"))
    post(report(verification, "sent"))
    verification.refresh_from_db()
    assert verification.delivery_status == "delivered"
    assert [e.detail["status"] for e in delivery_events(verification)] == ["delivered", "sent"]


def test_a_message_sent_with_a_bots_own_account_is_checked_with_that_accounts_token(
    bot_account_verification,
):
    form = report(bot_account_verification, "delivered", AccountSid=BOT_SID)
    response = post(form, token=BOT_TOKEN)
    assert response.status_code == 200, response.content
    bot_account_verification.refresh_from_db()
    assert bot_account_verification.delivery_status == "delivered"


def test_the_servers_token_does_not_sign_for_a_bots_own_account(bot_account_verification):
    form = report(bot_account_verification, "delivered", AccountSid=BOT_SID)
    response = post(form, token=SERVER_TOKEN)
    assert response.status_code == 403


def test_a_bots_token_does_not_sign_reports_of_the_servers_account(
    verification, bot_account_verification
):
    response = post(report(verification, "delivered", AccountSid=BOT_SID), token=BOT_TOKEN)
    assert response.status_code == 403


def resent(api, verification: Verification, settings) -> str:
    """Resend `verification`'s code; return the SID of the message it replaced."""
    settings.OTP_RESEND_COOLDOWN_SECONDS = 0
    replaced_sid = verification.current_message_sid()
    answer = api.post(f"/api/v1/verifications/{verification.pk}/resend", format="json")
    assert answer.status_code == 200, answer.json()
    verification.refresh_from_db()
    assert verification.current_message_sid() not in ("", replaced_sid)
    return replaced_sid


def test_a_late_report_on_a_message_a_resend_replaced_goes_into_the_timeline(
    api, verification, settings
):
    replaced_sid = resent(api, verification, settings)
    form = report(verification, "undelivered", MessageSid=replaced_sid, ErrorCode="30003")

    response = post(form)

    assert response.json() == {"status": "recorded"}
    [event] = delivery_events(verification)
    assert event.detail == {
        "message_sid": replaced_sid,
        "status": "undelivered",
        "error_code": "30003",
    }
    verification.refresh_from_db()
    assert verification.delivery_status == ""


def test_a_report_on_a_message_a_resend_is_replacing_leaves_the_delivery_status(verification):
    # The resend is reserved (new code, last send moved on) while its message
    # is still with the provider: the earlier message is no longer current.
    form = report(verification, "delivered")
    Verification.objects.filter(pk=verification.pk).update(
        last_sent_at=verification.last_sent_at + timedelta(seconds=1)
    )

    assert post(form).json() == {"status": "recorded"}

    verification.refresh_from_db()
    assert verification.delivery_status == ""
    assert [e.detail["status"] for e in delivery_events(verification)] == ["delivered"]


def test_a_report_finds_its_message_through_an_index(db):
    # SQLite uses a partial index for `message_sid = ?` only when its condition
    # is IS NOT NULL; PostgreSQL is told to prefer it over scanning a tiny table.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
    lookup = VerificationEvent.objects.filter(message_sid="SM" + "0" * 32)

    assert "verif_event_message_sid" in lookup.values_list("verification_id").explain()


def test_a_replaced_message_does_not_undo_the_current_ones_status(api, verification, settings):
    replaced_sid = resent(api, verification, settings)
    post(report(verification, "delivered"))

    post(report(verification, "failed", MessageSid=replaced_sid))

    verification.refresh_from_db()
    assert verification.delivery_status == "delivered"
    assert [e.detail["status"] for e in delivery_events(verification)] == ["delivered", "failed"]


def test_a_replaced_message_of_a_bots_own_account_is_checked_with_that_accounts_token(
    api, bot_account_verification, settings
):
    replaced_sid = resent(api, bot_account_verification, settings)
    form = report(
        bot_account_verification, "delivered", MessageSid=replaced_sid, AccountSid=BOT_SID
    )

    assert post(form, token=SERVER_TOKEN).status_code == 403
    assert post(form, token=BOT_TOKEN).json() == {"status": "recorded"}


# --- Bad input -------------------------------------------------------------------------


def test_a_report_for_an_unknown_message_is_ignored(db):
    form = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered", "AccountSid": SERVER_SID}
    response = post(form)
    assert response.status_code == 200
    assert response.json() == {"status": "unknown_message"}


def test_a_report_without_a_message_sid_is_a_bad_request(db):
    response = post({"MessageStatus": "delivered", "AccountSid": SERVER_SID})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
    assert "MessageSid" in response.json()["errors"]


def test_a_report_without_a_status_is_a_bad_request(verification):
    form = report(verification)
    del form["MessageStatus"]
    response = post(form)
    assert response.status_code == 400
    assert "MessageStatus" in response.json()["errors"]


def test_a_report_with_a_garbage_status_is_a_bad_request(verification):
    response = post(report(verification, "<script>💥</script>"))
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
    verification.refresh_from_db()
    assert verification.delivery_status == ""


def test_an_empty_signed_post_is_a_bad_request(db):
    response = post({})
    assert response.status_code == 400


def test_a_get_is_not_allowed(db):
    response = Client().get(CALLBACK)
    assert response.status_code == 405


# --- Concurrency (PostgreSQL only: SQLite has no row locks) ------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ten_copies_of_one_report_at_once_are_recorded_once(verification):
    if connection.vendor != "postgresql":
        pytest.skip("race tests need PostgreSQL's row locks: set DATABASE_URL to a server")
    form = report(verification, "delivered")
    barrier = threading.Barrier(10)
    answers: list = [None] * 10

    def worker(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            answers[index] = post(form).json()["status"]
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(answers) == ["duplicate"] * 9 + ["recorded"]
    assert len(delivery_events(verification)) == 1
