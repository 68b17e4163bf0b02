# Placeholder of the audit work; filled by its owner, deleted if it stays empty.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("marketing", "0012_invitations")]

    operations = []
