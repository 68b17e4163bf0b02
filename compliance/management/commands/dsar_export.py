"""``python manage.py dsar_export --org SLUG --email EMAIL --out FILE.zip``.

Writes everything held about one contact to a ZIP (a JSON and a CSV file per kind of data, and
a README.txt), as an access or portability request needs.
"""

from django.core.management.base import BaseCommand, CommandError

from compliance.erasure import contact_by_email, contact_export
from compliance.personal_data_archive import personal_data_archive_write
from marketing.models import Organization


class Command(BaseCommand):
    help = "Exports everything held about one contact (found by email) to a ZIP archive."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="The organisation's slug, e.g. acme.")
        parser.add_argument("--email", required=True, help="The contact's email address.")
        parser.add_argument("--out", required=True, help="Where to write the archive, e.g. jane.zip.")

    def handle(self, *args, org: str, email: str, out: str, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organisation with slug '{org}'.")
        contact = contact_by_email(org=organization, email=email)
        if contact is None:
            raise CommandError(f"No contact with the email '{email}' in {organization.slug}.")
        export = contact_export(contact=contact)
        try:
            names = personal_data_archive_write(export=export, out=out)
        except OSError as exc:
            raise CommandError(f"Cannot write {out}: {exc.strerror or exc}.") from exc
        records = sum(len(source["rows"]) for source in export["sources"].values())
        self.stdout.write(f"Wrote {out}: {records} records from {len(export['sources'])} sources ({len(names)} files).")
