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
                "compliance: expired data-subject request archives": (
                    "compliance.tasks.data_subject_request_archives_expire",
                    86400,
                    "Deletes the archives of access and portability requests once their download "
                    "link has expired (DSAR_DOWNLOAD_MAX_AGE_DAYS).",
                ),
                # Daily (the interval counts from beat's start); each batch is its own short
                # transaction, so the purge never holds locks for long whenever it runs.
                "compliance: purge data past retention": (
                    "compliance.tasks.retention_purge_all",
                    86400,
                    "Deletes each organisation's events, messages, runs, imports and logs older than "
                    "its data-retention settings (Compliance → Data retention).",
                    3600,
                ),
            }
        )

        # The apps below compliance ask about consent through marketing's registry; importing
        # the services registers the merge handler that moves consent records (in workers too).
        from compliance.consent_provider import RegimeConsentProvider
        from marketing.consent_providers import consent_provider_register

        consent_provider_register(RegimeConsentProvider())
        # The merge handler that moves topic choices to the kept contact, and the console pages
        # kept beside admin.py: topics, the data-subject request queue, data retention.
        from compliance import preference_centre, requests_admin, retention_admin, topics_admin  # noqa: F401
