from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("scoring", "0006_audit_history"),
        ("scoring", "0006_row_security"),
    ]

    operations = []
