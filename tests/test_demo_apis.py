"""The demo's Send OTP and Verify OTP definitions, run against the app itself over HTTP."""

import re

import pytest
from django.core.management import call_command

from integrations.executor import call_api
from integrations.models import ApiCallLog, ApiDefinition, CustomAttribute

from .conftest import code_in


@pytest.fixture
def demo(live_server, settings, capsys):
    settings.PUBLIC_BASE_URL = live_server.url
    settings.INTEGRATIONS_ALLOWED_PRIVATE_HOSTS = ["localhost"]
    call_command("setup_demo")
    out = capsys.readouterr().out
    return re.search(r"Bot API key:\s+(\S+)", out).group(1)


def test_setup_demo_creates_the_guides_attributes_and_definitions(demo):
    names = set(CustomAttribute.objects.values_list("name", flat=True))
    assert {"phone", "otp_id", "otp_code", "otp_verified", "otp_status"} <= names
    send = ApiDefinition.objects.get(name="Send OTP")
    assert send.headers.get().secret_value == f"Api-Key {demo}"
    assert [r.key for r in send.body_params.all()] == [
        "toNumber",
        "accountSID",
        "authToken",
        "fromNumber",
    ]


def test_setup_demo_can_run_again_and_uses_the_new_key(demo, capsys):
    call_command("setup_demo")
    new_key = re.search(r"Bot API key:\s+(\S+)", capsys.readouterr().out).group(1)
    assert ApiDefinition.objects.filter(name="Send OTP").count() == 1
    assert ApiDefinition.objects.get(name="Verify OTP").headers.get().secret_value == (
        f"Api-Key {new_key}"
    )


def test_the_demo_definitions_send_and_verify_a_code(demo, outbox):
    send = ApiDefinition.objects.get(name="Send OTP")
    verify = ApiDefinition.objects.get(name="Verify OTP")
    sent = call_api(send, {"phone": "+14155552671"}, origin="conversation")
    assert sent.ok, sent
    code = code_in(outbox[-1])
    checked = call_api(
        verify, {"otp_id": sent.saved["otp_id"], "otp_code": code}, origin="conversation"
    )
    assert checked.saved == {"otp_verified": True, "otp_status": "approved"}
    assert not any(code in log.request_excerpt for log in ApiCallLog.objects.all())


def test_a_refused_send_is_an_error_whose_code_a_flow_can_branch_on(demo):
    send = ApiDefinition.objects.get(name="Send OTP")
    outcome = call_api(send, {"phone": "12"}, origin="conversation")
    assert not outcome.ok
    assert outcome.error_code == "http_error"
    assert outcome.saved == {"otp_error": "invalid_phone_number"}
