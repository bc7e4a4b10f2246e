"""Fill the verification log with fake rows, to try the admin at scale."""

import random
import uuid
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from integrations.dashboard import forget_cached_days
from integrations.models import Bot, Channel, Verification, VerificationEvent

FAKE_BOT = "Fake traffic"

# Country, calling-code prefix, national digits: shaped like real numbers,
# never sent anything (no provider is called).
COUNTRIES = [
    ("US", "+1415", 7, 30),
    ("GB", "+447", 9, 15),
    ("IN", "+919", 9, 15),
    ("DE", "+4915", 9, 10),
    ("FR", "+336", 8, 8),
    ("BR", "+55119", 8, 8),
    ("NG", "+23480", 8, 5),
    ("ID", "+62812", 8, 5),
    ("PK", "+923", 9, 2),
    ("UZ", "+99890", 7, 2),
]
STATUSES = [
    (Verification.Status.APPROVED, 55),
    (Verification.Status.EXPIRED, 20),
    (Verification.Status.PENDING, 8),
    (Verification.Status.MAX_ATTEMPTS_REACHED, 5),
    (Verification.Status.CANCELED, 4),
    (Verification.Status.FAILED, 8),
]
DELIVERY = [("delivered", 85), ("sent", 7), ("undelivered", 4), ("failed", 4)]


class Command(BaseCommand):
    help = "Create N fake verifications (with their sent events) over the last days (bulk inserts)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("count", type=int)
        parser.add_argument("--days", type=int, default=60, help="spread rows over this many days")
        parser.add_argument("--batch-size", type=int, default=5000)
        parser.add_argument(
            "--seed", type=int, default=None, help="random seed, for repeatable data"
        )

    def handle(self, *args: object, **options: object) -> None:
        count = int(options["count"])
        days = max(int(options["days"]), 1)
        batch_size = max(int(options["batch_size"]), 1)
        rng = random.Random(options["seed"])
        bot, _ = Bot.objects.get_or_create(
            name=FAKE_BOT, defaults={"description": "Rows made by seed_fake_logs."}
        )
        other_bots = list(Bot.objects.exclude(pk=bot.pk)[:3])
        bots = [bot, bot, bot, *other_bots]
        now = timezone.now()
        span = days * 86400
        countries, country_weights = zip(*[(c[:3], c[3]) for c in COUNTRIES], strict=True)
        statuses, status_weights = zip(*STATUSES, strict=True)
        deliveries, delivery_weights = zip(*DELIVERY, strict=True)
        made = 0
        while made < count:
            size = min(batch_size, count - made)
            rows, events = [], []
            for n in range(made, made + size):
                country, prefix, digits = rng.choices(countries, country_weights)[0]
                status = rng.choices(statuses, status_weights)[0]
                # Oldest first, as real traffic is written: the table's physical
                # order then follows created_at, as it does in production.
                created = now - timedelta(seconds=span * (count - n) / count - rng.random())
                failed = status == Verification.Status.FAILED
                rows.append(
                    Verification(
                        id=uuid.UUID(int=rng.getrandbits(128), version=4),
                        bot=rng.choice(bots),
                        phone=prefix + "".join(rng.choices("0123456789", k=digits)),
                        country=country,
                        channel=Channel.WHATSAPP if rng.random() < 0.1 else Channel.SMS,
                        status=status,
                        attempts=rng.choice([0, 0, 0, 1, 2]),
                        send_count=0 if failed else rng.choice([1, 1, 1, 1, 2, 3]),
                        expires_at=created + timedelta(minutes=5),
                        last_sent_at=None if failed else created,
                        error_code="provider_error" if failed else "",
                        delivery_status=""
                        if failed
                        else rng.choices(deliveries, delivery_weights)[0],
                        created_at=created,
                    )
                )
                if not failed:
                    # Its message, as a send records it: the SID on the `sent` event.
                    events.append(
                        VerificationEvent(
                            verification=rows[-1],
                            kind=VerificationEvent.Kind.SENT,
                            created_at=created,
                            message_sid="SM" + uuid.UUID(int=rng.getrandbits(128)).hex,
                        )
                    )
            Verification.objects.bulk_create(rows, batch_size=batch_size)
            VerificationEvent.objects.bulk_create(events, batch_size=batch_size)
            made += size
            if made % (batch_size * 20) == 0 or made == count:
                self.stdout.write(f"{made} rows")
        # The dashboard caches settled days; some of them just got new rows.
        forget_cached_days()
        self.stdout.write(self.style.SUCCESS(f"Created {count} fake verifications."))
