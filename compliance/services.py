"""Writes of the compliance app: consent is recorded, never edited; each record write keeps the
contact's ``ConsentState`` (the newest record per purpose) with it."""

from collections.abc import Iterable
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from compliance.models import ConsentRecord, ConsentRegime, ConsentState, LawfulBasis, PendingConsent, Purpose, Regime
from marketing.identity import merge_handler
from marketing.models import Contact, Event, Organization


def consent_states_sync(*, org: Organization, contact_ids: Iterable[int]) -> int:
    """Sets these contacts' ``ConsentState`` rows to their newest record per purpose (the newest
    ``recorded_at`` wins, then the newest row); returns how many rows were written. Call after
    any write of ``ConsentRecord`` rows that does not go through ``consent_record``."""
    ids = sorted(set(contact_ids))
    if not ids:
        return 0
    newest: dict[tuple[int, str], tuple[bool, datetime]] = {}
    records = (
        ConsentRecord.objects.filter(org=org, contact_id__in=ids)
        .order_by("contact_id", "purpose", "-recorded_at", "-id")
        .values_list("contact_id", "purpose", "granted", "recorded_at")
    )
    for contact_id, purpose, granted, at in records:
        newest.setdefault((contact_id, purpose), (granted, at))
    rows = [
        ConsentState(org=org, contact_id=contact_id, purpose=purpose, granted=granted, recorded_at=at)
        for (contact_id, purpose), (granted, at) in newest.items()
    ]
    ConsentState.objects.bulk_create(
        rows,
        batch_size=1000,
        update_conflicts=True,
        unique_fields=["contact", "purpose"],
        update_fields=["granted", "recorded_at"],
    )
    return len(rows)


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
    """Appends a grant or a withdrawal; the newest record of a purpose is its current state,
    which ``ConsentState`` then holds."""
    with transaction.atomic():
        record = ConsentRecord.objects.create(
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
        consent_states_sync(org=org, contact_ids=[contact.pk])
    return record


def consent_choices_record(
    *, org: Organization, contact: Contact, choices: dict[str, bool], source: str, proof: dict
) -> int:
    """Records what one call says about each purpose (``{purpose: granted}``) where the
    contact's state does not already say it; returns how many records were written.

    A withdrawal is recorded unless the state already withdraws (a browser sending GPC on every
    page view records it once). A grant is recorded only when the contact has no choice of that
    purpose yet, or when the newest one came from ``source`` itself (a consent banner changing
    its answer): a banner's stored "yes", sent again with every call, never overrides a
    withdrawal made elsewhere (the preference centre, an unsubscribe, GPC)."""
    choices = {p: bool(g) for p, g in choices.items() if p in Purpose.values}
    states = dict(
        ConsentState.objects.filter(org=org, contact=contact, purpose__in=list(choices)).values_list(
            "purpose", "granted"
        )
    )
    todo = {p: g for p, g in choices.items() if states.get(p) is not g}
    withdrawn_elsewhere = [p for p, g in todo.items() if g and states.get(p) is False]
    if withdrawn_elsewhere:
        newest_source = {}
        for purpose, record_source in (
            ConsentRecord.objects.filter(org=org, contact=contact, purpose__in=withdrawn_elsewhere)
            .order_by("purpose", "-recorded_at", "-id")
            .values_list("purpose", "source")
        ):
            newest_source.setdefault(purpose, record_source)
        for purpose in withdrawn_elsewhere:
            if newest_source.get(purpose) != source:
                del todo[purpose]
    if not todo:
        return 0
    now = timezone.now()
    with transaction.atomic():
        ConsentRecord.objects.bulk_create(
            [
                ConsentRecord(
                    org=org,
                    contact=contact,
                    subject_email=contact.email or "",
                    purpose=purpose,
                    granted=granted,
                    source=source,
                    proof=proof,
                    recorded_at=now,
                )
                for purpose, granted in sorted(todo.items())
            ]
        )
        consent_states_sync(org=org, contact_ids=[contact.pk])
    return len(todo)


def consent_regimes_set(
    *, org: Organization, regimes: dict[str, str], double_opt_in: bool | None = None
) -> ConsentRegime:
    """Sets the org's regime of each purpose named in ``regimes`` (``opt_in`` or ``opt_out``);
    the others keep theirs. Raises ValidationError naming a purpose or a regime it does not know."""
    errors = {}
    for purpose, regime in regimes.items():
        if purpose not in Purpose.values:
            errors[purpose] = f"“{purpose}” is not a purpose; the purposes are {', '.join(Purpose.values)}."
        elif regime not in Regime.values:
            errors[purpose] = f"“{regime}” is not a regime; use opt_in or opt_out."
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        row, _ = ConsentRegime.objects.select_for_update().get_or_create(org=org)
        for purpose, regime in regimes.items():
            setattr(row, purpose, regime)
        if double_opt_in is not None:
            row.double_opt_in = double_opt_in
        row.save()
    return row


@merge_handler
def consent_records_move(org: Organization, kept: Contact, gone: Contact) -> int:
    """A merge: the merged-away contact's consent records (and the confirmations it still owes)
    move to the kept contact, whose state is then the newest record of the two per purpose."""
    moved = ConsentRecord.objects.filter(org=org, contact=gone).update(contact=kept)
    open_kept = PendingConsent.objects.filter(org=org, contact=kept, confirmed_at__isnull=True).values("purposes")
    PendingConsent.objects.filter(org=org, contact=gone, confirmed_at__isnull=True, purposes__in=open_kept).delete()
    PendingConsent.objects.filter(org=org, contact=gone).update(contact=kept)
    if moved:
        consent_states_sync(org=org, contact_ids=[kept.pk])
    return moved
