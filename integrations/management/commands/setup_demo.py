"""Load the demo: a bot with an API key and a staff user. Safe to run again."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from integrations.demo import install_demo_api_definitions
from integrations.models import Bot, BotAPIKey

DEMO_BOT = "Demo bot"
DEMO_KEY_NAME = "demo"
DEMO_USERNAME = "demo-admin"


class Command(BaseCommand):
    help = "Create the demo bot, its API key and a staff user; print how to use them."

    @transaction.atomic
    def handle(self, *args: object, **options: object) -> None:
        bot, _ = Bot.objects.get_or_create(
            name=DEMO_BOT, defaults={"description": "The bot of the demo chat flow."}
        )
        # Keys are stored hashed, so a second run cannot show the first key
        # again: it revokes the old demo key and prints a fresh one.
        BotAPIKey.objects.filter(bot=bot, name=DEMO_KEY_NAME, revoked=False).update(revoked=True)
        _, key = BotAPIKey.objects.create_key(bot=bot, name=DEMO_KEY_NAME)
        install_demo_api_definitions(key)

        User = get_user_model()
        password = secrets.token_urlsafe(12)
        user, _ = User.objects.get_or_create(username=DEMO_USERNAME)
        user.is_staff = True
        user.is_superuser = True
        user.set_password(password)
        user.save()
        call_command("create_log_reviewer_group", verbosity=0, stdout=self.stdout)

        base = settings.PUBLIC_BASE_URL
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "chatbot-auth demo is ready.",
                    f"  Admin:        {base}/admin/",
                    f"  Staff login:  {DEMO_USERNAME} / {password}",
                    f"  Bot API key:  {key}",
                    f"  API docs:     {base}/api/docs/",
                    "",
                ]
            )
        )
