# The sales manager flag is part of a membership (placeholder: operations are filled in by the change that needs them)

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("marketing", "0007_contact_activity_unindexed")]

    operations = []
