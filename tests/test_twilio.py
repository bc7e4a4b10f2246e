"""The Twilio backend through the HTTP API: the real twilio client, real HTTP, a fake Twilio."""

import contextlib
import logging
import socket
import threading

import pytest
import requests
from django.core import checks
from django.db import connection
from twilio.request_validator import RequestValidator

from integrations import sms
from integrations import twilio as twilio_backend
from integrations.models import Verification, VerificationEvent
from tests.fake_twilio import (
    CODE_IN_BODY,
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    DEFAULT_FROM_NUMBER,
    FakeTwilio,
)

PHONE = "+14155552671"
CALLER_SID = "AC" + "fedcba9876543210" * 2
CALLER_TOKEN = "callers-own-auth-token-7f3a9c"
CALLER_FROM = "+15005550001"
GUIDE_SEND = "/integrations/custom-feature/send-otp-sms"
GUIDE_VERIFY = "/integrations/custom-feature/verify-user-otp"


def start(api, to: str = PHONE, **extra: str):
    return api.post("/api/v1/verifications", {"to": to, **extra}, format="json")


def send_with_callers_account(api, **overrides: str):
    body = {
        "toNumber": PHONE,
        "accountSID": CALLER_SID,
        "authToken": CALLER_TOKEN,
        "fromNumber": CALLER_FROM,
        **overrides,
    }
    return api.post(GUIDE_SEND, body, format="json")


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- Sending ----------------------------------------------------------------------


def test_a_send_reaches_twilio_with_the_number_sender_and_text(api, fake_twilio):
    assert start(api).status_code == 201
    [message] = fake_twilio.messages
    assert message.to == PHONE
    assert message.from_ == DEFAULT_FROM_NUMBER
    assert message.body.startswith("Your verification code is ")


def test_a_send_authenticates_with_the_servers_account(api, fake_twilio):
    start(api)
    [message] = fake_twilio.messages
    assert message.account_sid == DEFAULT_ACCOUNT_SID
    assert message.auth_username == DEFAULT_ACCOUNT_SID


def test_the_code_read_from_the_phone_approves_the_verification(api, fake_twilio):
    verification = start(api).json()
    code = fake_twilio.last_code_for(PHONE)
    checked = api.post(
        f"/api/v1/verifications/{verification['id']}/check", {"code": code}, format="json"
    )
    assert checked.json()["verified"] is True
    assert checked.json()["status"] == "approved"


def test_the_verification_keeps_twilios_message_sid(api, fake_twilio):
    verification_id = start(api).json()["id"]
    verification = Verification.objects.get(pk=verification_id)
    assert verification.current_message_sid() == fake_twilio.messages[0].sid


def test_the_status_callback_url_is_passed_to_twilio(api, fake_twilio):
    start(api)
    assert fake_twilio.messages[0].status_callback == (
        "http://testserver/integrations/twilio/status-callback"
    )


def test_a_messaging_service_is_used_when_the_server_has_no_from_number(api, fake_twilio, settings):
    settings.TWILIO_FROM_NUMBER = ""
    settings.TWILIO_MESSAGING_SERVICE_SID = "MG" + "0" * 32
    assert start(api).status_code == 201
    [message] = fake_twilio.messages
    assert message.messaging_service_sid == "MG" + "0" * 32
    assert message.from_ == ""


def test_whatsapp_goes_to_twilios_whatsapp_addresses(api, fake_twilio):
    assert start(api, channel="whatsapp").status_code == 201
    [message] = fake_twilio.messages
    assert message.to == f"whatsapp:{PHONE}"
    assert message.from_ == f"whatsapp:{DEFAULT_FROM_NUMBER}"


def test_the_code_sent_on_whatsapp_approves_the_verification(api, fake_twilio):
    verification = start(api, channel="whatsapp").json()
    code = fake_twilio.last_code_for(f"whatsapp:{PHONE}")
    checked = api.post(
        f"/api/v1/verifications/{verification['id']}/check", {"code": code}, format="json"
    )
    assert checked.json()["verified"] is True


# --- The caller's own Twilio account (the guide's endpoint) -----------------------


@pytest.fixture
def callers_account(fake_twilio: FakeTwilio) -> FakeTwilio:
    fake_twilio.accounts[CALLER_SID] = CALLER_TOKEN
    return fake_twilio


