"""Data migrations keep what the rows held."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from integrations.models import DailySendCount, Verification, VerificationEvent

BEFORE = [("integrations", "0006_verification_event_message_sid")]
AFTER = [("integrations", "0007_message_sid_on_sending_events")]


def migrate(targets: list[tuple[str, str]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor


@pytest.fixture
def at_latest_afterwards(transactional_db):
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_each_sent_messages_sid_moves_from_the_verification_to_its_event(at_latest_afterwards):
    apps = migrate(BEFORE).loader.project_state(BEFORE).apps
    old_verification = apps.get_model("integrations", "Verification")
    old_event = apps.get_model("integrations", "VerificationEvent")
    now = timezone.now()
    sent = old_verification.objects.create(
        phone="+14155552671",
        expires_at=now + timedelta(minutes=5),
        last_sent_at=now - timedelta(minutes=1),
        message_sid="SM" + "2" * 32,
    )
    old_event.objects.create(
        verification=sent, kind="sent", created_at=now, detail={"message_sid": "SM" + "1" * 32}
    )
    old_event.objects.create(
        verification=sent, kind="resent", created_at=now, detail={"message_sid": "SM" + "2" * 32}
    )
    old_event.objects.create(
        verification=sent,
        kind="delivery",
        created_at=now,
        detail={"message_sid": "SM" + "1" * 32, "status": "delivered"},
    )

    migrate(AFTER)
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    events = VerificationEvent.objects.filter(verification_id=sent.pk).order_by("id")
    assert [(e.kind, e.message_sid) for e in events] == [
        ("sent", "SM" + "1" * 32),
        ("resent", "SM" + "2" * 32),
        ("delivery", None),
    ]
    assert Verification.objects.get(pk=sent.pk).current_message_sid() == "SM" + "2" * 32


SLOTS_BEFORE = [("integrations", "0007_message_sid_on_sending_events")]
SLOTS_AFTER = [("integrations", "0008_daily_send_count_slots")]


def test_the_days_counts_spread_over_the_slots_and_come_back(at_latest_afterwards):
    apps = migrate(SLOTS_BEFORE).loader.project_state(SLOTS_BEFORE).apps
    today, yesterday = timezone.now().date(), timezone.now().date() - timedelta(days=1)
    by_day = apps.get_model("integrations", "DailySendCount")
    by_day.objects.create(day=today, count=13)
    by_day.objects.create(day=yesterday, count=3)

    apps = migrate(SLOTS_AFTER).loader.project_state(SLOTS_AFTER).apps
    slots = apps.get_model("integrations", "DailySendCount")
    counts = dict(slots.objects.filter(day=today).values_list("slot", "count"))

    assert sum(counts.values()) == 13
    # Within each slot's share of a cap of 13: that cap is reached, no further.
    assert all(count == DailySendCount.share(slot, 13) for slot, count in counts.items())
    assert sum(slots.objects.filter(day=yesterday).values_list("count", flat=True)) == 3

    apps = migrate(SLOTS_BEFORE).loader.project_state(SLOTS_BEFORE).apps
    by_day = apps.get_model("integrations", "DailySendCount")
    assert dict(by_day.objects.values_list("day", "count")) == {today: 13, yesterday: 3}
