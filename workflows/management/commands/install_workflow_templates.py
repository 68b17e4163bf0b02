"""``python manage.py install_workflow_templates --org SLUG``: the template library for an org.

Adds the library's ten templates (``workflows.library``) or brings changed ones up to date;
running it again changes nothing. Usage counts are kept.
"""

from django.core.management.base import BaseCommand, CommandError

from marketing.models import Organization
from marketing.tenancy import org_context
from workflows.library import library_install, library_templates


class Command(BaseCommand):
    help = "Installs (or updates) the workflow template library for an organisation. Idempotent."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="The organisation's slug, e.g. acme.")

    def handle(self, *args, org: str, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organisation with slug '{org}'.")
        with org_context(organization):
            changed = library_install(org=organization)
        total = len(library_templates())
        self.stdout.write(
            f"Workflow templates for {organization.slug}: {changed} added or updated, {total - changed} up to date."
        )
