"""Bad input gets a 4xx with a machine-readable code, reaches no provider, never a 500."""

import json

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberType
from rest_framework.test import APIClient

from integrations.models import Verification
from tests.otp_helpers import (
    GUIDE_SEND,
    GUIDE_VERIFY,
    US_PHONE,
    US_PHONE_2,
    VERIFICATIONS,
    example_number,
)

JSON = "application/json"
GUIDE_PATHS = {GUIDE_SEND, GUIDE_VERIFY}
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
TWO_MB = 2 * 1024 * 1024
# Digits to a human eye, not to an ASCII comparison: refused, never normalised.
FULL_WIDTH_CODE = "\uff11\uff12\uff13\uff14\uff15\uff16"
ARABIC_INDIC_CODE = "\u0661\u0662\u0663\u0664\u0665\u0666"


@pytest.fixture
def pending_id(api, fake_twilio) -> str:
    """A pending verification of the bot, sent through the fake Twilio."""
    sent = api.post(VERIFICATIONS, {"to": US_PHONE_2}, format="json")
    assert sent.status_code == 201
    return sent.json()["id"]


def post_raw(api, path: str, body: bytes | str, content_type: str = JSON):
    return api.generic("POST", path, body, content_type=content_type)


def assert_refused(response, status: int, code: str, *, guide: bool) -> None:
    """A JSON error with the contract's code (and the guide's envelope on its endpoints)."""
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code
    assert body["detail"]
    if guide:
        assert body["success"] is False
        assert body["message"]


def deeply_nested(levels: int) -> str:
    return "[" * levels + "]" * levels


