"""Row-level security on the compliance tables (docs/tenancy.md, "Row-level security")."""

from django.db import migrations

from marketing.postgres_operations import row_security


class Migration(migrations.Migration):
    dependencies = [("compliance", "0002_consent_outlives_contact_and_requests"), ("marketing", "0013_row_security")]

    operations = [
        row_security("compliance_consentrecord", "compliance_datasubjectrequest"),
    ]
