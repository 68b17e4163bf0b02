# Message templates and destinations made by a library template remember it (placeholder: operations are filled in by the change that needs them)

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("channels_app", "0003_inbound_sms_receipts")]

    operations = []
