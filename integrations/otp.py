"""The OTP service: send a code, check it, resend it, cancel it.

Sending is three steps so that no lock is held during the provider's network
call: reserve the send atomically (limits checked, counters taken, code
hash stored), call the provider outside any transaction, then record the
outcome atomically. A send refused by a limit never reaches the provider.
"""

import math
import random
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from . import delivery, sms
from .exceptions import (
    DailyCapReachedError,
    PhoneLockedError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitedError,
    ServiceError,
    VerificationClosedError,
    VerificationNotFoundError,
)
from .models import Bot, Channel, DailySendCount, PhoneState, Verification, VerificationEvent
from .phones import normalize_phone
from .rows import insert

Status = Verification.Status
Event = VerificationEvent.Kind
T = TypeVar("T")


@dataclass(frozen=True)
class CheckResult:
    verification: Verification
    verified: bool


def generate_code() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(settings.OTP_LENGTH))


def start_verification(
    to: str,
    *,
    bot: Bot | None,
    channel: str = Channel.SMS,
    user_ref: str = "",
    account: sms.ProviderAccount | None = None,
) -> Verification:
    """Create a verification for `to` and send it a new code."""
    phone, country = normalize_phone(to)
    now = timezone.now()
    code = generate_code()
    verification = Verification(
        bot=bot,
        phone=phone,
        country=country,
        channel=channel,
        user_ref=user_ref,
        expires_at=now + timedelta(seconds=settings.OTP_TTL_SECONDS),
        last_sent_at=now,
        send_count=1,
        created_at=now,
    )
    if account is not None:
        verification.provider_account_sid = account.account_sid
        verification.provider_auth_token = account.auth_token
        verification.provider_from_number = account.from_number
    verification.code_hmac = verification.hash_code(code)

    def reserve() -> None:
        _reserve_send(phone, now)
        insert(verification)
        _take_from_daily_cap(now)

    _atomic_with_one_retry(reserve)
    _deliver(verification, code, event=Event.SENT)
    return verification


def get_verification(verification_id: object, *, bot: Bot | None) -> Verification:
    """The verification with this id, if `bot` may see it (None: staff, any bot's)."""
    try:
        return Verification.objects.for_bot(bot).get(pk=_verification_pk(verification_id))
    except Verification.DoesNotExist:
        raise VerificationNotFoundError() from None


def resend_code(verification_id: object, *, bot: Bot | None) -> Verification:
    """Send a new code for a pending verification; the old code stops working.

    Attempts and the per-phone counters are kept: a resend is a send like
    any other for the limits.
    """
    now = timezone.now()
    code = generate_code()

    def reserve() -> Verification:
        verification = _locked_verification(verification_id, bot)
        _expire_if_due(verification, now)
        if verification.status == Status.PENDING:
            _reserve_send(verification.phone, now)
            verification.code_hmac = verification.hash_code(code)
            verification.send_count += 1  # the row is locked: no lost update
            verification.expires_at = now + timedelta(seconds=settings.OTP_TTL_SECONDS)
            verification.last_sent_at = now
            verification.delivery_status = ""  # of the new message, not yet reported
            verification.save(
                update_fields=[
                    "code_hmac",
                    "send_count",
                    "expires_at",
                    "last_sent_at",
                    "delivery_status",
                    "updated_at",
                ]
            )
            _take_from_daily_cap(now)
        return verification

    verification = _atomic_with_one_retry(reserve)
    if verification.status != Status.PENDING:
        # Raised after the commit, so an expiry recorded above is kept.
        raise VerificationClosedError()
    _deliver(verification, code, event=Event.RESENT)
    return verification


