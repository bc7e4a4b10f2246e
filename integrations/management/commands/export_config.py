import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandParser

from integrations.configuration import export_config


class Command(BaseCommand):
    help = "Write attributes, API definitions and flows as JSON (secrets are never included)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", "-o", help="file to write instead of standard output")

    def handle(self, *args: object, output: str | None, **options: object) -> None:
        text = json.dumps(export_config(), indent=2, ensure_ascii=False) + "\n"
        if output:
            Path(output).write_text(text, encoding="utf-8")
            self.stderr.write(f"Wrote {output}.")
        else:
            self.stdout.write(text, ending="")
