"""Secrets at rest: encrypted with FIELD_ENCRYPTION_KEYS, rotated by rotate_encryption_keys,
and still harmless when a key was dropped before rotating."""

from datetime import timedelta
from urllib.parse import urlencode

import pytest
import time_machine
from cryptography.fernet import Fernet
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from twilio.request_validator import RequestValidator

from integrations.crypto import UnreadableSecret
from integrations.executor import call_api
from integrations.models import ApiCallLog, ApiDefinition, ApiHeader, Verification

from .developer_helpers import definition, serve

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()
SECRET = "Bearer rotate-me-0123456789"

pytestmark = pytest.mark.django_db


def raw_secret(row: ApiHeader) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret_value FROM integrations_apiheader WHERE id = %s", [row.pk])
        return cursor.fetchone()[0]


@pytest.fixture
def stored(settings):
    settings.FIELD_ENCRYPTION_KEYS = [OLD_KEY]
    api = definition("https://api.example.com/", secret_headers={"Authorization": SECRET})
    return api.headers.get()


def test_a_secret_is_stored_as_a_token_of_the_first_key(stored):
    raw = raw_secret(stored)
    assert SECRET not in raw
    assert Fernet(OLD_KEY.encode()).decrypt(raw.encode()).decode() == SECRET


def test_rows_under_the_old_key_still_read_once_a_new_key_is_first(settings, stored):
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    assert ApiHeader.objects.get(pk=stored.pk).secret_value == SECRET


def test_rotation_moves_every_secret_to_the_new_key(settings, stored, capsys):
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    call_command("rotate_encryption_keys")
    assert "integrations.ApiHeader.secret_value: 1 re-encrypted" in capsys.readouterr().out
    assert Fernet(NEW_KEY.encode()).decrypt(raw_secret(stored).encode()).decode() == SECRET
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    assert ApiHeader.objects.get(pk=stored.pk).secret_value == SECRET


def test_a_secret_no_key_reads_loads_as_unreadable_instead_of_failing(settings, stored):
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    secret = ApiHeader.objects.get(pk=stored.pk).secret_value
    assert isinstance(secret, UnreadableSecret)
    assert secret == ""


def test_saving_a_row_whose_secret_no_key_reads_keeps_its_ciphertext(settings, stored):
    before = raw_secret(stored)
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    row = ApiHeader.objects.get(pk=stored.pk)
    row.key = "X-Authorization"
    row.save()
    assert raw_secret(stored) == before


def test_adding_the_old_key_back_recovers_a_secret_saved_while_unreadable(settings, stored):
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    ApiHeader.objects.get(pk=stored.pk).save()
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    assert ApiHeader.objects.get(pk=stored.pk).secret_value == SECRET


def test_rotation_names_rows_no_key_can_read(settings, stored):
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    with pytest.raises(CommandError, match=f"integrations.ApiHeader.secret_value #{stored.pk}"):
        call_command("rotate_encryption_keys")


def test_a_call_whose_secret_no_key_reads_is_a_logged_error(settings, stored):
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    outcome = call_api(stored.definition, {}, origin="admin_test")
    assert outcome.error_code == "secret_unreadable"
    assert ApiCallLog.objects.get().error_code == "secret_unreadable"


def test_a_call_whose_secret_no_key_reads_is_not_sent(settings):
    settings.INTEGRATIONS_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    settings.FIELD_ENCRYPTION_KEYS = [OLD_KEY]
    with serve() as server:
        api = definition(server.url("/json"), secret_headers={"Authorization": SECRET})
        settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
        call_api(api, {}, origin="admin_test")
        assert server.requests == []


# --- The Developer Section's change page -------------------------------------------


@pytest.fixture
def staff(client):
    user = get_user_model().objects.create_superuser("staff", "staff@example.com", "pw")
    client.force_login(user)
    return client


def change_url(row: ApiHeader) -> str:
    return reverse("admin:integrations_apidefinition_change", args=[row.definition_id])


def change_form(row: ApiHeader, typed_secret: str) -> dict[str, str]:
    """The change form as the browser posts it, with `typed_secret` in the header's value."""
    api = row.definition
    data = {
        "name": api.name,
        "description": "changed",
        "method": api.method,
        "url": api.url,
        "body_format": api.body_format,
        "timeout": str(api.timeout),
        "retries": str(api.retries),
        "headers-0-id": str(row.pk),
        "headers-0-definition": str(api.pk),
        "headers-0-key": row.key,
        "headers-0-value": typed_secret,
        "headers-0-is_secret": "on",
        "headers-0-position": "0",
    }
    for prefix, count in [("query_params", 0), ("headers", 1), ("body_params", 0)]:
        data.update({f"{prefix}-TOTAL_FORMS": str(count), f"{prefix}-INITIAL_FORMS": str(count)})
    data.update({"response_mappings-TOTAL_FORMS": "0", "response_mappings-INITIAL_FORMS": "0"})
    return data


