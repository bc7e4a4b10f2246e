"""Retention: `manage.py purge_logs` deletes log rows older than LOG_RETENTION_DAYS."""

import io
from datetime import timedelta

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.utils import timezone

from integrations.models import ApiCallLog, Verification, VerificationEvent
from integrations.retention import purge_logs
from tests.log_helpers import make_api_call, make_event, make_verification


@pytest.fixture(autouse=True)
def frozen_time():
    with time_machine.travel("2026-06-01 12:00:00+00:00", tick=False):
        yield


@pytest.fixture(autouse=True)
def retention(settings):
    settings.LOG_RETENTION_DAYS = 90


def purge(*args: str) -> str:
    out = io.StringIO()
    call_command("purge_logs", *args, stdout=out)
    return out.getvalue()


def days_ago(days: float):
    return timezone.now() - timedelta(days=days)


def test_a_verification_one_day_inside_the_period_stays(db):
    kept = make_verification(created_at=days_ago(89))
    purge()
    assert Verification.objects.filter(pk=kept.pk).exists()


def test_a_verification_one_day_outside_the_period_goes(db):
    old = make_verification(created_at=days_ago(91))
    purge()
    assert not Verification.objects.filter(pk=old.pk).exists()


def test_the_events_of_a_purged_verification_go_with_it(db):
    old = make_verification(created_at=days_ago(91))
    make_event(old, VerificationEvent.Kind.SENT)
    make_event(old, VerificationEvent.Kind.DELIVERY, status="delivered")
    purge()
    assert not VerificationEvent.objects.exists()


def test_an_api_call_one_day_inside_the_period_stays(db):
    kept = make_api_call(created_at=days_ago(89))
    purge()
    assert ApiCallLog.objects.filter(pk=kept.pk).exists()


def test_an_api_call_one_day_outside_the_period_goes(db):
    make_api_call(created_at=days_ago(91))
    purge()
    assert not ApiCallLog.objects.exists()


def test_days_overrides_the_retention_setting(db):
    make_verification(created_at=days_ago(8))
    kept = make_verification(created_at=days_ago(6))
    purge("--days", "7")
    assert list(Verification.objects.all()) == [kept]


def test_it_says_how_many_rows_it_deleted(db):
    make_verification(created_at=days_ago(91))
    make_verification(created_at=days_ago(92))
    make_api_call(created_at=days_ago(100))
    assert "Deleted 2 verifications and 1 API calls" in purge()


def test_it_purges_more_rows_than_one_batch(db):
    make_verification(created_at=days_ago(95))
    make_verification(created_at=days_ago(96))
    make_verification(created_at=days_ago(97))
    assert purge_logs(older_than=days_ago(90), batch_size=2) == (3, 0)
    assert not Verification.objects.exists()


@pytest.mark.parametrize("days", ["0", "-3"])
def test_a_period_under_one_day_is_refused(db, days):
    make_verification(created_at=days_ago(2))
    with pytest.raises(CommandError):
        purge("--days", days)
    assert Verification.objects.count() == 1
