from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "workflows"
    verbose_name = "Workflows"

    def ready(self) -> None:
        from django.db.models.signals import pre_migrate

        from workflows import personal_data  # noqa: F401  registers its DSAR data sources

        pre_migrate.connect(_sqlite_legacy_alter_table, dispatch_uid="workflows-sqlite-legacy-alter-table")
        from marketing.conditions import namespace_fields_register, register_namespace
        from marketing.embedded import embedded_service
        from marketing.metrics import gauges_register
        from marketing.schedules import system_jobs_register
        from workflows import embedded_runner, services  # noqa: F401  services registers its merge handler
        from workflows.metrics import workflow_gauges
        from workflows.run_fields import workflow_fields

        embedded_service(embedded_runner.start)
        gauges_register(workflow_gauges)
        from workflows.console_home import home_blocks_register

        home_blocks_register()  # the console home's workflow, approval and engine panels
        register_namespace("workflow")  # a run's trigger, variables and step results (docs/conditions.md)
        namespace_fields_register("workflow", workflow_fields)  # the rule builder's list for one workflow
        system_jobs_register(
            {
                # Expiring after 5 s keeps ticks from piling up in the queue while workers are busy.
                "workflows: run due instances": (
                    "workflows.tasks.instances_run_due",
                    1,
                    "Claims workflow runs whose wait is over and advances them (a batch at a time).",
                    5,
                ),
                "workflows: resend deliveries": (
                    "workflows.tasks.deliveries_sweep",
                    15,
                    "Sends again outbound calls whose sender died or whose task was lost.",
                ),
                "workflows: date-relative triggers": (
                    "workflows.tasks.date_triggers_run",
                    3600,
                    "Enrols contacts whose date field (plus the trigger's offset) has come.",
                ),
            }
        )


def _sqlite_legacy_alter_table(sender, using="default", **kwargs) -> None:
    """SQLite re-checks every view when Django renames the copy of a table it rebuilds; the
    analytics views (migration 0002) read such tables, and the legacy rename skips the check."""
    from django.db import connections

    connection = connections[using]
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA legacy_alter_table = ON")
