"""``python manage.py import_contacts FILE.csv --org SLUG --mapping map.json [--dry-run] [--report errors.csv]``.

Imports (or with ``--dry-run`` only checks) a CSV file of contacts, with a progress bar on
stderr and a one-line summary on stdout. Running the same command again after an interruption
resumes the unfinished job at the first row not yet committed. ``import_events`` is this command
for events.
"""

import json
import sys
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from marketing.imports import import_errors_csv, import_job_create, import_job_run
from marketing.models import ImportJob, Organization
from marketing.tenancy import org_context


class Command(BaseCommand):
    help = "Imports contacts from a CSV file (matched on email, else external_id); resumes after an interruption."
    kind = ImportJob.Kind.CONTACTS

    def add_arguments(self, parser):
        parser.add_argument("file", help="The CSV file (UTF-8; comma, semicolon or tab separated; a header row).")
        parser.add_argument("--org", required=True, help="The organisation's slug, e.g. acme.")
        parser.add_argument(
            "--mapping",
            required=True,
            help='A JSON file (or inline JSON) of CSV column → field, e.g. {"E-mail": "email"}.',
        )
        parser.add_argument("--dry-run", action="store_true", help="Check every row and count, but write nothing.")
        parser.add_argument("--report", metavar="ERRORS.csv", help="Write the rejected rows (row,column,reason) here.")

    def handle(self, *args, file: str, org: str, mapping: str, dry_run: bool, report: str | None, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organisation with slug '{org}'.")
        columns = self._mapping(mapping)
        with org_context(organization):
            asked_at = timezone.now()
            try:
                job = import_job_create(
                    org=organization,
                    kind=self.kind,
                    path_or_file=file,
                    mapping=columns,
                    dry_run=dry_run,
                    dispatch=options.get("dispatch", False),
                )
            except OSError as exc:
                raise CommandError(f"Cannot read {file}: {exc.strerror or exc}.") from exc
            except ValidationError as exc:
                raise CommandError(_one_line(exc)) from exc
            if job.created_at < asked_at:
                self.stderr.write(f"Resuming import #{job.pk} at row {job.rows_done + 1}.")
            job = self._run(job, options.get("stderr") or sys.stderr)
            if report:
                with open(report, "w", newline="", encoding="utf-8") as out:
                    import_errors_csv(job, out)
            elif job.rows_failed:
                self.stderr.write(
                    f"{job.rows_failed} row(s) rejected: see them with --report errors.csv, "
                    f"or under Imports #{job.pk} in the console."
                )
        self.stdout.write(self.summary(job))

    def _mapping(self, value: str) -> dict:
        """The mapping from a JSON file, or from JSON text given inline."""
        if value.lstrip().startswith("{"):
            text, source = value, "--mapping"
        else:
            try:
                text, source = Path(value).read_text(encoding="utf-8"), value
            except OSError as exc:
                raise CommandError(f"Cannot read the mapping {value}: {exc.strerror or exc}.") from exc
        try:
            columns = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CommandError(f"The mapping {source} is not valid JSON: {exc}.") from exc
        if not isinstance(columns, dict):
            raise CommandError(f'The mapping {source} must be a JSON object, e.g. {{"E-mail": "email"}}.')
        return columns

    def _run(self, job: ImportJob, stream) -> ImportJob:
        console = Console(file=stream)
        progress = Progress(
            TextColumn(f"Import #{job.pk}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        with progress:
            task = progress.add_task("rows", total=job.rows_total, completed=job.rows_done)
            try:
                return import_job_run(
                    job_id=job.pk, on_batch=lambda current: progress.update(task, completed=current.rows_done)
                )
            except Exception as exc:
                job.refresh_from_db()
                raise CommandError(
                    f"Import #{job.pk} stopped at row {job.rows_done + 1}: {type(exc).__name__}: {exc}. "
                    "Run the same command again to resume."
                ) from exc

    def summary(self, job: ImportJob) -> str:
        """The one line printed on stdout."""
        label = "Dry run" if job.dry_run else "Import"
        return (
            f"{label} #{job.pk} {job.status}: {job.rows_created} created, {job.rows_updated} updated, "
            f"{job.rows_failed} failed, {job.rows_total} total."
        )


def _one_line(exc: ValidationError) -> str:
    """A ValidationError as one line: "field: message; field: message"."""
    if hasattr(exc, "error_dict"):
        return "; ".join(f"{name}: {' '.join(messages)}" for name, messages in exc.message_dict.items())
    return " ".join(exc.messages)
