"""Console pages of consent, the outbox and suppressions."""

from django.test import Client
from django.urls import reverse

from channels_app.models import Message, Suppression
from compliance.models import ConsentRecord
from marketing.models import Role
from tests.factories import ContactFactory


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_consent_records_can_be_added_but_never_changed(org, member_factory):
    officer = client_for(member_factory(org, Role.COMPLIANCE, username="cora"))
    contact = ContactFactory(org=org)
    response = officer.post(
        reverse("admin:compliance_consentrecord_add"),
        {
            "contact": contact.pk,
            "purpose": "sms",
            "granted": "on",
            "source": "phone call",
            "lawful_basis": "consent",
            "proof": "{}",
            "recorded_at_0": "2026-11-29",
            "recorded_at_1": "10:00:00",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    record = ConsentRecord.objects.get()
    assert (record.granted, record.source, record.proof) == (True, "phone call", {"recorded_by": "cora"})
    change = officer.post(reverse("admin:compliance_consentrecord_change", args=[record.pk]), {"granted": ""})
    assert change.status_code == 403 and ConsentRecord.objects.get().granted
    assert (
        officer.post(reverse("admin:compliance_consentrecord_delete", args=[record.pk]), {"post": "yes"}).status_code
        == 403
    )


def test_the_outbox_lists_messages_read_only_with_filters(org, console, django_assert_max_num_queries):
    contact = ContactFactory(org=org)
    for n in range(5):
        Message.objects.create(
            org=org,
            contact=contact,
            channel="email",
            idempotency_key=f"k{n}",
            to="a@example.com",
            content={"subject": f"Hello {n}"},
            status="sent",
        )
    url = reverse("admin:channels_app_message_changelist")
    with django_assert_max_num_queries(12):
        page = console.get(url + "?status__exact=sent&channel__exact=email").content.decode()
    assert "Hello 4" in page
    message = Message.objects.first()
    assert console.post(reverse("admin:channels_app_message_change", args=[message.pk]), {}).status_code == 403


def test_a_suppression_added_by_hand_is_stored_as_the_guards_compare_it(org, console):
    response = console.post(
        reverse("admin:channels_app_suppression_add"),
        {"channel": "email", "address": "  Ana@Example.COM ", "reason": "manual", "detail": "asked by phone"},
    )
    assert response.status_code == 302
    assert Suppression.objects.get().address == "ana@example.com"


def test_sales_see_no_outbox(org, member_factory):
    rep = client_for(member_factory(org, Role.SALES, username="sam"))
    assert rep.get(reverse("admin:channels_app_message_changelist")).status_code == 403
