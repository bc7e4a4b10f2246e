"""Retention: log rows leave the database after LOG_RETENTION_DAYS, and only this way."""

from datetime import datetime

from django.db import transaction
from django.db.models import QuerySet

from .models import ApiCallLog, Verification, VerificationEvent

BATCH_SIZE = 5000


def purge_logs(*, older_than: datetime, batch_size: int = BATCH_SIZE) -> tuple[int, int]:
    """Delete verifications (with their events) and API-call log rows created before `older_than`.

    Deletes in batches, each its own short transaction, so purging months of
    traffic neither holds locks for long nor builds one huge transaction.
    Returns (verifications deleted, API calls deleted).
    """
    verifications = _purge_in_batches(
        Verification.objects.filter(created_at__lt=older_than), batch_size, with_events=True
    )
    calls = _purge_in_batches(ApiCallLog.objects.older_than(older_than), batch_size)
    return verifications, calls


def _purge_in_batches(queryset: QuerySet, batch_size: int, *, with_events: bool = False) -> int:
    deleted = 0
    while True:
        ids = list(queryset.order_by().values_list("pk", flat=True)[:batch_size])
        if not ids:
            return deleted
        with transaction.atomic():
            if with_events:
                VerificationEvent.objects.filter(verification_id__in=ids).delete()
            queryset.model.objects.filter(pk__in=ids).delete()
        deleted += len(ids)
