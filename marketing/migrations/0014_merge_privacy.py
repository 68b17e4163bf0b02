from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("marketing", "0013_erased_identities"),
        ("marketing", "0013_field_encryption"),
        ("marketing", "0013_audit_history"),
        ("marketing", "0013_row_security"),
    ]

    operations = []
