"""Read queries of the ground floor that more than one caller needs. Each takes the org."""

from django.db.models import QuerySet

from marketing.models import Company, Contact


def contacts_for(*, org) -> QuerySet[Contact]:
    """An org's contacts with what list pages show of them, newest first."""
    return Contact.objects.filter(org=org).select_related("company", "owner").prefetch_related("tags")


def companies_for(*, org) -> QuerySet[Company]:
    """An org's companies, by name."""
    return Company.objects.filter(org=org).order_by("name")
