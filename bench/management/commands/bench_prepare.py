"""Create what one bench scenario needs and write its request targets as JSON.

    manage.py bench_prepare bot --out FILE              a bot and its API key
    manage.py bench_prepare write_floor --count N --out FILE
    manage.py bench_prepare check --count N --out FILE
    manage.py bench_prepare send --count N --out FILE
    manage.py bench_prepare flow --count N --out FILE   the demo flow and N phone numbers

Each target is `[method, path, body]`, used once by the load generator.
"""

import contextlib
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from bench.models import BenchCounter
from integrations import otp
from integrations.exceptions import ServiceError
from integrations.models import Bot, BotAPIKey, PhoneState, Verification, VerificationEvent
from integrations.phones import normalize_phone

BENCH_BOT = "Bench bot"
BATCH = 2000

# Separate ranges of US numbers, so the phones that `check` uses never meet
# the per-phone limits of the phones that `send` uses.
CHECK_AREA_CODE = "415"
SEND_AREA_CODE = "650"
FLOW_AREA_CODE = "212"

Target = list[str]


class Command(BaseCommand):
    help = "Prepare one benchmark scenario and write its request targets as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("scenario", choices=["bot", "write_floor", "check", "send", "flow"])
        parser.add_argument("--count", type=int, default=0)
        parser.add_argument("--out", required=True)

    def handle(self, *args: object, scenario: str, count: int, out: str, **options: object) -> None:
        if scenario == "bot":
            payload: dict[str, object] = {"api_key": create_bench_key()}
        elif scenario == "write_floor":
            payload = {"targets": prepare_write_floor(count)}
        elif scenario == "check":
            payload = {"targets": prepare_check(count)}
        elif scenario == "send":
            payload = {"targets": prepare_send(count)}
        elif scenario == "flow":
            payload = prepare_flow(count)
        else:  # argparse's choices keep this unreachable
            raise CommandError(f"Unknown scenario {scenario!r}.")
        settle_database()
        Path(out).write_text(json.dumps(payload))


def settle_database() -> None:
    """Write out what earlier scenarios and this preparation left behind.

    Thousands of rows inserted in bulk leave dirty pages, dead rows and stale
    planner statistics; without this, the next scenario's commits would wait
    behind a checkpoint or an autovacuum it did not cause.
    """
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("VACUUM ANALYZE")
            with contextlib.suppress(DatabaseError):  # superuser or pg_checkpoint only
                cursor.execute("CHECKPOINT")
        elif connection.vendor == "sqlite":
            cursor.execute("ANALYZE")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def create_bench_key() -> str:
    bot, _ = Bot.objects.get_or_create(name=BENCH_BOT)
    _, key = BotAPIKey.objects.create_key(bot=bot, name="bench")
    return key


def prepare_write_floor(count: int) -> list[Target]:
    """`count` counters, one per request, so requests never wait on each other's lock."""
    start = BenchCounter.objects.count()
    counters = [BenchCounter(key=f"k{start + i:09d}") for i in range(count)]
    BenchCounter.objects.bulk_create(counters, batch_size=BATCH)
    return [["POST", f"/bench/write-floor/{c.key}", ""] for c in counters]


@transaction.atomic
def prepare_check(count: int) -> list[Target]:
    """`count` pending verifications on distinct phones, each with a code known to the bench.

    The rows are what a real send leaves behind (the verification, its phone's
    state and a `sent` event), written in bulk because sending thousands of
    codes one by one would take longer than the measurement.
    """
    bot = Bot.objects.get(name=BENCH_BOT)
    now = timezone.now()
    # The longest TTL allowed: the codes must outlive the scenarios run before `check`.
    expires_at = now + timedelta(seconds=600)
    skip = Verification.objects.filter(phone__startswith=f"+1{CHECK_AREA_CODE}").count()
    phones = _valid_phones(CHECK_AREA_CODE, count, skip=skip)
    verifications, codes = [], []
    for phone in phones:
        verification = Verification(
            bot=bot,
            phone=phone,
            country="US",
            expires_at=expires_at,
            last_sent_at=now,
            send_count=1,
            created_at=now,
        )
        code = otp.generate_code()
        verification.code_hmac = verification.hash_code(code)
        verifications.append(verification)
        codes.append(code)
    Verification.objects.bulk_create(verifications, batch_size=BATCH)
    PhoneState.objects.bulk_create(
        [PhoneState(phone=phone, recent_sends=[now.isoformat()]) for phone in phones],
        batch_size=BATCH,
    )
    VerificationEvent.objects.bulk_create(
        [
            VerificationEvent(
                verification=v,
                kind=VerificationEvent.Kind.SENT,
                created_at=now,
                message_sid=f"SMbench{i:026d}",
            )
            for i, v in enumerate(verifications)
        ],
        batch_size=BATCH,
    )
    return [
        ["POST", f"/api/v1/verifications/{v.pk}/check", json.dumps({"code": code})]
        for v, code in zip(verifications, codes, strict=True)
    ]


def prepare_send(count: int) -> list[Target]:
    """`count` distinct mobile numbers that nothing has been sent to yet."""
    skip = PhoneState.objects.filter(phone__startswith=f"+1{SEND_AREA_CODE}").count()
    phones = _valid_phones(SEND_AREA_CODE, count, skip=skip)
    if count > settings.SMS_DAILY_CAP:
        raise CommandError(f"SMS_DAILY_CAP ({settings.SMS_DAILY_CAP}) is below {count} sends.")
    return [["POST", "/api/v1/verifications", json.dumps({"to": phone})] for phone in phones]


def prepare_flow(count: int) -> dict[str, object]:
    """The demo flow for the bench bot, its two API definitions, and `count` fresh numbers.

    The definitions call this same server with a key of the bench bot, as the
    demo does with the demo bot's key.
    """
    try:
        from chatflows.demo import VERIFIED_TEXT, create_demo_flow
        from integrations.demo import install_demo_api_definitions
    except ImportError as exc:
        raise CommandError(f"no demo flow to run ({exc})") from exc
    install_demo_api_definitions(create_bench_key())
    flow, _ = create_demo_flow(Bot.objects.get(name=BENCH_BOT))
    skip = PhoneState.objects.filter(phone__startswith=f"+1{FLOW_AREA_CODE}").count()
    phones = _valid_phones(FLOW_AREA_CODE, count, skip=skip)
    return {"flow_id": flow.pk, "phones": phones, "expect": VERIFIED_TEXT}


def _valid_phones(area_code: str, count: int, *, skip: int) -> list[str]:
    """`count` distinct numbers of one area code that the service accepts, after `skip`."""
    phones: list[str] = []
    for candidate in _numbers_in(area_code):
        try:
            phone, _ = normalize_phone(candidate)
        except ServiceError:
            continue
        if skip:
            skip -= 1
            continue
        phones.append(phone)
        if len(phones) == count:
            return phones
    raise CommandError(f"Not enough valid numbers in area code {area_code}.")


def _numbers_in(area_code: str) -> Iterator[str]:
    # Exchanges 201-999 without N11 and 555 (reserved for fiction).
    for exchange in range(201, 1000):
        if exchange % 100 == 11 or exchange == 555:
            continue
        for line in range(10000):
            yield f"+1{area_code}{exchange:03d}{line:04d}"
