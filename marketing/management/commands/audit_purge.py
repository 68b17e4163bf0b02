"""``python manage.py audit_purge --older-than DAYS [--dry-run]``.

Deletes audit entries older than DAYS in every organisation and records, per organisation, one
``purged`` entry with the count. The audit log is append-only in the database: only the role
that owns its table may delete, so run this with the owner's ``DATABASE_URL`` (the one
migrations run with), never the app's. docs/audit.md.
"""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from marketing.audit import AuditPurgeRefusedError, Source, audit_context, audit_entries_purge

MIN_DAYS = 1


class Command(BaseCommand):
    help = "Deletes audit entries older than --older-than days (run as the database owner)."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", required=True, help="Age in days; older entries are deleted, e.g. 730.")
        parser.add_argument("--dry-run", action="store_true", help="Count per organisation; delete nothing.")

    def handle(self, *args, older_than: str, dry_run: bool, **options):
        try:
            days = int(older_than)
        except ValueError:
            raise CommandError(f"--older-than: '{older_than}' is not a whole number of days.") from None
        if days < MIN_DAYS:
            raise CommandError(f"--older-than: {days} days; it must be at least {MIN_DAYS}.")
        with audit_context(source=Source.COMMAND, label="manage.py audit_purge"):
            try:
                counts = audit_entries_purge(older_than=timedelta(days=days), dry_run=dry_run)
            except AuditPurgeRefusedError as exc:
                raise CommandError(f"{exc}; run audit_purge with the owner's DATABASE_URL.") from exc
        verb = "would delete" if dry_run else "deleted"
        rows, orgs = sum(counts.values()), len(counts)
        age = f"{days} day" if days == 1 else f"{days} days"
        self.stdout.write(f"audit_purge {verb} {rows:,} entries older than {age} in {orgs} organisation(s).")
