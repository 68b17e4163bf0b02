"""Project wiring and the core domain: tenancy, contacts, companies, and later events and segments."""

from marketing.celery import app as celery_app

__all__ = ("celery_app",)
