from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("workflows", "0006_audit_history"),
        ("workflows", "0006_row_security"),
        ("workflows", "0006_retention"),
    ]

    operations = []
