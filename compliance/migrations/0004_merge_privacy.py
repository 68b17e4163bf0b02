from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0003_consent_regimes"),
        ("compliance", "0003_preference_topics"),
        ("compliance", "0003_request_queue"),
        ("compliance", "0003_retention"),
        ("compliance", "0003_audit"),
        ("compliance", "0003_field_encryption"),
        ("compliance", "0003_row_security"),
        ("compliance", "0003_erasure"),
    ]

    operations = []
