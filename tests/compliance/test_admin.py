"""Console pages of consent records."""

from django.test import Client
from django.urls import reverse

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