def test_the_guide_endpoint_sends_with_the_callers_account(api, callers_account):
    sent = send_with_callers_account(api)
    assert sent.status_code == 200, sent.json()
    [message] = callers_account.messages
    assert message.account_sid == CALLER_SID
    assert message.auth_username == CALLER_SID
    assert message.from_ == CALLER_FROM


def test_the_code_sent_with_the_callers_account_approves_the_verification(api, callers_account):
    system_otp = send_with_callers_account(api).json()["systemOtp"]
    code = callers_account.last_code_for(PHONE)
    verified = api.post(GUIDE_VERIFY, {"systemOtp": system_otp, "userOtp": code}, format="json")
    assert verified.json()["verified"] is True


def test_the_callers_auth_token_is_stored_encrypted(api, callers_account):
    verification_id = send_with_callers_account(api).json()["systemOtp"]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT provider_auth_token FROM {Verification._meta.db_table}")
        [(raw,)] = cursor.fetchall()
    assert raw
    assert CALLER_TOKEN not in raw
    assert Verification.objects.get(pk=verification_id).provider_auth_token == CALLER_TOKEN


def test_a_wrong_caller_token_is_a_provider_error_20003(api, callers_account):
    sent = send_with_callers_account(api, authToken="not-the-token")
    assert sent.status_code == 502
    assert sent.json()["code"] == "provider_error"
    assert sent.json()["provider_code"] == 20003
    assert sent.json()["success"] is False


def test_a_caller_account_sid_that_is_not_a_twilio_sid_never_reaches_twilio(api, callers_account):
    sent = send_with_callers_account(api, accountSID="../../Accounts/x")
    assert sent.status_code == 400
    assert sent.json()["code"] == "invalid_request"
    assert callers_account.requests == []


def test_a_malformed_caller_account_sid_costs_no_send(api, callers_account):
    send_with_callers_account(api, accountSID="../../Accounts/x")
    assert not Verification.objects.exists()
    assert send_with_callers_account(api).status_code == 200


def test_the_callers_account_falls_back_to_the_servers_sender(api, callers_account):
    assert send_with_callers_account(api, fromNumber="").status_code == 200
    [message] = callers_account.messages
    assert message.account_sid == CALLER_SID
    assert message.from_ == DEFAULT_FROM_NUMBER


# --- Twilio's refusals --------------------------------------------------------------

REFUSALS = [
    (21211, 400, "invalid_phone_number", None),
    (21610, 502, "provider_error", 21610),
    (21608, 502, "provider_error", 21608),
    (21614, 502, "provider_error", 21614),
    (20003, 502, "provider_error", 20003),
    (21606, 502, "provider_error", 21606),
]


@pytest.mark.parametrize(("twilio_code", "status", "code", "provider_code"), REFUSALS)
def test_a_twilio_error_answers_its_status_and_code(
    api, fake_twilio, twilio_code, status, code, provider_code
):
    fake_twilio.fail_with_error(twilio_code, to=PHONE)
    sent = start(api)
    assert sent.status_code == status
    assert sent.json()["code"] == code
    assert sent.json().get("provider_code") == provider_code


@pytest.mark.parametrize(("twilio_code", "status", "code", "provider_code"), REFUSALS)
def test_a_twilio_error_leaves_a_failed_verification_with_a_send_failed_event(
    api, fake_twilio, twilio_code, status, code, provider_code
):
    fake_twilio.fail_with_error(twilio_code, to=PHONE)
    start(api)
    verification = Verification.objects.get()
    assert verification.status == Verification.Status.FAILED
    assert verification.error_code == code
    event = verification.events.get(kind=VerificationEvent.Kind.SEND_FAILED)
    assert event.detail.get("provider_code") == provider_code


def test_wrong_server_credentials_are_a_provider_error_20003(api, fake_twilio, settings):
    settings.TWILIO_AUTH_TOKEN = "not-the-token"
    sent = start(api)
    assert sent.status_code == 502
    assert sent.json()["provider_code"] == 20003


