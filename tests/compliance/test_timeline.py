"""Consent changes and messages show on the contact's timeline in the console."""

from django.urls import reverse

from channels_app.models import Message
from compliance.services import consent_record
from tests.factories import ContactFactory


def test_the_timeline_lists_consent_changes_and_messages(org, console):
    contact = ContactFactory(org=org, email="ana@example.com")
    consent_record(org=org, contact=contact, purpose="email_marketing", granted=False, source="one_click")
    Message.objects.create(
        org=org,
        contact=contact,
        channel="email",
        idempotency_key="k1",
        to=contact.email,
        content={"subject": "Welcome aboard"},
        status="blocked",
        status_history=[{"status": "blocked", "at": "2026-11-29T10:00:00Z", "reason": "no email_marketing consent"}],
    )
    page = console.get(reverse("admin:marketing_contact_timeline", args=[contact.pk])).content.decode()
    assert "Email marketing withdrawn" in page and "source: one_click" in page
    assert "Email: Welcome aboard" in page and "no email_marketing consent" in page


def test_the_timeline_lists_topic_choices(org, console):
    from compliance.preference_centre import topic_choice_record
    from tests.factories import SubscriptionTypeFactory

    contact = ContactFactory(org=org, email="ana@example.com")
    news = SubscriptionTypeFactory(org=org, name="Newsletter")
    topic_choice_record(org=org, contact=contact, topic=news, subscribed=False, source="preference_centre")

    page = console.get(reverse("admin:marketing_contact_timeline", args=[contact.pk])).content.decode()

    assert "Left the topic “Newsletter”" in page and "source: preference_centre" in page
