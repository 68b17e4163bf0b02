from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("compliance", "0002_consent_outlives_contact_and_requests")]

    operations = [
        migrations.AddField(
            model_name="datasubjectrequest",
            name="archive_path",
            field=models.CharField(
                blank=True,
                help_text="Where the archive of an access or portability request is stored.",
                max_length=300,
            ),
        ),
        migrations.AddField(
            model_name="datasubjectrequest",
            name="overdue_alerted_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="datasubjectrequest",
            name="verification_sends",
            field=models.PositiveSmallIntegerField(
                default=0, help_text="Verification emails sent; only the newest one's link works."
            ),
        ),
    ]
