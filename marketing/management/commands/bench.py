"""``python manage.py bench SCENARIO [options]``: run a benchmark, print one JSON object per line.

Scenarios come from the apps' ``bench`` modules (``marketing.bench`` has the registry and the
``contacts`` scenario). Only JSON goes to stdout; progress goes to stderr.
"""

import json

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from marketing.bench import cores, scenarios


class Command(BaseCommand):
    help = "Runs a named benchmark scenario and prints its figures as JSON lines (see docs/bench.md)."

    def add_arguments(self, parser):
        subparsers = parser.add_subparsers(dest="scenario", metavar="SCENARIO", required=True)
        for name, cls in scenarios().items():
            sub = subparsers.add_parser(name, help=cls.help, description=cls.__doc__)
            cls().add_arguments(sub)

    def handle(self, *args, scenario: str, **options):
        registered = scenarios()
        if scenario not in registered:
            raise CommandError(f"Unknown scenario '{scenario}'; choose one of: {', '.join(registered)}.")
        console = Console(stderr=True)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar:

            def progress(description: str, total: int):
                task = bar.add_task(description, total=total)
                return lambda n=1: bar.advance(task, n)

            for figures in registered[scenario]().run(options=options, progress=progress):
                line = {"scenario": scenario, "db": connection.vendor, "cores": cores(), **figures}
                self.stdout.write(json.dumps(line))
