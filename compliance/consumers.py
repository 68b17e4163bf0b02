"""Consent given on a form reaches the consent records: the form submission event carries it
(``marketing.web_tracking`` stores ticked and refused purposes, the wording, IP and agent)."""

from compliance.models import ConsentRecord, Purpose
from marketing.dispatch import EventConsumer, event_consumer
from marketing.models import Contact, Event


@event_consumer
class FormConsent(EventConsumer):
    """A ``form_submitted`` event with consent → one record per purpose (once per event)."""

    name = "compliance_form_consent"

    def consume(self, events: list[Event]) -> None:
        carrying = [e for e in events if e.type == "form_submitted" and isinstance(e.properties.get("consent"), dict)]
        if not carrying:
            return
        known = set(Purpose.values)
        emails = dict(Contact.objects.filter(pk__in={e.contact_id for e in carrying}).values_list("pk", "email"))
        rows = []
        for event in carrying:
            consent = event.properties["consent"]
            proof = {k: v for k, v in consent.items() if k not in known}
            proof["form"] = event.properties.get("form")
            for purpose, granted in consent.items():
                if purpose in known and isinstance(granted, bool):
                    rows.append(
                        ConsentRecord(
                            org_id=event.org_id,
                            contact_id=event.contact_id,
                            subject_email=emails.get(event.contact_id) or "",
                            purpose=purpose,
                            granted=granted,
                            source="form",
                            proof=proof,
                            event=event,
                            recorded_at=event.occurred_at,
                        )
                    )
        ConsentRecord.objects.bulk_create(rows, ignore_conflicts=True)  # a redelivered batch adds nothing
