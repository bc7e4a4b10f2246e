"""`rows.insert`: the hot paths' INSERT stores what `save()` would, on SQLite and PostgreSQL."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.db.models.signals import post_save, pre_save
from django.utils import timezone

from integrations.models import PhoneState, Verification, VerificationEvent
from integrations.rows import insert

pytestmark = pytest.mark.django_db


def new_verification(bot, phone: str) -> Verification:
    now = timezone.now()
    verification = Verification(
        bot=bot,
        phone=phone,
        country="US",
        expires_at=now + timedelta(minutes=5),
        last_sent_at=now,
        send_count=1,
        created_at=now,
        provider_account_sid="AC" + "1" * 32,
        provider_auth_token="token-0123",
    )
    verification.code_hmac = verification.hash_code("123456")
    return verification


def stored(model, pk) -> dict:
    """The row's columns as read back, but its id and phone."""
    row = model.objects.get(pk=pk)
    return {
        field.attname: getattr(row, field.attname)
        for field in model._meta.concrete_fields
        if field.attname not in ("id", "phone")
    }


def test_a_verification_is_stored_as_save_stores_it(bot):
    by_insert = new_verification(bot, "+14155550101")
    by_save = new_verification(bot, "+14155550102")
    by_save.created_at = by_insert.created_at
    by_save.expires_at = by_insert.expires_at
    by_save.last_sent_at = by_insert.last_sent_at

    insert(by_insert)
    by_save.save(force_insert=True)

    assert not by_insert._state.adding
    inserted, saved = stored(Verification, by_insert.pk), stored(Verification, by_save.pk)
    assert inserted.pop("code_hmac") == by_insert.code_hmac
    saved.pop("code_hmac")
    assert inserted.pop("updated_at") is not None  # auto_now, set by the field as save() does
    saved.pop("updated_at")
    assert inserted == saved
    # The provider's token is encrypted at rest, as by save().
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT provider_auth_token FROM integrations_verification WHERE id = %s",
            [Verification._meta.pk.get_db_prep_value(by_insert.pk, connection)],
        )
        (raw,) = cursor.fetchone()
    assert raw and "token-0123" not in raw
    assert Verification.objects.get(pk=by_insert.pk).provider_auth_token == "token-0123"


def test_an_event_gets_the_id_the_database_made_and_keeps_its_json(bot):
    verification = new_verification(bot, "+14155550103")
    insert(verification)
    first = VerificationEvent(
        verification=verification,
        kind=VerificationEvent.Kind.CHECK_FAILED,
        created_at=timezone.now(),
        detail={"attempt": 1, "note": "ünïcode ✅"},
    )
    second = VerificationEvent(verification=verification, kind=VerificationEvent.Kind.SENT)

    insert(first)
    insert(second)

    assert first.pk is not None
    assert second.pk is not None
    assert second.pk != first.pk
    assert list(verification.events.order_by("pk").values_list("pk", "kind", "detail")) == [
        (first.pk, "check_failed", {"attempt": 1, "note": "ünïcode ✅"}),
        (second.pk, "sent", {}),
    ]


def test_a_second_row_for_one_phone_raises_djangos_integrity_error():
    """The send's reservation retries on this error when two first sends race."""
    insert(PhoneState(phone="+14155550104", recent_sends=["2026-01-01T00:00:00+00:00"]))
    with pytest.raises(IntegrityError), transaction.atomic():
        insert(PhoneState(phone="+14155550104", recent_sends=[]))
    assert PhoneState.objects.get(pk="+14155550104").recent_sends == ["2026-01-01T00:00:00+00:00"]


@pytest.mark.parametrize("signal", [pre_save, post_save], ids=["pre_save", "post_save"])
def test_a_model_with_a_save_signal_receiver_is_refused(signal):
    """`insert` sends no signal: the receiver would never run, so nothing is stored."""

    def receiver(**kwargs):
        pass

    signal.connect(receiver, sender=PhoneState)
    try:
        with pytest.raises(TypeError, match="PhoneState"):
            insert(PhoneState(phone="+14155550105", recent_sends=[]))
    finally:
        signal.disconnect(receiver, sender=PhoneState)
    assert not PhoneState.objects.filter(pk="+14155550105").exists()


def test_a_model_with_a_save_of_its_own_is_refused():
    """`insert` does not call save(), so a model that overrides it (as Django's users
    do, to keep the password out of memory) is refused."""
    with pytest.raises(TypeError, match="User"):
        insert(User(username="inserted"))
    assert not User.objects.filter(username="inserted").exists()
