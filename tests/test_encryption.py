"""Secrets at rest: encrypted with FIELD_ENCRYPTION_KEYS, rotated by rotate_encryption_keys."""

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection

from integrations.crypto import DecryptionError
from integrations.executor import call_api
from integrations.models import ApiCallLog, ApiHeader

from .developer_helpers import definition

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


def test_without_rotation_dropping_the_old_key_makes_secrets_unreadable(settings, stored):
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    with pytest.raises(DecryptionError):
        ApiHeader.objects.get(pk=stored.pk)


def test_rotation_names_rows_no_key_can_read(settings, stored):
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    with pytest.raises(CommandError, match=f"integrations.ApiHeader.secret_value #{stored.pk}"):
        call_command("rotate_encryption_keys")


def test_a_call_whose_secret_no_key_reads_is_a_logged_error(settings, stored):
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    outcome = call_api(stored.definition, {}, origin="admin_test")
    assert outcome.error_code == "secret_unreadable"
    assert ApiCallLog.objects.get().error_code == "secret_unreadable"
