from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class MarketingConfig(AppConfig):
    name = "marketing"
    verbose_name = "Contacts and organisations"


class ConsoleAdminConfig(AdminConfig):
    """Installs the operations console (``marketing.console.ConsoleAdminSite``) as the admin site."""

    default_site = "marketing.console.ConsoleAdminSite"
