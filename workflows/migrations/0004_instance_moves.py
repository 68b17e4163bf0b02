# Running instances moved to a new version (placeholder: operations are filled in by the change that needs them)

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("workflows", "0003_definition_help_text")]

    operations = []
