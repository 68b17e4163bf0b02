from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("channels_app", "0006_message_topics"),
        ("channels_app", "0006_field_encryption"),
        ("channels_app", "0006_audit_history"),
        ("channels_app", "0006_row_security"),
    ]

    operations = []