def test_the_guide_endpoint_answers_a_twilio_error_in_its_own_shape(api, fake_twilio):
    fake_twilio.fail_with_error(21610, to=PHONE)
    sent = api.post(GUIDE_SEND, {"toNumber": PHONE}, format="json")
    assert sent.status_code == 502
    assert sent.json()["success"] is False
    assert sent.json()["code"] == "provider_error"
    assert sent.json()["provider_code"] == 21610


def test_a_refusal_for_one_number_does_not_touch_another(api, fake_twilio):
    fake_twilio.fail_with_error(21610, to=PHONE)
    assert start(api, to="+14155550123").status_code == 201


# --- Twilio unavailable -----------------------------------------------------------


def fail_with_500(fake: FakeTwilio, settings) -> None:
    fake.fail_with_status(500)


def fail_with_503(fake: FakeTwilio, settings) -> None:
    fake.fail_with_status(503)


def fail_with_429(fake: FakeTwilio, settings) -> None:
    fake.fail_with_error(20429)


def close_the_connection(fake: FakeTwilio, settings) -> None:
    fake.close_connection()


def hang(fake: FakeTwilio, settings) -> None:
    # The hang lasts until the fake stops, after the test: only the timeout ends it.
    settings.TWILIO_TIMEOUT_SECONDS = 0.5
    fake.hang()


def refuse_connections(fake: FakeTwilio, settings) -> None:
    settings.TWILIO_API_BASE_URL = f"http://127.0.0.1:{closed_port()}"


FAULTS = [fail_with_500, fail_with_503, fail_with_429, close_the_connection, hang]


@pytest.mark.parametrize("fault", [*FAULTS, refuse_connections])
def test_an_unavailable_twilio_answers_503_provider_unavailable(api, fake_twilio, settings, fault):
    fault(fake_twilio, settings)
    sent = start(api)
    assert sent.status_code == 503
    assert sent.json()["code"] == "provider_unavailable"


@pytest.mark.parametrize("fault", [*FAULTS, refuse_connections])
def test_an_unavailable_twilio_leaves_a_failed_verification(api, fake_twilio, settings, fault):
    fault(fake_twilio, settings)
    start(api)
    verification = Verification.objects.get()
    assert verification.status == Verification.Status.FAILED
    assert verification.events.filter(kind=VerificationEvent.Kind.SEND_FAILED).count() == 1


@pytest.mark.parametrize("fault", FAULTS)
def test_a_failed_send_is_not_retried(api, fake_twilio, settings, fault):
    fault(fake_twilio, settings)
    start(api)
    assert len(fake_twilio.requests) == 1


def test_the_guide_endpoint_answers_an_unavailable_twilio_with_503(api, fake_twilio):
    fake_twilio.close_connection()
    sent = api.post(GUIDE_SEND, {"toNumber": PHONE}, format="json")
    assert sent.status_code == 503
    assert sent.json()["code"] == "provider_unavailable"
    assert sent.json()["success"] is False


def test_missing_server_credentials_answer_503_without_calling_twilio(api, fake_twilio, settings):
    settings.TWILIO_ACCOUNT_SID = ""
    sent = start(api)
    assert sent.status_code == 503
    assert sent.json()["code"] == "provider_unavailable"
    assert fake_twilio.requests == []


# --- The connection to Twilio -------------------------------------------------------


def send_directly(to: str) -> str:
    return sms.send_message(sms.SmsMessage(to=to, body="Your verification code is 123456."))


def test_threads_share_kept_alive_connections_to_twilio(fake_twilio):
    # Each wave of sends overlaps in the fake, so each needs a connection of
    # its own; the second wave finds the first wave's connections kept alive.
    fake_twilio.latency = 0.2
    for _ in range(2):
        wave = [threading.Thread(target=send_directly, args=(PHONE,)) for _ in range(8)]
        for thread in wave:
            thread.start()
        for thread in wave:
            thread.join()
    assert len(fake_twilio.requests) == 16
    assert len({request.client_port for request in fake_twilio.requests}) <= 8