def check_code(verification_id: object, code: str, *, bot: Bot | None) -> CheckResult:
    """Compare `code` with the verification's current code, once.

    The row is locked for the comparison, so of many concurrent checks at
    most OTP_MAX_CHECK_ATTEMPTS are compared and at most one succeeds.
    """
    now = timezone.now()
    locked_until = None
    with transaction.atomic():
        verification, state = _locked_verification_and_phone(verification_id, bot)
        _expire_if_due(verification, now)
        if verification.status != Status.PENDING:
            return CheckResult(verification, verified=False)
        if state.is_locked(now):
            locked_until = state.locked_until
        elif verification.code_matches(code):
            verification.status = Status.APPROVED
            verification.code_hmac = ""
            verification.save(update_fields=["status", "code_hmac", "updated_at"])
            _add_event(verification, Event.APPROVED, now)
            if state.consecutive_failures:
                state.consecutive_failures = 0
                state.save(update_fields=["consecutive_failures"])
            return CheckResult(verification, verified=True)
        else:
            verification.attempts += 1
            _add_event(verification, Event.CHECK_FAILED, now, attempt=verification.attempts)
            if verification.attempts >= settings.OTP_MAX_CHECK_ATTEMPTS:
                verification.status = Status.MAX_ATTEMPTS_REACHED
                verification.code_hmac = ""
                _add_event(verification, Event.MAX_ATTEMPTS, now)
            verification.save(update_fields=["attempts", "status", "code_hmac", "updated_at"])
            if _register_phone_failure(state, now):
                _add_event(verification, Event.LOCKED, now)
            return CheckResult(verification, verified=False)
    # Raised after the commit, so an expiry recorded above is kept.
    raise PhoneLockedError(retry_after=_seconds_until(locked_until, now))


def cancel_verification(verification_id: object, *, bot: Bot | None) -> Verification:
    """Close a pending verification; canceling a canceled one is a no-op."""
    now = timezone.now()
    with transaction.atomic():
        verification = _locked_verification(verification_id, bot)
        _expire_if_due(verification, now)
        closed = verification.status not in (Status.PENDING, Status.CANCELED)
        if verification.status == Status.PENDING:
            verification.status = Status.CANCELED
            verification.code_hmac = ""
            verification.save(update_fields=["status", "code_hmac", "updated_at"])
            _add_event(verification, Event.CANCELED, now)
    if closed:
        # Raised after the commit, so an expiry recorded above is kept.
        raise VerificationClosedError()
    return verification


def current_status(verification: Verification, now: datetime | None = None) -> str:
    """The status as a reader should see it: a pending code past its TTL is expired."""
    if verification.status == Status.PENDING and verification.is_expired(now or timezone.now()):
        return Status.EXPIRED
    return verification.status


# --- Steps of a send ------------------------------------------------------------


def _reserve_send(phone: str, now: datetime) -> None:
    """Take one send from the phone's allowance, or raise.

    Must run inside a transaction: the phone's row stays locked until commit,
    so concurrent sends to one number are counted one after the other.
    """
    state = _locked_phone_state(phone)
    if state is None:
        # The number's first send: its row starts with it, locked by the insert.
        try:
            insert(PhoneState(phone=phone, recent_sends=[now.isoformat()]))
        except IntegrityError:
            raise _PhoneRowRace() from None
        return
    if state.is_locked(now):
        raise PhoneLockedError(retry_after=_seconds_until(state.locked_until, now))

    window = timedelta(seconds=settings.OTP_SEND_WINDOW_SECONDS)
    # `now` was read before the row's lock was granted (and app servers' clocks
    # differ a little), so the last send recorded may be later than `now`: the
    # times are sorted, and the cooldown is a distance on either side.
    recent = sorted(t for t in map(datetime.fromisoformat, state.recent_sends) if t > now - window)
    cooldown = timedelta(seconds=settings.OTP_RESEND_COOLDOWN_SECONDS)
    if recent and abs(now - recent[-1]) < cooldown:
        raise RateLimitedError(
            "A code was sent to this number moments ago. Wait before asking for another.",
            retry_after=_seconds_until(recent[-1] + cooldown, now),
        )
    if len(recent) >= settings.OTP_MAX_SENDS_PER_PHONE:
        raise RateLimitedError(retry_after=_seconds_until(recent[0] + window, now))

    state.recent_sends = [t.isoformat() for t in sorted([*recent, now])]
    state.save(update_fields=["recent_sends"])


class _PhoneRowRace(Exception):
    """Two first sends to one number both inserted its row; the later insert failed."""


def _atomic_with_one_retry(reserve: Callable[[], T]) -> T:
    """Run `reserve` in a transaction, and once more after a `_PhoneRowRace`.

    The later of two first sends to a number fails on inserting the phone's
    row once the earlier commits (without a savepoint its whole transaction
    is void); run again, it finds that row and counts against it.
    """
    try:
        with transaction.atomic():
            return reserve()
    except _PhoneRowRace:
        with transaction.atomic():
            return reserve()


