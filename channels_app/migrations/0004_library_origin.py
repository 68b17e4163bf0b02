# Message templates and destinations made by a library template remember it; a destination with no URL logs its messages

from django.db import migrations, models

ORIGIN_HELP = "The library template that made it (empty: made by hand)."


class Migration(migrations.Migration):
    dependencies = [("channels_app", "0003_inbound_sms_receipts")]

    operations = [
        migrations.AddField(
            model_name="messagetemplate",
            name="library_template",
            field=models.SlugField(blank=True, help_text=ORIGIN_HELP, max_length=100),
        ),
        migrations.AddField(
            model_name="destination",
            name="library_template",
            field=models.SlugField(blank=True, help_text=ORIGIN_HELP, max_length=100),
        ),
        migrations.AlterField(
            model_name="destination",
            name="url",
            field=models.URLField(
                blank=True,
                help_text="Slack incoming-webhook URL, webhook endpoint, or the social server (https://…). "
                "Empty: messages are written to the log, nothing leaves the system.",
                max_length=1000,
            ),
        ),
    ]
