"""Read queries of the compliance app: the current consent state, derived from the records."""

from collections.abc import Iterable

from compliance.models import ConsentRecord
from marketing.models import Organization


def consent_states(*, org: Organization, contact_ids: Iterable[int], purpose: str) -> dict[int, bool]:
    """Per contact, whether its newest record for ``purpose`` grants it (contacts without any
    record are left out: no consent). One query for a whole send batch."""
    states: dict[int, bool] = {}
    records = (
        ConsentRecord.objects.filter(org=org, purpose=purpose, contact_id__in=list(contact_ids))
        .order_by("contact_id", "-recorded_at", "-id")
        .values_list("contact_id", "granted")
    )
    for contact_id, granted in records:
        states.setdefault(contact_id, granted)  # the first row of a contact is its newest
    return states


def consent_given(*, org: Organization, contact_id: int, purpose: str) -> bool:
    """Whether the contact's newest record for ``purpose`` grants it."""
    return consent_states(org=org, contact_ids=[contact_id], purpose=purpose).get(contact_id, False)