def test_the_change_page_says_a_secret_no_key_reads_is_unreadable(settings, stored, staff):
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    page = staff.get(change_url(stored))
    assert page.status_code == 200
    html = page.content.decode()
    assert "The secret of header “Authorization” is unreadable." in html
    assert "add the old key back to FIELD_ENCRYPTION_KEYS" in html


def test_saving_the_definition_without_a_new_secret_keeps_the_old_ciphertext(
    settings, stored, staff
):
    before = raw_secret(stored)
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    response = staff.post(change_url(stored), change_form(stored, ""))
    assert response.status_code == 302
    assert ApiDefinition.objects.get().description == "changed"
    assert raw_secret(stored) == before


def test_typing_a_new_secret_replaces_one_no_key_reads(settings, stored, staff):
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    response = staff.post(change_url(stored), change_form(stored, "Bearer typed-again-4321"))
    assert response.status_code == 302
    assert ApiHeader.objects.get(pk=stored.pk).secret_value == "Bearer typed-again-4321"
    assert (
        Fernet(NEW_KEY.encode()).decrypt(raw_secret(stored).encode()) == b"Bearer typed-again-4321"
    )


# --- A bot's own Twilio token, kept with its verification ---------------------------

SERVER_SID = "AC" + "1" * 32
SERVER_TOKEN = "server-auth-token-0123456789"
BOT_SID = "AC" + "2" * 32
BOT_TOKEN = "bot-own-auth-token-9876543210"
PHONE = "+14155552671"
CALLBACK = "/integrations/twilio/status-callback"


@pytest.fixture
def bot_account_verification(settings, api, outbox) -> Verification:
    """A verification sent with the bot's own Twilio account, its token under OLD_KEY."""
    settings.FIELD_ENCRYPTION_KEYS = [OLD_KEY]
    settings.TWILIO_ACCOUNT_SID = SERVER_SID
    settings.TWILIO_AUTH_TOKEN = SERVER_TOKEN
    sent = api.post(
        "/integrations/custom-feature/send-otp-sms",
        {
            "toNumber": PHONE,
            "accountSID": BOT_SID,
            "authToken": BOT_TOKEN,
            "fromNumber": "+15005550006",
        },
        format="json",
    )
    assert sent.status_code == 200, sent.json()
    return Verification.objects.get(pk=sent.json()["verificationId"])


def post_report(verification: Verification, *, token: str):
    """A delivery report for the verification's message, signed with `token` as Twilio signs."""
    form = {
        "MessageSid": verification.current_message_sid(),
        "MessageStatus": "delivered",
        "AccountSid": BOT_SID,
    }
    signature = RequestValidator(token).compute_signature("http://testserver" + CALLBACK, form)
    return Client().post(
        CALLBACK,
        urlencode(form),
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=signature,
    )


def test_a_report_signed_with_the_bots_token_is_accepted_while_a_key_reads_it(
    bot_account_verification,
):
    assert post_report(bot_account_verification, token=BOT_TOKEN).status_code == 200


def test_a_report_for_a_verification_whose_token_no_key_reads_answers_403(
    settings, bot_account_verification
):
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    response = post_report(bot_account_verification, token=BOT_TOKEN)
    assert response.status_code == 403
    assert response.json()["code"] == "invalid_signature"


def test_an_unreadable_token_is_not_replaced_by_the_servers_token(
    settings, bot_account_verification
):
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    assert post_report(bot_account_verification, token=SERVER_TOKEN).status_code == 403


def test_the_verification_log_page_shows_a_verification_whose_token_no_key_reads(
    settings, bot_account_verification, staff
):
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    url = f"/admin/integrations/verification/{bot_account_verification.pk}/change/"
    assert staff.get(url).status_code == 200


def test_a_resend_whose_stored_twilio_token_no_key_reads_is_a_provider_error_not_sent(
    settings, api, fake_twilio
):
    settings.FIELD_ENCRYPTION_KEYS = [OLD_KEY]
    fake_twilio.accounts[BOT_SID] = BOT_TOKEN
    sent = api.post(
        "/integrations/custom-feature/send-otp-sms",
        {
            "toNumber": PHONE,
            "accountSID": BOT_SID,
            "authToken": BOT_TOKEN,
            "fromNumber": "+15005550006",
        },
        format="json",
    )
    assert sent.status_code == 200, sent.json()
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    with time_machine.travel(timezone.now() + timedelta(minutes=1)):
        resent = api.post(f"/api/v1/verifications/{sent.json()['verificationId']}/resend")
    assert resent.status_code == 502, resent.content
    assert resent.json()["code"] == "provider_error"
    assert len(fake_twilio.requests) == 1  # the first send only
