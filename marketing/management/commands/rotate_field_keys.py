"""``python manage.py rotate_field_keys [--batch N] [--new-key]``.

Re-encrypts every encrypted value (contact phones, SMS recipients, consent-proof addresses,
sensitive properties) under the first key of ``FIELD_ENCRYPTION_KEYS``, in batches, with a
progress bar on stderr and one line per column on stdout: rows rewritten and values still under
another key. Run it again after an interruption: it skips what is done. ``--new-key`` only
prints a fresh key to put first. The procedure is in docs/encryption.md.
"""

import sys

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from marketing.field_encryption import current_key_id, new_key
from marketing.key_rotation import field_keys_rotate, rows_to_rotate


class Command(BaseCommand):
    help = "Re-encrypts every encrypted field under the first key of FIELD_ENCRYPTION_KEYS (resumable)."

    def add_arguments(self, parser):
        parser.add_argument("--batch", type=int, default=1000, help="Rows per transaction (default 1000).")
        parser.add_argument("--new-key", dest="print_key", action="store_true", help="Print a new random key and exit.")

    def handle(self, *args, batch: int, print_key: bool, **options):
        if print_key:
            self.stdout.write(new_key())
            return
        if batch < 1:
            raise CommandError("--batch must be at least 1.")
        try:
            current = current_key_id()
            totals = rows_to_rotate()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(file=options.get("stderr") or sys.stderr),
            transient=True,
        )
        with progress:
            tasks = {label: progress.add_task(label, total=total) for label, total in totals.items()}
            counts = field_keys_rotate(
                batch=batch, on_batch=lambda column, seen, _: progress.advance(tasks[column.label], seen)
            )
        for label, rewritten in counts.rewritten.items():
            self.stdout.write(f"{label}: {rewritten} rewritten, {counts.left[label]} left under another key")
        left = sum(counts.left.values())
        if left:
            raise CommandError(f"{left} value(s) are still not under key {current}: run the command again.")
        self.stdout.write(f"Every encrypted value is under key {current}; keys after the first can be removed.")
