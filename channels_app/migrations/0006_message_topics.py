# Placeholder of the preferences work; filled by its owner, deleted if it stays empty.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("channels_app", "0005_console_indexes")]

    operations = []