def _take_from_daily_cap(now: datetime) -> None:
    """Count this send against the day's SMS_DAILY_CAP, or raise (fails closed).

    The last step of a reservation: the day's row it updates then stays locked
    only until the commit, as long as it would in a statement of its own. A
    send that the reservation refuses is never counted, as its transaction
    rolls back. The send takes a slot at random; only when that slot is full,
    or the day has no rows yet, does it look for another.
    """
    day, cap = now.date(), settings.SMS_DAILY_CAP
    if DailySendCount.take_one(day, slot=random.randrange(DailySendCount.SLOTS), cap=cap):
        return
    DailySendCount.objects.bulk_create(
        [DailySendCount(day=day, slot=slot) for slot in range(DailySendCount.SLOTS)],
        ignore_conflicts=True,
    )
    for slot in DailySendCount.slots_with_room(day, cap):
        if DailySendCount.take_one(day, slot=slot, cap=cap):
            return
    raise DailyCapReachedError()


def _deliver(verification: Verification, code: str, *, event: str) -> None:
    """Call the provider (no transaction open) and record what happened."""
    message = sms.SmsMessage(
        to=verification.phone,
        body=_message_text(code),
        channel=verification.channel,
        account=_account_of(verification),
        status_callback=delivery.status_callback_url(),
    )
    try:
        message_sid = sms.send_message(message)
    except ServiceError as exc:
        _record_send_failure(verification, exc)
        raise
    except Exception:
        # A bug or a misconfigured backend: the row must not stay pending with
        # a code nobody received, but the error itself stays a real error.
        _record_send_failure(verification, ProviderUnavailableError())
        raise
    # One INSERT: the event is where the message's SID is kept, and the
    # reservation already wrote everything else this send changes.
    insert(
        VerificationEvent(
            verification=verification,
            kind=event,
            created_at=timezone.now(),
            message_sid=message_sid,
        )
    )


def _record_send_failure(verification: Verification, exc: ServiceError) -> None:
    now = timezone.now()
    detail: dict[str, object] = {"error_code": exc.code}
    if isinstance(exc, ProviderError) and exc.provider_code is not None:
        detail["provider_code"] = exc.provider_code
    with transaction.atomic():
        Verification.objects.filter(pk=verification.pk).update(
            status=Status.FAILED, error_code=exc.code, code_hmac="", updated_at=now
        )
        _add_event(verification, Event.SEND_FAILED, now, **detail)
    verification.status = Status.FAILED
    verification.error_code = exc.code


