"""``manage.py analyze FILE``: print the engine's analysis of a MIDI file as JSON (no database)."""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from tracks.engine import EngineError, load_arrangement

from ._engine_cli import fail


class Command(BaseCommand):
    help = "Print the analysis of a Standard MIDI File as JSON."
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="path to a .mid file")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            arrangement = load_arrangement(options["file"])
        except EngineError as exc:
            fail(str(exc))
        self.stdout.write(json.dumps(arrangement.analysis, indent=2))
