"""Create (or bring up to date) the "log reviewer" group. Safe to run again."""

from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand
from django.db import transaction

LOG_REVIEWER_GROUP = "log reviewer"

# View-only on the logs (which also opens the dashboard). Nothing on bots,
# keys, API definitions or their secrets, and not the full phone numbers:
# that permission is granted person by person.
LOG_REVIEWER_PERMISSIONS = [
    "view_verification",
    "view_verificationevent",
    "view_apicalllog",
]


class Command(BaseCommand):
    help = "Create the 'log reviewer' group: view-only access to the logs and the dashboard."

    @transaction.atomic
    def handle(self, *args: object, **options: object) -> None:
        group, created = Group.objects.get_or_create(name=LOG_REVIEWER_GROUP)
        permissions = Permission.objects.filter(
            content_type__app_label="integrations", codename__in=LOG_REVIEWER_PERMISSIONS
        )
        # add(), not set(): a rerun (setup_demo runs it each time) keeps
        # whatever an administrator granted the group on purpose.
        group.permissions.add(*permissions)
        if options.get("verbosity") != 0:
            verb = "Created" if created else "Updated"
            self.stdout.write(
                f"{verb} group '{LOG_REVIEWER_GROUP}' ({permissions.count()} permissions)."
            )
