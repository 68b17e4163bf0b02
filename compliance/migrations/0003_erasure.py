from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("compliance", "0002_consent_outlives_contact_and_requests")]

    operations = [
        migrations.AddField(
            model_name="datasubjectrequest",
            name="subject_digest",
            field=models.CharField(
                blank=True,
                help_text="After an erasure: a keyed hash of the email, instead of the email.",
                max_length=128,
            ),
        ),
    ]
