from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class MarketingConfig(AppConfig):
    name = "marketing"
    verbose_name = "Contacts and organisations"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        import marketing.bulk_sql  # noqa: F401  registers the __any_of lookup
        import marketing.personal_data  # noqa: F401  the DSAR data sources registry and its own sources
        from marketing import audit  # noqa: F401  connects the audit context of Celery tasks
        from marketing.metrics import gauges_register, marketing_gauges
        from marketing.schedules import schedules_install

        post_migrate.connect(schedules_install, sender=self)
        gauges_register(marketing_gauges)


class ConsoleAdminConfig(AdminConfig):
    """Installs the operations console (``marketing.console.ConsoleAdminSite``) as the admin site."""

    default_site = "marketing.console.ConsoleAdminSite"
