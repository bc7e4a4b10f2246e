from django.core.management.base import BaseCommand, CommandError

from integrations.rotation import rotate_stored_secrets


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret under the first key of FIELD_ENCRYPTION_KEYS. "
        "Put the new key first, keep the old ones, run this, then drop the old keys."
    )

    def handle(self, *args: object, **options: object) -> None:
        report = rotate_stored_secrets()
        for label, count in report.rotated.items():
            self.stdout.write(f"{label}: {count} re-encrypted")
        if report.failed:
            raise CommandError(
                "No configured key decrypts: "
                + ", ".join(report.failed)
                + ". Add the key they were encrypted with and run again."
            )
        self.stdout.write("All secrets are encrypted under the newest key.")
