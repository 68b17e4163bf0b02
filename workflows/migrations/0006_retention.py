from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("workflows", "0005_console_indexes")]

    operations = [
        migrations.AddIndex(
            model_name="workflowinstance",
            index=models.Index(
                condition=models.Q(("status__in", ["completed", "failed", "cancelled"])),
                fields=["org", "finished_at"],
                name="workflowinstance_finished",
            ),
        ),
    ]
