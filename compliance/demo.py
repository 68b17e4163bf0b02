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
