"""Consent given on a form reaches the consent records: the form submission event carries it
(``marketing.web_tracking`` stores ticked and refused purposes, the wording, IP and agent).
A refusal is recorded at once; a grant waits for the person's confirmation by email when the
org uses double opt-in (``compliance.double_opt_in``), else it is recorded at once too."""

from collections import defaultdict

from django.utils import timezone

from compliance.double_opt_in import pending_consent_request
from compliance.models import ConsentRecord, Purpose
from compliance.selectors import double_opt_in
from compliance.services import consent_states_sync
from marketing.dispatch import EventConsumer, event_consumer
from marketing.models import Contact, Event


@event_consumer
class FormConsent(EventConsumer):
    """A ``form_submitted`` event with consent → a record per refused purpose (once per event),
    and the granted ones recorded or awaiting confirmation."""

    name = "compliance_form_consent"

    def consume(self, events: list[Event]) -> None:
        carrying = [e for e in events if e.type == "form_submitted" and isinstance(e.properties.get("consent"), dict)]
        if not carrying:
            return
        known = set(Purpose.values)
        org = carrying[0].org
        confirm = double_opt_in(org=org)
        contacts = Contact.objects.in_bulk({e.contact_id for e in carrying})
        # A redelivered batch asks no confirmation twice: events whose consent was handled already.
        handled = set(ConsentRecord.objects.filter(org=org, event__in=carrying).values_list("event_id", flat=True))
        rows, asks = [], defaultdict(dict)
        for event in carrying:
            contact = contacts.get(event.contact_id)
            if contact is None:
                continue
            consent = event.properties["consent"]
            proof = {k: v for k, v in consent.items() if k not in known}
            proof["form"] = event.properties.get("form")
            granted = [p for p, given in consent.items() if p in known and given is True]
            for purpose, given in consent.items():
                if purpose not in known or not isinstance(given, bool) or (given and confirm):
                    continue
                rows.append(
                    ConsentRecord(
                        org_id=event.org_id,
                        contact_id=event.contact_id,
                        subject_email=contact.email or "",
                        purpose=purpose,
                        granted=given,
                        source="form",
                        proof=proof,
                        event=event,
                        recorded_at=event.occurred_at,
                    )
                )
            if confirm and granted and event.pk not in handled:
                asks[contact.pk] = (contact, granted, proof, event)  # the contact's newest submission
        ConsentRecord.objects.bulk_create(rows, ignore_conflicts=True)  # a redelivered batch adds nothing
        consent_states_sync(org=org, contact_ids={row.contact_id for row in rows})
        now = timezone.now()
        for contact, purposes, proof, event in asks.values():
            pending_consent_request(org=org, contact=contact, purposes=purposes, proof=proof, event=event, now=now)
