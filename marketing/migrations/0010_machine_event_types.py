# Machine opens and clicks become their own event types (placeholder: operations are filled in by the change that needs them)

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("marketing", "0009_identity_conflicts")]

    operations = []
