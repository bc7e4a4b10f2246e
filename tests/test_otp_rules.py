"""The verification rules of DESIGN.md, each proven through the HTTP API."""

import hashlib
import hmac
import logging
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import phonenumbers
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from phonenumbers import PhoneNumberType

from integrations.models import DailySendCount, PhoneState, Verification, VerificationEvent
from tests.otp_helpers import (
    GB_MOBILE,
    GUIDE_SEND,
    GUIDE_VERIFY,
    US_PHONE,
    US_PHONE_2,
    US_PHONE_3,
    VERIFICATIONS,
    Inbox,
    cancel,
    check,
    example_number,
    resend,
    start,
    startup_failure,
    wrong_code_for,
)

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock(time_machine):
    """Time stands still at START until a test shifts it."""
    time_machine.move_to(START, tick=False)
    return time_machine


@pytest.fixture(params=["locmem", "twilio"])
def inbox(request) -> Iterator[Inbox]:
    """The provider, as the locmem outbox or as the fake Twilio on loopback."""
    if request.param == "twilio":
        yield Inbox(fake=request.getfixturevalue("fake_twilio"))
    else:
        yield Inbox()


def later(clock, seconds: float) -> None:
    clock.shift(timedelta(seconds=seconds))


def dump_all_tables() -> str:
    """Every row of every table, raw as the database returns it."""
    lines = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            lines.extend(f"{table}: {row!r}" for row in cursor.fetchall())
    return "\n".join(lines)


def log_text(records: list[logging.LogRecord]) -> str:
    lines = []
    for record in records:
        lines.append(record.getMessage())
        lines.append(repr(record.args))
        if record.exc_info:
            lines.append("".join(traceback.format_exception(*record.exc_info)))
    return "\n".join(lines)


def stored_hmac(verification_id: str) -> str:
    table = connection.ops.quote_name(Verification._meta.db_table)
    pk = Verification._meta.pk.get_db_prep_value(verification_id, connection)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT code_hmac FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


# --- The code never leaves the server -------------------------------------------------


def test_the_code_appears_in_no_response_log_line_query_or_stored_row(
    api, inbox, settings, caplog, clock
):
    settings.OTP_LENGTH = 10
    caplog.set_level(logging.DEBUG)
    responses = []
    with CaptureQueriesContext(connection) as queries:
        sent = api.post(GUIDE_SEND, {"toNumber": US_PHONE}, format="json")
        responses.append(sent)
        system_otp = sent.json()["systemOtp"]
        first = inbox.last_code_for(US_PHONE)
        wrong = {"systemOtp": system_otp, "userOtp": wrong_code_for(first)}
        responses.append(api.post(GUIDE_VERIFY, wrong, format="json"))
        later(clock, settings.OTP_RESEND_COOLDOWN_SECONDS + 1)
        responses.append(resend(api, system_otp))
        second = inbox.last_code_for(US_PHONE)
        responses.append(api.get(f"{VERIFICATIONS}/{system_otp}"))
        responses.append(check(api, system_otp, first))
        right = {"systemOtp": system_otp, "userOtp": second}
        responses.append(api.post(GUIDE_VERIFY, right, format="json"))
        native = start(api, US_PHONE_2)
        responses.append(native)
        third = inbox.last_code_for(US_PHONE_2)
        responses.append(check(api, native.json()["id"], third))
        responses.append(api.get(f"{VERIFICATIONS}/{native.json()['id']}"))

    assert [r.status_code for r in responses] == [200, 200, 200, 200, 200, 200, 201, 200, 200]
    assert responses[5].json()["verified"] is True
    assert responses[7].json()["verified"] is True
    codes = {first, second, third}
    assert len(codes) == 3 and all(len(code) == 10 and code.isdigit() for code in codes)
    response_text = "\n".join(f"{r.headers!r} {r.content.decode()}" for r in responses)
    query_text = "\n".join(query["sql"] for query in queries.captured_queries)
    table_text = dump_all_tables()
    logs = log_text(caplog.records)
    assert system_otp.replace("-", "") in table_text.replace("-", "")  # the dump sees the rows
    for code in codes:
        assert code not in response_text
        assert code not in logs
        assert code not in query_text
        assert code not in table_text


