from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "workflows"
    verbose_name = "Workflows"

    def ready(self) -> None:
        from marketing.conditions import register_namespace
        from marketing.embedded import embedded_service
        from marketing.schedules import system_jobs_register
        from workflows import embedded_runner, services  # noqa: F401  services registers its merge handler

        embedded_service(embedded_runner.start)
        register_namespace("workflow")  # a run's trigger, variables and step results (CONTRACTS.md §1)
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
