"""Row-level security on the channel tables (docs/tenancy.md, "Row-level security").

Inbound SMS receipts have no org: they are looked up by the provider's message id before the
org is known, and hold no personal data.
"""

from django.db import migrations

from marketing.postgres_operations import row_security


class Migration(migrations.Migration):
    dependencies = [("channels_app", "0005_console_indexes"), ("marketing", "0013_row_security")]

    operations = [
        row_security(
            "channels_app_destination",
            "channels_app_message",
            "channels_app_messagetemplate",
            "channels_app_pushsubscription",
            "channels_app_suppression",
            "channels_app_templateversion",
        ),
    ]
