"""``python manage.py retention_purge [--org SLUG] [--kind KIND] [--dry-run] [--batch-size N]``.

Purges (or with ``--dry-run`` counts) the rows past each organisation's data-retention policies,
the nightly job's work, now: one line per org and kind on stdout, ``acme events: purged 120
rows``, ``acme events: 120 rows would be deleted`` or ``acme events: kept forever``; a
progress bar on stderr while a purge runs. Safe to run again (nothing left, nothing purged).
"""

import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from compliance.retention import BATCH_SIZE, retention_count, retention_days, retention_purge
from marketing.models import Organization
from marketing.retention import DATA_KINDS


class Command(BaseCommand):
    help = "Deletes the data older than each organisation's retention settings (or counts it with --dry-run)."

    def add_arguments(self, parser):
        parser.add_argument("--org", help="One organisation's slug, e.g. acme (default: every organisation).")
        parser.add_argument("--kind", help=f"One data kind (default: all): {', '.join(DATA_KINDS)}.")
        parser.add_argument("--dry-run", action="store_true", help="Count what would be deleted; delete nothing.")
        parser.add_argument(
            "--batch-size", type=int, default=BATCH_SIZE, help=f"Rows per transaction (default {BATCH_SIZE})."
        )

    def handle(self, *args, org: str | None, kind: str | None, dry_run: bool, batch_size: int, **options):
        if kind is not None and kind not in DATA_KINDS:
            raise CommandError(f"Unknown kind '{kind}': one of {', '.join(DATA_KINDS)}.")
        if batch_size < 1:
            raise CommandError("--batch-size must be a whole number above 0.")
        orgs = Organization.objects.order_by("slug")
        if org is not None:
            orgs = orgs.filter(slug=org)
            if not orgs.exists():
                raise CommandError(f"No organisation with slug '{org}'.")
        stream = options.get("stderr") or sys.stderr
        now = timezone.now()
        kinds = [kind] if kind else list(DATA_KINDS)
        total = 0
        for organization in orgs:
            for name in kinds:
                if retention_days(org=organization, kind=name) is None:
                    self.stdout.write(f"{organization.slug} {name}: kept forever")
                    continue
                count = retention_count(org=organization, kind=name, now=now)
                if dry_run:
                    self.stdout.write(f"{organization.slug} {name}: {count} rows would be deleted")
                    total += count
                    continue
                try:
                    purged = self._purge(organization, name, now, count, batch_size, stream)
                except ValidationError as exc:
                    raise CommandError(" ".join(exc.messages)) from exc
                self.stdout.write(f"{organization.slug} {name}: purged {purged} rows")
                total += purged
        if len(kinds) * orgs.count() > 1:
            self.stdout.write(f"{'would delete' if dry_run else 'purged'} {total} rows in all")

    def _purge(self, org, kind: str, now, expected: int, batch_size: int, stream) -> int:
        """The purge with a progress bar on ``stream`` (its total is the dry run's count)."""
        label = f"{org.slug} {kind}"
        progress = Progress(
            TextColumn(label),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(file=stream),
            transient=True,
        )
        with progress:
            task = progress.add_task(label, total=expected or None)
            return retention_purge(
                org=org,
                kind=kind,
                now=now,
                batch_size=batch_size,
                progress=lambda done: progress.update(task, completed=done),
            )