def _message_text(code: str) -> str:
    minutes = max(settings.OTP_TTL_SECONDS // 60, 1)
    return (
        f"Your verification code is {code}. It expires in {minutes} minutes. "
        "Never share it with anyone."
    )


def _account_of(verification: Verification) -> sms.ProviderAccount | None:
    if not verification.provider_account_sid:
        return None
    return sms.ProviderAccount(
        account_sid=verification.provider_account_sid,
        auth_token=verification.provider_auth_token,
        from_number=verification.provider_from_number,
    )


# --- Small pieces ---------------------------------------------------------------


def _verification_pk(verification_id: object) -> uuid.UUID:
    try:
        return uuid.UUID(str(verification_id))
    except ValueError:
        raise VerificationNotFoundError() from None


def _locked_verification(verification_id: object, bot: Bot | None) -> Verification:
    """Like get_verification, with the row locked until the transaction ends.

    One query finds, authorises and locks: a check costs no extra read.
    """
    pk = _verification_pk(verification_id)
    try:
        return Verification.objects.for_bot(bot).select_for_update().get(pk=pk)
    except Verification.DoesNotExist:
        raise VerificationNotFoundError() from None


def _locked_verification_and_phone(
    verification_id: object, bot: Bot | None
) -> tuple[Verification, PhoneState]:
    """The verification and its phone's row, both locked until the transaction ends.

    Checks of several verifications of one number then count their failures
    one after the other, and none compares a code once the phone is locked.
    One statement locks both rows (FOR UPDATE locks every row of an inner
    join), the verification's first, as a resend does, so the two never
    deadlock. It is written as SQL because every check runs it: the ORM took
    about 0.4 ms of CPU to build the same select_related query (26 columns
    and a join), more than PostgreSQL took to run it.
    """
    pk = _verification_pk(verification_id)
    # As the ORM would send it: a native uuid on PostgreSQL, hex text on SQLite.
    params: list[object] = [Verification._meta.pk.get_db_prep_value(pk, connection)]
    if bot is not None:
        params.append(bot.pk)
    found = list(Verification.objects.raw(_lock_sql(by_bot=bot is not None), params))
    if not found:
        # Not found, or its phone has no row yet (a send always makes one).
        verification = _locked_verification(verification_id, bot)
        state, _ = PhoneState.objects.select_for_update().get_or_create(phone=verification.phone)
        return verification, state
    verification = found[0]
    # raw() converts the verification's columns; the phone's arrive as plain
    # extra attributes, converted here as the ORM would have.
    fields = {
        "phone": verification.phone,
        "consecutive_failures": verification.phone_failures,  # type: ignore[attr-defined]
        "locked_until": verification.phone_locked_until,  # type: ignore[attr-defined]
    }
    values = [_as_read_by_the_orm(PhoneState, name, value) for name, value in fields.items()]
    return verification, PhoneState.from_db(verification._state.db, list(fields), values)


def _locked_phone_state(phone: str) -> PhoneState | None:
    """The phone's row, locked until the transaction ends; None for a number never sent to.

    Written as SQL for the reason the check's lock is: every send runs it, and
    the ORM spent more CPU building this one-row SELECT than running it.
    """
    sql = (
        "SELECT phone, recent_sends, consecutive_failures, locked_until"
        " FROM integrations_phonestate WHERE phone = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql + _for_update(), [phone])
        row = cursor.fetchone()
        names = [column[0] for column in cursor.description]
    if row is None:
        return None
    # Read as a cursor row, not through raw(), which spent more CPU mapping
    # the columns to the model than converting the four values costs.
    values = [
        _as_read_by_the_orm(PhoneState, name, value) for name, value in zip(names, row, strict=True)
    ]
    return PhoneState.from_db(connection.alias, names, values)


def _as_read_by_the_orm(model: type[models.Model], name: str, value: object) -> object:
    """A column's raw value converted as a queryset would (e.g. SQLite's datetimes)."""
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field)
    column = field.get_col(model._meta.db_table)
    for convert in connection.ops.get_db_converters(column) + column.get_db_converters(connection):
        value = convert(value, column, connection)
    return value


def _lock_sql(*, by_bot: bool) -> str:
    """SELECT a verification (of one bot) with its phone's counters, both rows locked."""
    sql = (
        "SELECT v.*, p.consecutive_failures AS phone_failures,"
        " p.locked_until AS phone_locked_until"
        " FROM integrations_verification v"
        " INNER JOIN integrations_phonestate p ON p.phone = v.phone"
        " WHERE v.id = %s"
    )
    if by_bot:
        sql += " AND v.bot_id = %s"
    return sql + _for_update()


def _for_update() -> str:
    # SQLite has no row locks; its transactions here take the write lock at BEGIN.
    return " FOR UPDATE" if connection.features.has_select_for_update else ""


def _expire_if_due(verification: Verification, now: datetime) -> None:
    if verification.status == Status.PENDING and verification.is_expired(now):
        verification.status = Status.EXPIRED
        verification.code_hmac = ""
        verification.save(update_fields=["status", "code_hmac", "updated_at"])
        _add_event(verification, Event.EXPIRED, now)


def _register_phone_failure(state: PhoneState, now: datetime) -> bool:
    """Count a wrong code against the phone (its row locked); True when it locks it.

    The count spans verifications: starting a new one does not reset it.
    """
    state.consecutive_failures += 1
    locked = state.consecutive_failures >= settings.OTP_PHONE_LOCK_FAILURES
    if locked:
        state.locked_until = now + timedelta(seconds=settings.OTP_PHONE_LOCK_SECONDS)
        state.consecutive_failures = 0
    state.save(update_fields=["consecutive_failures", "locked_until"])
    return locked


def _add_event(verification: Verification, kind: str, now: datetime, **detail: object) -> None:
    insert(VerificationEvent(verification=verification, kind=kind, created_at=now, detail=detail))


def _seconds_until(moment: datetime | None, now: datetime) -> int:
    """Whole seconds to wait (rounded up, at least 1), for Retry-After."""
    if moment is None:
        return 0
    return max(math.ceil((moment - now).total_seconds()), 1)