CASES = [
    # Not JSON, or not the JSON of an object.
    (GUIDE_SEND, '{"toNumber": "+14155552671"', JSON, 400, "invalid_request"),
    (GUIDE_SEND, "toNumber=+14155552671", "application/x-www-form-urlencoded", 415, None),
    (GUIDE_SEND, "+14155552671", "text/plain", 415, None),
    (VERIFICATIONS, '{"to": "+14155552671"}', "text/plain", 415, None),
    (VERIFICATIONS, "--x\r\n\r\n--x--", "multipart/form-data; boundary=x", 415, None),
    (GUIDE_SEND, b'{"toNumber": "\xff\xfe"}', JSON, 400, "invalid_request"),
    (GUIDE_SEND, '{"toNumber": "+1415\x005552671"}', JSON, 400, "invalid_request"),
    (GUIDE_SEND, '["+14155552671"]', JSON, 400, "invalid_request"),
    (GUIDE_SEND, '"+14155552671"', JSON, 400, "invalid_request"),
    (GUIDE_SEND, "14155552671", JSON, 400, "invalid_request"),
    (GUIDE_SEND, "null", JSON, 400, "invalid_request"),
    (GUIDE_SEND, "", JSON, 400, "invalid_request"),
    (VERIFICATIONS, "[]", JSON, 400, "invalid_request"),
    (VERIFICATIONS, "true", JSON, 400, "invalid_request"),
    (VERIFICATIONS, '{"to": NaN}', JSON, 400, "invalid_request"),
    (GUIDE_VERIFY, "42", JSON, 400, "invalid_request"),
    (GUIDE_SEND, deeply_nested(10_000), JSON, 400, "invalid_request"),
    (VERIFICATIONS, '{"to": ' + deeply_nested(3_000) + "}", JSON, 400, "invalid_request"),
    # Missing, unknown (native API only) and mistyped fields.
    (GUIDE_SEND, "{}", JSON, 400, "invalid_request"),
    (GUIDE_VERIFY, '{"systemOtp": "{id}"}', JSON, 400, "invalid_request"),
    (VERIFICATIONS, '{"channel": "sms"}', JSON, 400, "invalid_request"),
    (VERIFICATIONS, '{"to": "+14155552671", "bogus": 1}', JSON, 400, "invalid_request"),
    (VERIFICATIONS, '{"to": "+14155552671", "channel": "fax"}', JSON, 400, "invalid_request"),
    ("{check}", '{"code": "123456", "extra": true}', JSON, 400, "invalid_request"),
    ("{resend}", '{"force": true}', JSON, 400, "invalid_request"),
    ("{cancel}", '{"reason": "x"}', JSON, 400, "invalid_request"),
    ("{resend}", "[]", JSON, 400, "invalid_request"),
    (GUIDE_SEND, '{"toNumber": ["+14155552671"]}', JSON, 400, "invalid_request"),
    (GUIDE_SEND, '{"toNumber": {"number": "+14155552671"}}', JSON, 400, "invalid_request"),
    (GUIDE_SEND, '{"toNumber": true}', JSON, 400, "invalid_request"),
    (GUIDE_SEND, '{"toNumber": null}', JSON, 400, "invalid_request"),
    (VERIFICATIONS, '{"to": ["+14155552671"]}', JSON, 400, "invalid_request"),
    ("{check}", '{"code": {"value": "123456"}}', JSON, 400, "invalid_request"),
    ("{check}", '{"code": ["123456"]}', JSON, 400, "invalid_request"),
    (GUIDE_VERIFY, '{"systemOtp": "{id}", "userOtp": {"a": 1}}', JSON, 400, "invalid_request"),
    (GUIDE_VERIFY, '{"systemOtp": ["{id}"], "userOtp": "123456"}', JSON, 400, "invalid_request"),
    (GUIDE_SEND, '{"toNumber": "+14155552671", "accountSID": "AC1"}', JSON, 400, "invalid_request"),
    (VERIFICATIONS, '{"to": "+14155552671", "user_ref": "a\\nb"}', JSON, 400, "invalid_request"),
    (VERIFICATIONS, '{"to": "+14155552671", "user_ref": "\\ud800"}', JSON, 400, "invalid_request"),
    (VERIFICATIONS, json.dumps({"to": US_PHONE, "user_ref": "x" * 201}), JSON, 400, None),
    # Phones that are no phone, or must not get a code.
    (GUIDE_SEND, '{"toNumber": "+1415555\\u00002671"}', JSON, 400, "invalid_request"),
    (GUIDE_SEND, '{"toNumber": "call me maybe"}', JSON, 400, "invalid_phone_number"),
    (GUIDE_SEND, '{"toNumber": "+1 415 555 ABCD"}', JSON, 400, "invalid_phone_number"),
    (VERIFICATIONS, '{"to": "+1-800-FLOWERS"}', JSON, 400, "invalid_phone_number"),
    (GUIDE_SEND, json.dumps({"toNumber": "+" + "1" * 30}), JSON, 400, "invalid_phone_number"),
    (VERIFICATIONS, json.dumps({"to": "4" * 30}), JSON, 400, "invalid_phone_number"),
    (VERIFICATIONS, json.dumps({"to": "4" * 41}), JSON, 400, "invalid_request"),
    (VERIFICATIONS, '{"to": "4155552671"}', JSON, 400, "invalid_phone_number"),
    (VERIFICATIONS, '{"to": "+1415555267"}', JSON, 400, "invalid_phone_number"),
    (VERIFICATIONS, '{"to": ""}', JSON, 400, "invalid_request"),
    (
        GUIDE_SEND,
        json.dumps({"toNumber": example_number("GB", PhoneNumberType.PREMIUM_RATE)}),
        JSON,
        400,
        "invalid_phone_number",
    ),
    (
        VERIFICATIONS,
        json.dumps({"to": example_number("FR", PhoneNumberType.SHARED_COST)}),
        JSON,
        400,
        "invalid_phone_number",
    ),
    # Codes of the wrong shape, ids that are no id.
    ("{check}", '{"code": "12345"}', JSON, 400, "invalid_request"),
    ("{check}", '{"code": "1234567"}', JSON, 400, "invalid_request"),
    ("{check}", '{"code": "12345a"}', JSON, 400, "invalid_request"),
    ("{check}", '{"code": ""}', JSON, 400, "invalid_request"),
    ("{check}", json.dumps({"code": FULL_WIDTH_CODE}), JSON, 400, "invalid_request"),
    ("{check}", json.dumps({"code": ARABIC_INDIC_CODE}), JSON, 400, "invalid_request"),
    (GUIDE_VERIFY, json.dumps({"systemOtp": "{id}", "userOtp": FULL_WIDTH_CODE}), JSON, 400, None),
    (GUIDE_VERIFY, '{"systemOtp": "{id}", "userOtp": "123"}', JSON, 400, "invalid_request"),
    (GUIDE_VERIFY, '{"systemOtp": "123456", "userOtp": "123456"}', JSON, 404, "not_found"),
    (GUIDE_VERIFY, '{"systemOtp": "../../admin", "userOtp": "123456"}', JSON, 404, "not_found"),
    (GUIDE_VERIFY, '{"systemOtp": 7, "userOtp": "123456"}', JSON, 404, "not_found"),
    (GUIDE_VERIFY, json.dumps({"systemOtp": UNKNOWN_ID, "userOtp": "123456"}), JSON, 404, None),
    (GUIDE_VERIFY, json.dumps({"systemOtp": "x" * 65, "userOtp": "123456"}), JSON, 400, None),
    (f"{VERIFICATIONS}/not-an-id/check", '{"code": "123456"}', JSON, 404, "not_found"),
    (f"{VERIFICATIONS}/{UNKNOWN_ID}/resend", "{}", JSON, 404, "not_found"),
    (f"{VERIFICATIONS}/{UNKNOWN_ID}/cancel", "{}", JSON, 404, "not_found"),
]


