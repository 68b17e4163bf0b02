from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class MarketingConfig(AppConfig):
    name = "marketing"
    verbose_name = "Contacts and organisations"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        import marketing.bulk_sql
        import marketing.personal_data  # noqa: F401  the DSAR data sources registry and its own sources
        from marketing import audit  # noqa: F401  connects the audit context of Celery tasks
        from marketing.metrics import gauges_register, marketing_gauges
        from marketing.schedules import schedules_install

        post_migrate.connect(schedules_install, sender=self)
        _row_security_connect()
        gauges_register(marketing_gauges)


def _row_security_connect() -> None:
    """Keeps PostgreSQL's ``app.org_id`` in step with ``org_context`` across connections,
    requests and tasks (marketing/tenancy.py)."""
    from celery import signals as celery_signals
    from django.core.signals import request_started
    from django.db.backends.signals import connection_created

    from marketing.tenancy import org_setting_on_connect, org_setting_reset

    connection_created.connect(org_setting_on_connect, dispatch_uid="org_setting_on_connect")
    request_started.connect(org_setting_reset, dispatch_uid="org_setting_reset")
    celery_signals.task_postrun.connect(org_setting_reset, dispatch_uid="org_setting_reset", weak=False)


class ConsoleAdminConfig(AdminConfig):
    """Installs the operations console (``marketing.console.ConsoleAdminSite``) as the admin site."""

    default_site = "marketing.console.ConsoleAdminSite"
