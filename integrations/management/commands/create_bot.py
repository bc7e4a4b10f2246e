from django.core.management.base import BaseCommand, CommandError, CommandParser

from integrations.models import Bot, BotAPIKey


class Command(BaseCommand):
    help = "Create a bot (or reuse the one with this name) and print a new API key for it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--key-name", default="created by create_bot")

    def handle(self, *args: object, name: str, key_name: str, **options: object) -> None:
        name = name.strip()
        max_length = Bot._meta.get_field("name").max_length or 0
        # Checked here: SQLite would store any length, PostgreSQL would crash.
        if not name or len(name) > max_length:
            raise CommandError(f"A bot's name has 1 to {max_length} characters.")
        bot, created = Bot.objects.get_or_create(name=name)
        _, key = BotAPIKey.objects.create_key(bot=bot, name=key_name)
        verb = "Created" if created else "Reusing"
        self.stdout.write(f"{verb} bot {bot.name!r}. Its new API key (shown once):")
        self.stdout.write(key)