def case_id(case: tuple) -> str:
    path, body, content_type, status, _ = case
    text = body if isinstance(body, str) else body.decode("latin-1")
    return f"{path} {content_type.split(';')[0]} {text[:40]!r} -> {status}"


@pytest.mark.parametrize(
    ("path", "body", "content_type", "status", "code"),
    [pytest.param(*case, id=case_id(case)) for case in CASES],
)
def test_bad_input_gets_a_4xx_with_a_code_and_reaches_no_provider(
    api, fake_twilio, pending_id, path, body, content_type, status, code
):
    path = (
        path.replace("{check}", f"{VERIFICATIONS}/{pending_id}/check")
        .replace("{resend}", f"{VERIFICATIONS}/{pending_id}/resend")
        .replace("{cancel}", f"{VERIFICATIONS}/{pending_id}/cancel")
    )
    if isinstance(body, str):
        body = body.replace("{id}", pending_id)
    requests_before = len(fake_twilio.requests)

    response = post_raw(api, path, body, content_type)

    expected_code = code or {415: "unsupported_media_type", 404: "not_found"}.get(
        status, "invalid_request"
    )
    assert_refused(response, status, expected_code, guide=path in GUIDE_PATHS)
    assert len(fake_twilio.requests) == requests_before
    verification = Verification.objects.get(pk=pending_id)
    assert (verification.status, verification.attempts) == ("pending", 0)


@pytest.mark.parametrize("path", [GUIDE_SEND, GUIDE_VERIFY, VERIFICATIONS])
def test_a_2_mb_body_gets_413_with_a_code(api, fake_twilio, path):
    body = json.dumps({"toNumber": US_PHONE, "to": US_PHONE, "padding": "x" * TWO_MB})

    response = post_raw(api, path, body)

    assert_refused(response, 413, "invalid_request", guide=path in GUIDE_PATHS)
    assert fake_twilio.requests == []


def test_the_guide_send_ignores_fields_it_does_not_know(api, fake_twilio):
    body = {"toNumber": US_PHONE, "userId": "42", "platform": {"name": "botbuilder"}}

    sent = api.post(GUIDE_SEND, body, format="json")

    assert sent.status_code == 200
    assert sent.json()["success"] is True
    assert len(fake_twilio.messages_to(US_PHONE)) == 1