def test_only_a_keyed_hmac_bound_to_the_verification_is_stored(api, outbox, settings):
    verification_id = start(api).json()["id"]
    code = inbox_code(outbox)

    expected = hmac.new(
        settings.OTP_PEPPER.encode(), f"{verification_id}:{code}".encode(), hashlib.sha256
    ).hexdigest()
    assert stored_hmac(verification_id) == expected


def inbox_code(outbox: list) -> str:
    return Inbox().last_code_for(outbox[-1].to)


# --- Lifetime, single use, binding -------------------------------------------------------


def test_a_code_works_at_the_end_of_its_ttl(api, outbox, settings, clock):
    verification_id = start(api).json()["id"]
    later(clock, settings.OTP_TTL_SECONDS)

    checked = check(api, verification_id, inbox_code(outbox))

    assert checked.json()["verified"] is True


def test_a_code_is_refused_one_second_after_its_ttl(api, outbox, settings, clock):
    verification_id = start(api).json()["id"]
    later(clock, settings.OTP_TTL_SECONDS + 1)

    checked = check(api, verification_id, inbox_code(outbox))

    assert checked.status_code == 200
    assert checked.json()["verified"] is False
    assert checked.json()["status"] == "expired"


def test_a_verification_reads_as_expired_after_its_ttl(api, outbox, settings, clock):
    verification_id = start(api).json()["id"]
    later(clock, settings.OTP_TTL_SECONDS + 1)

    shown = api.get(f"{VERIFICATIONS}/{verification_id}").json()

    assert shown["status"] == "expired"
    assert shown["attempts_left"] == 0
    assert shown["resend_available_at"] is None


def test_a_code_works_once(api, outbox):
    verification_id = start(api).json()["id"]
    code = inbox_code(outbox)
    assert check(api, verification_id, code).json()["verified"] is True

    again = check(api, verification_id, code)

    assert again.status_code == 200
    assert again.json()["verified"] is False
    assert again.json()["status"] == "approved"


def test_a_code_of_one_verification_fails_on_another(api, outbox):
    first_id = start(api, US_PHONE).json()["id"]
    first_code = inbox_code(outbox)
    second_id = start(api, US_PHONE_2).json()["id"]
    second_code = inbox_code(outbox)
    assert first_code != second_code

    checked = check(api, second_id, first_code)

    assert checked.json()["verified"] is False
    assert checked.json()["status"] == "pending"
    assert check(api, first_id, first_code).json()["verified"] is True


def test_a_wrong_code_counts_down_the_attempts_left(api, outbox, settings):
    verification_id = start(api).json()["id"]

    checked = check(api, verification_id, wrong_code_for(inbox_code(outbox)))

    assert checked.status_code == 200
    assert checked.json()["verified"] is False
    assert checked.json()["attempts_left"] == settings.OTP_MAX_CHECK_ATTEMPTS - 1


def test_max_attempts_closes_the_verification_and_the_right_code_is_then_refused(
    api, outbox, settings
):
    settings.OTP_MAX_CHECK_ATTEMPTS = 3
    verification_id = start(api).json()["id"]
    code = inbox_code(outbox)
    answers = [check(api, verification_id, wrong_code_for(code)).json() for _ in range(3)]
    assert [a["status"] for a in answers] == ["pending", "pending", "max_attempts_reached"]

    checked = check(api, verification_id, code)

    assert checked.status_code == 200
    assert checked.json()["verified"] is False
    assert checked.json()["status"] == "max_attempts_reached"
    assert checked.json()["attempts_left"] == 0


