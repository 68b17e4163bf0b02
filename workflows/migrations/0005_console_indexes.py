from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("workflows", "0004_instance_moves")]

    operations = [
        migrations.RemoveIndex(
            model_name="workflowsteprun",
            name="workflowsteprun_step",
        ),
        migrations.AddIndex(
            model_name="workflowinstance",
            index=models.Index(
                fields=["org", "-triggered_at", "-id"], include=("workflow",), name="workflowinstance_recent"
            ),
        ),
        migrations.AddIndex(
            model_name="workflowinstance",
            index=models.Index(
                condition=models.Q(("status__in", ["pending", "running", "waiting", "paused"])),
                fields=["workflow", "current_step"],
                include=("wake_at", "org"),
                name="workflowinstance_open_steps",
            ),
        ),
        migrations.AddIndex(
            model_name="workflowsteprun",
            index=models.Index(
                fields=["workflow", "step_id", "status"],
                include=("duration_ms", "org", "id"),
                name="workflowsteprun_step",
            ),
        ),
        migrations.AddIndex(
            model_name="workflowsteprun",
            index=models.Index(fields=["org", "started_at", "id"], name="workflowsteprun_org_started"),
        ),
        migrations.AddIndex(
            model_name="workflowsteprun",
            index=models.Index(
                condition=models.Q(("status", "failed")), fields=["org", "completed_at"], name="workflowsteprun_failed"
            ),
        ),
    ]
