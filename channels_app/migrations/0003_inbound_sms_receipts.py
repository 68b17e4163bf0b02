# Inbound SMS seen, by Twilio MessageSid (replays ignored) (placeholder: operations are filled in by the change that needs them)

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("channels_app", "0002_destination")]

    operations = []