def test_the_guide_verify_ignores_fields_it_does_not_know(api, fake_twilio):
    system_otp = api.post(GUIDE_SEND, {"toNumber": US_PHONE}, format="json").json()["systemOtp"]
    body = {
        "systemOtp": system_otp,
        "userOtp": fake_twilio.last_code_for(US_PHONE),
        "sessionId": "abc",
    }

    verified = api.post(GUIDE_VERIFY, body, format="json")

    assert verified.status_code == 200
    assert verified.json()["verified"] is True


def test_a_code_with_spaces_around_it_is_read(api, fake_twilio, pending_id):
    code = fake_twilio.last_code_for(US_PHONE_2)

    checked = api.post(f"{VERIFICATIONS}/{pending_id}/check", {"code": f" {code} "}, format="json")

    assert checked.json()["verified"] is True


# --- No JSON body answers 5xx ------------------------------------------------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.sampled_from([US_PHONE, "+447400123456", "123456", FULL_WIDTH_CODE, UNKNOWN_ID, ""])
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = ["toNumber", "accountSID", "authToken", "fromNumber", "systemOtp", "userOtp"]
NATIVE_FIELDS = ["to", "channel", "user_ref", "code"]
BODIES = JSON_VALUES | st.fixed_dictionaries(
    {}, optional={name: JSON_VALUES for name in FIELDS + NATIVE_FIELDS}
)
PROPERTY_SETTINGS = hypothesis_settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def json_body(value: object) -> str:
    # allow_nan: NaN and Infinity are not JSON, which the parser must refuse cleanly.
    return json.dumps(value, allow_nan=True)


@pytest.mark.parametrize(
    "path",
    [GUIDE_SEND, GUIDE_VERIFY, VERIFICATIONS, "{check}", "{resend}", "{cancel}"],
)
@PROPERTY_SETTINGS
@given(body=BODIES)
def test_no_json_body_gets_a_5xx(api, outbox, pending_local_id, path, body):
    path = path.replace("{check}", f"{VERIFICATIONS}/{pending_local_id}/check")
    path = path.replace("{resend}", f"{VERIFICATIONS}/{pending_local_id}/resend")
    path = path.replace("{cancel}", f"{VERIFICATIONS}/{pending_local_id}/cancel")

    response = post_raw(api, path, json_body(body))

    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        assert response.json()["code"]


@pytest.fixture
def pending_local_id(api, outbox) -> str:
    """A pending verification sent through the locmem outbox."""
    return api.post(VERIFICATIONS, {"to": US_PHONE_2}, format="json").json()["id"]


# --- Errors outside the views ------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/nothing-here"),
        ("post", "/api/v1/verifications/a/b/c"),
        ("post", "/integrations/custom-feature/send-otp"),
    ],
)
def test_an_unknown_api_url_answers_json_with_a_code(api, method, path):
    response = getattr(api, method)(path)

    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"


def test_an_unknown_admin_url_keeps_the_html_page(admin_client):
    response = admin_client.get("/admin/no-such-page/really/")

    assert response.status_code == 404
    assert "text/html" in response.headers["Content-Type"]


@pytest.mark.parametrize(
    ("path", "body", "guide"),
    [
        (VERIFICATIONS, {"to": US_PHONE}, False),
        (GUIDE_SEND, {"toNumber": US_PHONE}, True),
    ],
)
def test_a_crash_under_the_api_answers_json_with_a_code(api_key, settings, path, body, guide):
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key}")
    # A typo in SMS_BACKEND: a misconfiguration, and a real crash.
    settings.SMS_BACKEND = "integrations.sms.NoSuchBackend"

    response = client.post(path, body, format="json")

    assert response.status_code == 500
    assert response.json()["code"] == "server_error"
    assert ("success" in response.json()) is guide
    assert Verification.objects.get().status == "failed"