def test_sends_go_through_the_proxy_the_environment_sets(api, fake_twilio, settings, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", fake_twilio.url)  # the fake answers as a proxy would
    monkeypatch.setattr(twilio_backend, "_client", None)
    settings.TWILIO_API_BASE_URL = "http://api.twilio.test"
    assert start(api).status_code == 201
    assert fake_twilio.requests[-1].proxied_for == "api.twilio.test"


def test_no_proxy_spares_twilios_host_from_the_proxy(api, fake_twilio, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setattr(twilio_backend, "_client", None)
    assert start(api).status_code == 201
    assert fake_twilio.requests[-1].proxied_for == ""


# --- The code stays secret -------------------------------------------------------


def test_no_log_record_at_any_level_holds_the_code(api, fake_twilio, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="twilio")
    caplog.set_level(logging.DEBUG, logger="urllib3")
    start(api)
    fake_twilio.fail_with_error(21610, to="+14155550123")
    start(api, to="+14155550123")
    refused_code = CODE_IN_BODY.search(fake_twilio.requests[-1].form["Body"]).group(1)
    codes = [fake_twilio.last_code_for(PHONE), refused_code]
    # The records are there (the client logs each request at INFO), without the codes.
    assert any(record.name.startswith("twilio") for record in caplog.records)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for code in codes:
        assert code not in logged


def test_the_twilio_logger_is_quiet_below_warning():
    assert logging.getLogger("twilio").getEffectiveLevel() == logging.WARNING


# --- System check --------------------------------------------------------------------


def test_the_system_check_warns_when_twilio_has_no_credentials(settings):
    settings.SMS_BACKEND = "twilio"
    settings.TWILIO_ACCOUNT_SID = ""
    settings.TWILIO_AUTH_TOKEN = ""
    warnings = [m for m in checks.run_checks() if m.id == "integrations.W001"]
    assert len(warnings) == 1
    assert "TWILIO_ACCOUNT_SID" in warnings[0].msg


def test_the_system_check_is_silent_when_twilio_is_configured(fake_twilio):
    assert [m for m in checks.run_checks() if m.id == "integrations.W001"] == []


# --- The fake itself -------------------------------------------------------------------


def test_the_fake_lists_an_accounts_messages_as_twilio_does(api, fake_twilio):
    start(api)
    listed = requests.get(
        f"{fake_twilio.url}/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages.json",
        params={"To": PHONE},
        auth=(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN),
        timeout=5,
    )
    assert listed.status_code == 200
    [message] = listed.json()["messages"]
    assert message["sid"] == fake_twilio.messages[0].sid
    assert message["status"] == "queued"


def test_the_fake_refuses_a_wrong_token_as_twilio_does(fake_twilio):
    listed = requests.get(
        f"{fake_twilio.url}/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages.json",
        auth=(DEFAULT_ACCOUNT_SID, "wrong"),
        timeout=5,
    )
    assert listed.status_code == 401
    assert listed.json()["code"] == 20003
    assert listed.json()["more_info"] == "https://www.twilio.com/docs/errors/20003"


def test_the_fakes_delivery_report_is_signed_as_twilio_signs(api, fake_twilio):
    start(api)
    report = fake_twilio.delivery_report(fake_twilio.messages[0], "delivered")
    assert report.url == "http://testserver/integrations/twilio/status-callback"
    validator = RequestValidator(DEFAULT_AUTH_TOKEN)
    assert validator.validate(report.url, report.form, report.signature)


def test_a_hanging_request_does_not_hold_up_the_others(fake_twilio):
    url = f"{fake_twilio.url}/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages.json"
    auth = (DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN)
    fake_twilio.hang(to=PHONE)
    form = {"From": DEFAULT_FROM_NUMBER, "Body": "Your verification code is 123456."}

    def send_to_the_hanging_number() -> None:
        with contextlib.suppress(requests.RequestException):
            requests.post(url, data={**form, "To": PHONE}, auth=auth, timeout=30)

    hanging = threading.Thread(target=send_to_the_hanging_number, daemon=True)
    hanging.start()
    assert fake_twilio.wait_for_requests(1)
    answered = requests.post(url, data={**form, "To": "+14155550123"}, auth=auth, timeout=30)
    assert answered.status_code == 201
    assert hanging.is_alive()


def test_the_system_check_warns_when_twilio_is_reached_over_plain_http(fake_twilio, settings):
    settings.TWILIO_API_BASE_URL = "http://twilio-proxy.example.com"
    twilio_checks = {"integrations.W001", "integrations.W002"}
    found = [m.id for m in checks.run_checks() if m.id in twilio_checks]
    assert found == ["integrations.W002"]
