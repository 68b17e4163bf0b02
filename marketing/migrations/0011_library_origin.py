# Segments made by a library template remember it (placeholder: operations are filled in by the change that needs them)

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("marketing", "0010_machine_event_types")]

    operations = []
