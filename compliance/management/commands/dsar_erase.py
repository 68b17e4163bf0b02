"""``python manage.py dsar_erase --org SLUG --email EMAIL --yes``.

Erases one contact everywhere (found by email): its rows are deleted or anonymised, and its
email and phone are kept only as keyed hashes, so it is never stored or sent to again. It
cannot be undone: without ``--yes`` nothing happens.
"""

from django.core.management.base import BaseCommand, CommandError

from compliance.erasure import contact_by_email, contact_erase
from marketing.models import Organization


class Command(BaseCommand):
    help = "Erases one contact (found by email) everywhere; it cannot be undone, so --yes is required."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="The organisation's slug, e.g. acme.")
        parser.add_argument("--email", required=True, help="The contact's email address.")
        parser.add_argument("--reason", default="", help="Why, for the log (e.g. a ticket number); no personal data.")
        parser.add_argument("--yes", action="store_true", help="Confirms the erasure, which cannot be undone.")

    def handle(self, *args, org: str, email: str, reason: str, yes: bool, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organisation with slug '{org}'.")
        contact = contact_by_email(org=organization, email=email)
        if contact is None:
            raise CommandError(f"No contact with the email '{email}' in {organization.slug}.")
        if not yes:
            raise CommandError(f"Erasing contact #{contact.pk} cannot be undone: add --yes to erase it.")
        erasure = contact_erase(contact=contact, reason=reason or "dsar_erase command")
        self.stdout.write(
            f"Erased contact #{erasure.contact_id} from {len(erasure.sources)} sources; "
            f"{len(erasure.identities)} keyed hash(es) kept so it is not stored again."
        )
