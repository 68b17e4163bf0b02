# The sales manager flag is part of a membership (placeholder: operations are filled in by the change that needs them)

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("marketing", "0007_contact_activity_unindexed")]

    # Not backfilled from the global scoring.view_all_handoffs permission: that grant reached every
    # org the user belongs to, which is the mistake this flag replaces (docs/scoring.md).
    operations = [
        migrations.AddField(
            model_name="membership",
            name="sales_manager",
            field=models.BooleanField(
                default=False,
                help_text="Sees every rep's handoffs in this organisation and reassigns them (admins always do).",
            ),
        ),
    ]
