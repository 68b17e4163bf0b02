"""Writes of the compliance app: consent is recorded, never edited."""

from datetime import datetime

from django.utils import timezone

from compliance.models import ConsentRecord, LawfulBasis
from marketing.models import Contact, Event, Organization


def consent_record(
    *,
    org: Organization,
    contact: Contact,
    purpose: str,
    granted: bool,
    source: str,
    lawful_basis: str = LawfulBasis.CONSENT,
    proof: dict | None = None,
    event: Event | None = None,
    at: datetime | None = None,
) -> ConsentRecord:
    """Appends a grant or a withdrawal; the newest record of a purpose is its current state."""
    return ConsentRecord.objects.create(
        org=org,
        contact=contact,
        subject_email=contact.email or "",
        purpose=purpose,
        granted=granted,
        source=source,
        lawful_basis=lawful_basis,
        proof=proof or {},
        event=event,
        recorded_at=at or timezone.now(),
    )
