# Running instances moved to a new version: a move deferred to the next claim, and the record of moves

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("workflows", "0003_definition_help_text")]

    operations = [
        migrations.AddField(
            model_name="workflowinstance",
            name="migrate_to",
            field=models.JSONField(
                blank=True,
                help_text='A move waiting for the next claim: {"version": id, "map": {old: new}}.',
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="workflowinstance",
            name="moves",
            field=models.JSONField(
                blank=True, default=list, help_text="Moves to newer versions: from, to, the step map, by whom, when."
            ),
        ),
    ]
