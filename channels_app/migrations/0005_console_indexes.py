from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("channels_app", "0004_library_origin")]

    operations = [
        migrations.AddIndex(
            model_name="message",
            index=models.Index(fields=["org", "-created_at", "-id"], name="message_recent"),
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(
                condition=models.Q(("sent_at__isnull", False)), fields=["org", "sent_at"], name="message_sent"
            ),
        ),
    ]
