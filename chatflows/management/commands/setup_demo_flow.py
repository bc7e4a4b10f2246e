"""Load the demo chat flow (after `setup_demo`). Safe to run again."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from chatflows.demo import DemoSetupError, create_demo_flow
from integrations.management.commands.setup_demo import DEMO_BOT
from integrations.models import Bot


class Command(BaseCommand):
    help = "Create the demo bot's phone-verification flow unless it exists; print its preview URL."

    def handle(self, *args: object, **options: object) -> None:
        bot = Bot.objects.filter(name=DEMO_BOT).first()
        if bot is None:
            raise CommandError(f"No bot named {DEMO_BOT!r}: run `manage.py setup_demo` first.")
        try:
            flow, created = create_demo_flow(bot)
        except DemoSetupError as exc:
            raise CommandError(f"{exc} Run `manage.py setup_demo` first.") from exc
        state = "created" if created else "already there"
        preview = settings.PUBLIC_BASE_URL + reverse("flow-preview", args=[flow.pk])
        self.stdout.write(f"  Demo flow:    “{flow.name}” ({state})\n  Chat preview: {preview}\n")
