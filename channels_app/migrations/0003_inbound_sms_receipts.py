# Inbound SMS seen, by Twilio MessageSid (replays ignored)

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("channels_app", "0002_destination")]

    operations = [
        migrations.CreateModel(
            name="InboundSmsReceipt",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("sid", models.CharField(max_length=64, unique=True)),
                ("received_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
        ),
    ]
