import json
import sys
from collections import Counter
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from integrations.configuration import ConfigError, import_config


class Command(BaseCommand):
    help = (
        "Create or update attributes, API definitions and flows from a JSON file made by "
        "export_config, matching by name; safe to run again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help='JSON file, or "-" for standard input')

    def handle(self, *args: object, file: str, **options: object) -> None:
        try:
            text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}.") from exc
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise CommandError(f"{file} is not valid JSON: {exc}.") from exc
        try:
            changes = import_config(data)
        except ConfigError as exc:
            raise CommandError(f"Nothing was imported. {exc}") from exc
        for change in changes:
            self.stdout.write(str(change))
        counts = Counter(change.action for change in changes)
        self.stdout.write(
            f"{counts['created']} created, {counts['changed']} changed, "
            f"{counts['unchanged']} unchanged."
        )
