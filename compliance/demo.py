"""Demo data of compliance (part of ``seed_demo``): email consent for the demo contacts, and the
topics of the preference centre.

Nine in ten demo contacts with an email have granted email marketing (as an import would
record it); the rest never said, so the console shows sends blocked for want of consent.
Idempotent: contacts that already have an email-marketing record are left alone.
"""

from compliance.models import ConsentRecord, LawfulBasis, Purpose
from compliance.services import consent_states_sync
from marketing.demo import demo_seeder
from marketing.models import Contact


@demo_seeder
def demo_consent(*, org, users, stdout) -> None:
    recorded = ConsentRecord.objects.filter(org=org, purpose=Purpose.EMAIL_MARKETING).values("contact_id")
    contacts = Contact.objects.filter(org=org, email__isnull=False).exclude(pk__in=recorded).order_by("pk")
    rows = [
        ConsentRecord(
            org=org,
            contact_id=contact_id,
            subject_email=email,
            purpose=Purpose.EMAIL_MARKETING,
            granted=True,
            source="import",
            lawful_basis=LawfulBasis.CONSENT,
            proof={"list": "demo newsletter sign-ups"},
        )
        for contact_id, email in contacts.values_list("pk", "email")
        if contact_id % 10 != 9  # by id, so a second run leaves the same tenth without consent
    ]
    ConsentRecord.objects.bulk_create(rows, batch_size=1000)
    consent_states_sync(org=org, contact_ids=[row.contact_id for row in rows])
    if rows:
        stdout.write(f"Email consent recorded for {len(rows)} demo contacts.")


DEMO_TOPICS = {
    "Newsletter": "The monthly newsletter: product news, customer stories, tips.",
    "Events": "Invitations to webinars, meetups and conferences.",
}


@demo_seeder
def demo_topics(*, org, users, stdout) -> None:
    """Two topics the demo's preference centre offers (idempotent: by name)."""
    from compliance.models import SubscriptionType

    made = [
        name
        for name, description in DEMO_TOPICS.items()
        if SubscriptionType.objects.get_or_create(org=org, name=name, defaults={"description": description})[1]
    ]
    if made:
        stdout.write(f"Topics for the preference centre: {', '.join(made)}.")


@demo_seeder
def demo_data_subject_requests(*, org, users, stdout) -> None:
    """Four requests in the queue: one overdue, one due this week, one open for weeks, one waiting
    for the person's confirmation (rows only, no email; skipped once the org has any)."""
    from datetime import timedelta

    from django.utils import timezone

    from compliance.data_subject_requests import request_due_at
    from compliance.models import DataSubjectRequest, Law, RequestKind, RequestSource, RequestStatus

    if DataSubjectRequest.objects.filter(org=org).exists():
        return
    people = list(Contact.objects.filter(org=org, email__isnull=False).order_by("pk")[:4])
    if len(people) < 4:
        return
    now = timezone.now()
    plans = [  # kind, law, source, days since received, confirmed
        (RequestKind.ACCESS, Law.GDPR, RequestSource.PREFERENCE_CENTRE, 33, True),
        (RequestKind.ERASURE, Law.CCPA, RequestSource.API, 40, True),
        (RequestKind.RECTIFICATION, Law.GDPR, RequestSource.CONSOLE, 3, True),
        (RequestKind.OPT_OUT_OF_SALE, Law.CCPA, RequestSource.API, 1, False),
    ]
    rows = []
    for contact, (kind, law, source, age, confirmed) in zip(people, plans, strict=True):
        received = now - timedelta(days=age)
        rows.append(
            DataSubjectRequest(
                org=org,
                kind=kind,
                law=law,
                source=source,
                email=contact.email,
                contact=contact,
                received_at=received,
                verified_at=received + timedelta(hours=2) if confirmed else None,
                status=RequestStatus.OPEN if confirmed else RequestStatus.UNVERIFIED,
                due_at=request_due_at(law=law, received_at=received),
                verification_sends=1,
                details="Please correct my last name." if kind == RequestKind.RECTIFICATION else "",
            )
        )
    DataSubjectRequest.objects.bulk_create(rows)
    stdout.write(f"Data-subject requests in the queue: {len(rows)}.")
