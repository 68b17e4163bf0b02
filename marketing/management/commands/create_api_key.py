"""``python manage.py create_api_key --org SLUG --name NAME [--scope server|write]``.

Prints the new key once, as the last word of the last line; only its hash is stored.
"""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from marketing.models import ApiKey, Organization
from marketing.services import api_key_create
from marketing.tenancy import org_context


class Command(BaseCommand):
    help = "Creates an API key for an organisation and prints it (shown once; stored hashed)."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="The organisation's slug, e.g. acme.")
        parser.add_argument("--name", required=True, help="What the key is for, e.g. 'CRM sync'.")
        parser.add_argument(
            "--scope",
            default=ApiKey.Scope.SERVER,
            choices=ApiKey.Scope.values,
            help="server: the full API; write: tracking and forms only (default: server).",
        )

    def handle(self, *args, org: str, name: str, scope: str, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organisation with slug '{org}'.")
        with org_context(organization):
            try:
                key, raw = api_key_create(org=organization, name=name, scope=scope)
            except ValidationError as exc:
                raise CommandError("; ".join(exc.messages)) from exc
        self.stderr.write(f"Created {scope} key '{key.name}' for {organization.slug}. It is not shown again.")
        self.stdout.write(f"API key: {raw}")
