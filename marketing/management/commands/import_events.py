"""``python manage.py import_events FILE.csv --org SLUG --mapping map.json [--dry-run] [--dispatch] [--report …]``.

Imports historical events from a CSV file through the events API's own validation, identity
resolution and storage (``source="import"``). Each row needs ``occurred_at``; without a
``message_id`` column each row gets one derived from the file and its row number, so importing
the same file again stores nothing twice. ``--dispatch`` hands the stored events to the event
consumers (workflows, scoring, segments, last activity); by default they are only stored.
"""

from marketing.management.commands.import_contacts import Command as ImportCommand
from marketing.models import ImportJob


class Command(ImportCommand):
    help = "Imports historical events from a CSV file; resumes after an interruption and stores nothing twice."
    kind = ImportJob.Kind.EVENTS

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--dispatch",
            action="store_true",
            help="Hand the imported events to workflows, scoring and segments (default: only store them).",
        )

    def summary(self, job: ImportJob) -> str:
        """Events are stored or already there (a rerun): an event row is never "updated"."""
        label = "Dry run" if job.dry_run else "Import"
        duplicates = job.rows_done - job.rows_created - job.rows_failed
        return (
            f"{label} #{job.pk} {job.status}: {job.rows_created} created, {duplicates} already stored, "
            f"{job.rows_failed} failed, {job.rows_total} total."
        )
