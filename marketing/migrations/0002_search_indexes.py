"""Trigram indexes for the console's contact and company search (PostgreSQL only)."""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

from marketing.postgres_operations import trigram_index


class Migration(migrations.Migration):
    dependencies = [("marketing", "0001_initial")]

    operations = [
        TrigramExtension(),
        trigram_index("marketing_contact", "email"),
        trigram_index("marketing_contact", "first_name"),
        trigram_index("marketing_contact", "last_name"),
        trigram_index("marketing_company", "name"),
        trigram_index("marketing_company", "domain"),
    ]