def test_a_check_works_when_the_phone_has_no_limits_row(api, outbox, settings):
    # Rows made outside a send (an import, a restored backup) may lack one.
    first_id = start(api).json()["id"]
    code = inbox_code(outbox)
    PhoneState.objects.all().delete()

    wrong = check(api, first_id, wrong_code_for(code))
    right = check(api, first_id, code)

    assert wrong.json()["attempts_left"] == settings.OTP_MAX_CHECK_ATTEMPTS - 1
    assert right.json()["verified"] is True
    assert PhoneState.objects.get(phone=US_PHONE).consecutive_failures == 0


def test_a_check_locks_its_verification_and_phone_in_one_query(api, outbox):
    verification_id = start(api).json()["id"]
    code = inbox_code(outbox)

    with CaptureQueriesContext(connection) as queries:
        assert check(api, verification_id, code).json()["verified"] is True

    reads = [q["sql"] for q in queries if q["sql"].startswith("SELECT")]
    assert len(reads) == 1
    assert "integrations_phonestate" in reads[0]


def updates_of_verifications() -> tuple[int, int]:
    """(rows updated, of which HOT) in the verification table by this transaction."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables"
            " WHERE relname = 'integrations_verification'"
        )
        return cursor.fetchone()


def test_a_check_rewrites_no_index_of_its_verification(api, outbox):
    # PostgreSQL updates the row in place (HOT) only while no index holds a
    # column the check changes; an index on status would double its writes.
    if connection.vendor != "postgresql":
        pytest.skip("HOT updates are PostgreSQL's")
    verification_id = start(api).json()["id"]
    code = inbox_code(outbox)
    updated, hot = updates_of_verifications()

    assert check(api, verification_id, code).json()["verified"] is True

    assert updates_of_verifications() == (updated + 1, hot + 1)


def test_a_send_writes_its_verification_once(api, outbox):
    # The sent message's SID goes into the `sent` event: recording the
    # provider's answer updates no verification row.
    if connection.vendor != "postgresql":
        pytest.skip("row statistics are PostgreSQL's")
    before = updates_of_verifications()

    assert start(api).status_code == 201

    assert updates_of_verifications() == before


def test_verification_pages_keep_room_for_updated_rows(db):
    if connection.vendor != "postgresql":
        pytest.skip("fillfactor is PostgreSQL's")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reloptions FROM pg_class WHERE relname = %s", ["integrations_verification"]
        )
        assert cursor.fetchone()[0] == ["fillfactor=90"]


# --- The per-phone lock ----------------------------------------------------------------


@pytest.fixture
def lock_after_four(settings) -> None:
    settings.OTP_MAX_CHECK_ATTEMPTS = 3
    settings.OTP_PHONE_LOCK_FAILURES = 4
    settings.OTP_PHONE_LOCK_SECONDS = 900


def fail_checks(api, verification_id: str, code: str, times: int) -> list:
    return [check(api, verification_id, wrong_code_for(code)) for _ in range(times)]


def test_the_phone_locks_after_consecutive_failures_across_verifications(
    api, outbox, settings, clock, lock_after_four
):
    first_id = start(api).json()["id"]
    fail_checks(api, first_id, inbox_code(outbox), 3)
    later(clock, settings.OTP_RESEND_COOLDOWN_SECONDS + 1)
    second_id = start(api).json()["id"]
    second_code = inbox_code(outbox)
    fail_checks(api, second_id, second_code, 1)

    refused = check(api, second_id, second_code)

    assert refused.status_code == 429
    assert refused.json()["code"] == "phone_locked"
    assert 0 < int(refused.headers["Retry-After"]) <= 900
    assert VerificationEvent.objects.filter(kind="locked").count() == 1


def test_a_locked_phone_gets_no_new_verification(api, inbox, settings, clock, lock_after_four):
    first_id = start(api).json()["id"]
    fail_checks(api, first_id, inbox.last_code_for(US_PHONE), 3)
    later(clock, settings.OTP_RESEND_COOLDOWN_SECONDS + 1)
    second_id = start(api).json()["id"]
    fail_checks(api, second_id, inbox.last_code_for(US_PHONE), 1)
    later(clock, settings.OTP_RESEND_COOLDOWN_SECONDS + 1)
    sent_before = inbox.count()

    refused = start(api)

    assert refused.status_code == 429
    assert refused.json()["code"] == "phone_locked"
    assert "Retry-After" in refused.headers
    assert inbox.count() == sent_before


def test_a_locked_phone_gets_no_resend(api, inbox, settings, clock, lock_after_four):
    settings.OTP_MAX_CHECK_ATTEMPTS = 10
    verification_id = start(api).json()["id"]
    fail_checks(api, verification_id, inbox.last_code_for(US_PHONE), 4)
    later(clock, settings.OTP_RESEND_COOLDOWN_SECONDS + 1)

    refused = resend(api, verification_id)

    assert refused.status_code == 429
    assert refused.json()["code"] == "phone_locked"
    assert "Retry-After" in refused.headers
    assert inbox.count() == 1


def test_a_resend_does_not_reset_the_phone_failure_count(
    api, outbox, settings, clock, lock_after_four
):
    settings.OTP_MAX_CHECK_ATTEMPTS = 10
    verification_id = start(api).json()["id"]
    fail_checks(api, verification_id, inbox_code(outbox), 3)
    later(clock, settings.OTP_RESEND_COOLDOWN_SECONDS + 1)
    resend(api, verification_id)
    code = inbox_code(outbox)
    fail_checks(api, verification_id, code, 1)

    refused = check(api, verification_id, code)

    assert refused.status_code == 429
    assert refused.json()["code"] == "phone_locked"


def test_a_locked_phone_refuses_even_the_right_code_without_counting_it(
    api, outbox, settings, lock_after_four
):
    settings.OTP_MAX_CHECK_ATTEMPTS = 10
    verification_id = start(api).json()["id"]
    code = inbox_code(outbox)
    fail_checks(api, verification_id, code, 4)

    refused = check(api, verification_id, code)

    assert refused.status_code == 429
    shown = api.get(f"{VERIFICATIONS}/{verification_id}").json()
    assert shown["status"] == "pending"
    assert shown["attempts_left"] == 6


def test_the_phone_lock_is_lifted_after_its_duration(api, outbox, settings, clock, lock_after_four):
    settings.OTP_MAX_CHECK_ATTEMPTS = 10
    settings.OTP_TTL_SECONDS = 600
    settings.OTP_PHONE_LOCK_SECONDS = 500
    verification_id = start(api).json()["id"]
    code = inbox_code(outbox)
    fail_checks(api, verification_id, code, 4)
    later(clock, 499)
    assert check(api, verification_id, code).status_code == 429

    later(clock, 1)
    checked = check(api, verification_id, code)
    sent = start(api, US_PHONE)

    assert checked.status_code == 200
    assert checked.json()["verified"] is True
    assert sent.status_code == 201


def test_an_approval_resets_the_phone_failure_count(api, outbox, settings, clock, lock_after_four):
    first_id = start(api).json()["id"]
    first_code = inbox_code(outbox)
    fail_checks(api, first_id, first_code, 2)
    assert check(api, first_id, first_code).json()["verified"] is True
    later(clock, settings.OTP_RESEND_COOLDOWN_SECONDS + 1)
    second_id = start(api).json()["id"]
    second_code = inbox_code(outbox)

    answers = fail_checks(api, second_id, second_code, 2)

    assert [a.status_code for a in answers] == [200, 200]
    assert check(api, second_id, second_code).json()["verified"] is True


# --- Send limits: checked before the provider, for new sends and resends alike ------------


def test_a_new_send_within_the_cooldown_is_refused_before_the_provider(api, inbox, settings):
    assert start(api).status_code == 201

    refused = start(api)

    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) == settings.OTP_RESEND_COOLDOWN_SECONDS
    assert inbox.count() == 1


def test_a_resend_within_the_cooldown_is_refused_before_the_provider(api, inbox, clock):
    verification_id = start(api).json()["id"]
    later(clock, 10)

    refused = resend(api, verification_id)

    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) == 20
    assert inbox.count() == 1


def test_without_a_cooldown_a_send_stamped_before_the_last_one_is_not_refused(
    api, outbox, settings, clock
):
    # Concurrent sends read the time before they wait for the phone's row, and
    # app servers' clocks differ, so the last send recorded may look "later".
    settings.OTP_RESEND_COOLDOWN_SECONDS = 0
    assert start(api).status_code == 201
    later(clock, -1)

    answer = start(api)

    assert answer.status_code == 201, answer.json()
    assert len(outbox) == 2


def test_a_send_stamped_before_the_last_one_is_within_its_cooldown(api, outbox, clock):
    assert start(api).status_code == 201
    later(clock, -1)

    refused = start(api)

    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert len(outbox) == 1


def test_the_cooldown_applies_per_phone_not_per_bot(api, other_api, inbox):
    assert start(api).status_code == 201

    refused = start(other_api)

    assert refused.status_code == 429
    assert start(other_api, US_PHONE_2).status_code == 201
    assert inbox.count() == 2


def test_the_send_window_limits_new_sends_and_resends_per_phone(api, inbox, settings, clock):
    settings.OTP_MAX_SENDS_PER_PHONE = 3
    settings.OTP_SEND_WINDOW_SECONDS = 600
    cooldown = settings.OTP_RESEND_COOLDOWN_SECONDS + 1
    first_id = start(api).json()["id"]
    later(clock, cooldown)
    assert resend(api, first_id).status_code == 200
    later(clock, cooldown)
    second_id = start(api).json()["id"]
    later(clock, cooldown)

    refused_new = start(api)
    refused_resend = resend(api, second_id)

    assert refused_new.status_code == refused_resend.status_code == 429
    assert refused_new.json()["code"] == refused_resend.json()["code"] == "rate_limited"
    # The first send leaves the window 600 s after it was made.
    assert int(refused_new.headers["Retry-After"]) == 600 - 3 * cooldown
    assert inbox.count() == 3


def test_a_send_window_that_allows_no_send_is_refused_at_startup():
    failure = startup_failure(OTP_MAX_SENDS_PER_PHONE="0")

    assert "OTP_MAX_SENDS_PER_PHONE must be at least 1." in failure


def test_the_send_window_slides(api, inbox, settings, clock):
    settings.OTP_MAX_SENDS_PER_PHONE = 2
    settings.OTP_SEND_WINDOW_SECONDS = 600
    start(api)
    later(clock, 100)
    start(api)
    later(clock, 499)
    assert start(api).status_code == 429

    later(clock, 2)

    assert start(api).status_code == 201
    assert inbox.count() == 3


def test_the_daily_cap_refuses_new_sends_before_the_provider(api, inbox, settings):
    settings.SMS_DAILY_CAP = 2
    start(api, US_PHONE)
    start(api, US_PHONE_2)

    refused = start(api, US_PHONE_3)

    assert refused.status_code == 503
    assert refused.json()["code"] == "daily_cap_reached"
    assert inbox.count() == 2


def test_the_daily_cap_refuses_resends_before_the_provider(api, inbox, settings, clock):
    settings.SMS_DAILY_CAP = 2
    verification_id = start(api, US_PHONE).json()["id"]
    start(api, US_PHONE_2)
    later(clock, settings.OTP_RESEND_COOLDOWN_SECONDS + 1)

    refused = resend(api, verification_id)

    assert refused.status_code == 503
    assert refused.json()["code"] == "daily_cap_reached"
    assert inbox.count() == 2


def test_a_send_refused_by_the_daily_cap_costs_the_phone_nothing(api, outbox, settings, clock):
    settings.SMS_DAILY_CAP = 1
    start(api, US_PHONE_2)
    assert start(api, US_PHONE).status_code == 503

    later(clock, timedelta(days=1).total_seconds())

    assert start(api, US_PHONE).status_code == 201


def test_sends_refused_by_a_phone_limit_cost_the_daily_cap_nothing(api, outbox, settings, clock):
    settings.SMS_DAILY_CAP = 2
    verification_id = start(api, US_PHONE).json()["id"]
    assert start(api, US_PHONE).json()["code"] == "rate_limited"
    assert resend(api, verification_id).json()["code"] == "rate_limited"
    cancel(api, verification_id)
    later(clock, settings.OTP_RESEND_COOLDOWN_SECONDS + 1)
    assert resend(api, verification_id).json()["code"] == "verification_closed"

    assert start(api, US_PHONE_2).status_code == 201
    assert start(api, US_PHONE_3).json()["code"] == "daily_cap_reached"


def us_phones(count: int) -> list[str]:
    return [f"+1415555{2600 + index}" for index in range(count)]


def test_the_daily_cap_is_exact_when_it_does_not_divide_among_the_slots(api, outbox, settings):
    settings.SMS_DAILY_CAP = 2 * DailySendCount.SLOTS + 3
    phones = us_phones(settings.SMS_DAILY_CAP + 1)

    answers = [start(api, phone).status_code for phone in phones]

    assert answers == [201] * settings.SMS_DAILY_CAP + [503]
    assert len(outbox) == settings.SMS_DAILY_CAP


def test_the_days_sends_are_counted_on_several_rows(api, outbox, settings):
    # Sends that all took one row would all queue on its lock.
    for phone in us_phones(24):
        start(api, phone)

    counted = DailySendCount.objects.filter(count__gt=0)
    assert sum(row.count for row in counted) == 24
    assert len(counted) > 1


# --- Resend and cancel --------------------------------------------------------------------


def test_a_resend_voids_the_old_code_and_keeps_the_attempts(api, outbox, settings, clock):
    verification_id = start(api).json()["id"]
    old_code = inbox_code(outbox)
    check(api, verification_id, wrong_code_for(old_code))
    later(clock, settings.OTP_RESEND_COOLDOWN_SECONDS + 1)

    resent = resend(api, verification_id)
    new_code = inbox_code(outbox)

    assert resent.status_code == 200
    assert resent.json()["send_count"] == 2
    assert resent.json()["expires_at"].startswith("2026-03-02T12:05:31")
    assert resent.json()["attempts_left"] == settings.OTP_MAX_CHECK_ATTEMPTS - 1
    assert new_code != old_code
    assert check(api, verification_id, old_code).json()["verified"] is False
    assert check(api, verification_id, new_code).json()["verified"] is True


def test_a_resend_of_an_expired_verification_is_refused_and_records_the_expiry(
    api, outbox, settings, clock
):
    verification_id = start(api).json()["id"]
    later(clock, settings.OTP_TTL_SECONDS + 1)

    refused = resend(api, verification_id)

    assert refused.status_code == 409
    assert refused.json()["code"] == "verification_closed"
    assert Verification.objects.get(pk=verification_id).status == "expired"
    assert VerificationEvent.objects.filter(kind="expired").count() == 1
    assert len(outbox) == 1


def test_a_canceled_verification_refuses_its_code(api, outbox):
    verification_id = start(api).json()["id"]

    canceled = cancel(api, verification_id)
    checked = check(api, verification_id, inbox_code(outbox))

    assert canceled.status_code == 200
    assert canceled.json()["status"] == "canceled"
    assert checked.status_code == 200
    assert checked.json()["verified"] is False
    assert checked.json()["status"] == "canceled"


def test_canceling_twice_answers_the_canceled_verification(api, outbox):
    verification_id = start(api).json()["id"]
    cancel(api, verification_id)

    again = cancel(api, verification_id)

    assert again.status_code == 200
    assert again.json()["status"] == "canceled"


def test_canceling_an_approved_verification_is_refused(api, outbox):
    verification_id = start(api).json()["id"]
    check(api, verification_id, inbox_code(outbox))

    refused = cancel(api, verification_id)

    assert refused.status_code == 409
    assert refused.json()["code"] == "verification_closed"


def test_a_resend_of_a_canceled_verification_is_refused(api, outbox, settings, clock):
    verification_id = start(api).json()["id"]
    cancel(api, verification_id)
    later(clock, settings.OTP_RESEND_COOLDOWN_SECONDS + 1)

    refused = resend(api, verification_id)

    assert refused.status_code == 409
    assert len(outbox) == 1


def test_the_guide_verify_answers_the_terminal_status_of_a_closed_verification(
    api, outbox, settings, clock
):
    system_otp = api.post(GUIDE_SEND, {"toNumber": US_PHONE}, format="json").json()["systemOtp"]
    later(clock, settings.OTP_TTL_SECONDS + 1)

    answer = api.post(
        GUIDE_VERIFY, {"systemOtp": system_otp, "userOtp": inbox_code(outbox)}, format="json"
    )

    assert answer.status_code == 200
    assert answer.json() == {
        "success": True,
        "verified": False,
        "status": "expired",
        "attemptsLeft": 0,
    }


def test_a_check_on_a_verification_that_could_not_be_sent_answers_failed(api, fake_twilio):
    fake_twilio.fail_with_status(503)
    refused = start(api)
    assert refused.status_code == 503
    assert refused.json()["code"] == "provider_unavailable"
    verification_id = str(Verification.objects.get().pk)

    checked = check(api, verification_id, "123456")

    assert checked.status_code == 200
    assert checked.json()["verified"] is False
    assert checked.json()["status"] == "failed"
    assert checked.json()["attempts_left"] == 0


# --- Which phones get a code ---------------------------------------------------------------


def test_a_country_outside_the_allowlist_is_refused_before_the_provider(api, inbox, settings):
    settings.OTP_ALLOWED_COUNTRIES = ["GB", "IN"]

    refused = start(api, US_PHONE)

    assert refused.status_code == 400
    assert refused.json()["code"] == "country_not_allowed"
    assert inbox.count() == 0
    assert start(api, GB_MOBILE).status_code == 201


@pytest.mark.parametrize(
    ("region", "kind"),
    [
        ("GB", PhoneNumberType.PREMIUM_RATE),
        ("FR", PhoneNumberType.SHARED_COST),
        ("GB", PhoneNumberType.TOLL_FREE),
        ("US", PhoneNumberType.TOLL_FREE),
        ("GB", PhoneNumberType.UAN),
        ("GB", PhoneNumberType.PAGER),
        ("DE", PhoneNumberType.VOICEMAIL),
    ],
)
def test_numbers_that_cost_money_or_reach_no_handset_are_refused(api, outbox, region, kind):
    refused = start(api, example_number(region, kind))

    assert refused.status_code == 400
    assert refused.json()["code"] == "invalid_phone_number"
    assert outbox == []


@pytest.mark.parametrize("country_code", [870, 878, 881, 882, 883])
def test_non_geographic_numbers_are_refused(api, outbox, country_code):
    number = phonenumbers.example_number_for_non_geo_entity(country_code)
    assert phonenumbers.is_valid_number(number)

    refused = start(api, phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))

    assert refused.status_code == 400
    assert refused.json()["code"] == "invalid_phone_number"
    assert outbox == []


def test_a_number_longer_than_e164_allows_is_refused(api, outbox):
    # A valid German fixed line to phonenumbers, but 17 digits: more than E.164's 15.
    number = phonenumbers.parse("+49201234567890123")
    assert phonenumbers.is_valid_number(number)

    refused = start(api, "+49201234567890123")

    assert refused.status_code == 400
    assert refused.json()["code"] == "invalid_phone_number"
    assert outbox == []


def test_a_phone_is_normalised_and_masked(api, outbox):
    sent = start(api, "+1 (415) 555-2671")

    assert sent.status_code == 201
    assert sent.json()["to"] == "+1415****2671"
    assert outbox[0].to == US_PHONE
