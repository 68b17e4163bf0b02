"""Consent records: append-only, the newest wins, form consent lands once per event."""

from datetime import UTC, datetime, timedelta

from compliance.models import ConsentRecord
from compliance.selectors import consent_given, consent_states
from compliance.services import consent_record, consent_regimes_set
from marketing.dispatch import dispatch_batch_run
from marketing.ingestion import events_ingest, events_validate
from marketing.models import DispatchBatch
from tests.factories import ContactFactory

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def test_the_newest_record_of_a_purpose_is_its_state(org):
    ana, bob, cy = (ContactFactory(org=org) for _ in range(3))
    consent_record(org=org, contact=ana, purpose="email_marketing", granted=True, source="form", at=T0)
    consent_record(
        org=org, contact=ana, purpose="email_marketing", granted=False, source="one_click", at=T0 + timedelta(days=1)
    )
    consent_record(org=org, contact=bob, purpose="email_marketing", granted=True, source="import", at=T0)
    consent_record(org=org, contact=bob, purpose="sms", granted=False, source="sms_stop", at=T0 + timedelta(days=2))
    states = consent_states(org=org, contact_ids=[ana.pk, bob.pk, cy.pk], purpose="email_marketing")
    assert states == {ana.pk: False, bob.pk: True}  # cy never said: no consent
    assert not consent_given(org=org, contact_id=cy.pk, purpose="email_marketing")
    assert ConsentRecord.objects.filter(contact=ana).count() == 2  # the history stays


def test_a_form_submission_records_its_consent_once_even_when_dispatched_twice(org):
    consent_regimes_set(org=org, regimes={}, double_opt_in=False)  # grants recorded at once
    items = [
        {
            "type": "form_submitted",
            "email": "ana@example.com",
            "properties": {
                "form": "newsletter",
                "consent": {"email_marketing": True, "sms": False, "text": "Yes please", "ip": "127.0.0.1"},
            },
        }
    ]
    parsed, errors = events_validate(items)
    events_ingest(org=org, items=parsed, errors=errors, source="form")
    batch = DispatchBatch.objects.get()
    dispatch_batch_run(batch_id=batch.pk)
    DispatchBatch.objects.filter(pk=batch.pk).update(status="pending")
    dispatch_batch_run(batch_id=batch.pk)
    records = {r.purpose: r for r in ConsentRecord.objects.all()}
    assert set(records) == {"email_marketing", "sms"}
    assert records["email_marketing"].granted and not records["sms"].granted
    assert records["email_marketing"].proof == {"text": "Yes please", "ip": "127.0.0.1", "form": "newsletter"}
    assert records["email_marketing"].source == "form"


def test_the_demo_gives_most_demo_contacts_email_consent_once(org):
    from io import StringIO

    from compliance.demo import demo_consent

    contacts = [ContactFactory(org=org, email=f"d{n}@example.com") for n in range(20)]
    demo_consent(org=org, users={}, stdout=StringIO())
    demo_consent(org=org, users={}, stdout=StringIO())
    states = consent_states(org=org, contact_ids=[c.pk for c in contacts], purpose="email_marketing")
    expected = [c.pk for c in contacts if c.pk % 10 != 9]
    assert sorted(states) == expected and all(states.values())
    assert ConsentRecord.objects.count() == len(expected) == 18
