from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Compliance"

    def ready(self) -> None:
        from compliance import personal_data  # noqa: F401  registers its DSAR data sources
        from marketing.schedules import system_jobs_register

        system_jobs_register(
            {
                "compliance: data-subject request reminders": (
                    "compliance.tasks.data_subject_requests_remind",
                    86400,
                    "Emails the compliance team (the admins when there is none) about data-subject "
                    "requests due within seven days and overdue ones, once per request.",
                ),
            }
        )
