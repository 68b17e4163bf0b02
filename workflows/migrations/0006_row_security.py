"""Row-level security on the workflow tables (docs/tenancy.md, "Row-level security").

The analytics views (0002) are already ``security_invoker``: they show what the reader's
policies let through.
"""

from django.db import migrations

from marketing.postgres_operations import row_security


class Migration(migrations.Migration):
    dependencies = [("workflows", "0005_console_indexes"), ("marketing", "0013_row_security")]

    operations = [
        row_security(
            "workflows_approval",
            "workflows_automationexecution",
            "workflows_delivery",
            "workflows_scheduledjob",
            "workflows_workflow",
            "workflows_workflowinstance",
            "workflows_workflowsteprun",
            "workflows_workflowtemplate",
            "workflows_workflowversion",
        ),
    ]
