"""Delete log rows older than the retention period (run it daily from cron)."""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from integrations.dashboard import cache_settled_days
from integrations.retention import purge_logs


class Command(BaseCommand):
    help = (
        "Delete verifications (with their events) and API-call log rows older than "
        "LOG_RETENTION_DAYS days, or --days N; then prepare the dashboard's cached days."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help="keep this many days (default LOG_RETENTION_DAYS)",
        )

    def handle(self, *args: object, **options: object) -> None:
        days = options["days"] if options["days"] is not None else settings.LOG_RETENTION_DAYS
        if not isinstance(days, int) or days < 1:
            raise CommandError("--days must be a whole number of days, 1 or more.")
        cutoff = timezone.now() - timedelta(days=days)
        verifications, calls = purge_logs(older_than=cutoff)
        # Run daily anyway: also prepare the dashboard's settled days, so the
        # first view of the day does not read a month of rows.
        cache_settled_days()
        self.stdout.write(
            f"Deleted {verifications} verifications and {calls} API calls "
            f"created before {cutoff:%Y-%m-%d %H:%M:%S} UTC."
        )
