"""A consent record's proof in plain words (compliance/consent_proof.py) on its console page,
with the stored JSON under "Advanced", and a record taken by hand with a note instead of JSON."""

import pytest
from django.test import Client
from django.urls import reverse

from compliance.consent_proof import browser_summary, proof_lines
from compliance.models import ConsentRecord
from marketing.models import Role
from tests.factories import ContactFactory

FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:131.0) Gecko/20100101 Firefox/131.0"
EDGE = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)


@pytest.fixture
def officer(org, member_factory):
    client = Client()
    client.force_login(member_factory(org, Role.COMPLIANCE, username="cora"))
    return client


@pytest.mark.parametrize(
    ("agent", "summary"),
    [
        (FIREFOX_WINDOWS, "Firefox 131 on Windows"),
        (EDGE, "Edge 130 on Windows"),
        (SAFARI_IPHONE, "Safari 17 on iOS"),
        ("curl/8.5.0", "curl/8.5.0"),
        ("", "not recorded"),
    ],
)
def test_the_browser_is_named_in_words(agent, summary):
    assert browser_summary(agent) == summary


def test_a_form_consent_reads_as_a_list_and_keeps_unknown_keys():
    proof = {
        "form": "Newsletter signup",
        "ip": "203.0.113.9",
        "user_agent": FIREFOX_WINDOWS,
        "text": "Send me the monthly newsletter",
        "at": "2026-11-29T10:00:00+00:00",
        "campaign": "winter",
    }
    assert proof_lines(source="form", granted=True, proof=proof) == [
        ("Given", "on a form: Newsletter signup"),
        ("From address", "203.0.113.9"),
        ("Browser", "Firefox 131 on Windows"),
        ("Text shown", "Send me the monthly newsletter"),
        ("At", "2026-11-29T10:00:00+00:00"),
        ("Campaign", "winter"),
    ]
    assert proof_lines(source="unsubscribe_link", granted=False, proof={"message": 812, "ip": "198.51.100.4"}) == [
        ("Withdrawn", "with the unsubscribe link in a message"),
        ("From address", "198.51.100.4"),
        ("Message", "#812"),
    ]


def test_the_record_page_shows_the_proof_in_words_and_the_json_under_advanced(org, officer):
    contact = ContactFactory(org=org)
    record = ConsentRecord.objects.create(
        org=org,
        contact=contact,
        purpose="email_marketing",
        granted=True,
        source="form",
        proof={"form": "Newsletter signup", "ip": "203.0.113.9", "user_agent": FIREFOX_WINDOWS, "text": "<b>Yes</b>"},
    )
    page = officer.get(reverse("admin:compliance_consentrecord_change", args=[record.pk])).content.decode()
    assert "Given on a form: Newsletter signup" in page
    assert '<dt class="font-semibold">From address</dt><dd>203.0.113.9</dd>' in page
    assert f'<dt class="font-semibold">Browser</dt><dd title="{FIREFOX_WINDOWS}">Firefox 131 on Windows</dd>' in page
    assert '<dt class="font-semibold">Text shown</dt><dd>&lt;b&gt;Yes&lt;/b&gt;</dd>' in page  # escaped, never HTML
    assert "Advanced: the proof as stored" in page and "203.0.113.9" in page.split("Advanced: the proof")[1]


def test_a_record_taken_by_hand_keeps_a_note_as_its_proof(org, officer):
    contact = ContactFactory(org=org)
    page = officer.get(reverse("admin:compliance_consentrecord_add")).content.decode()
    assert 'name="note"' in page and 'name="proof"' not in page
    response = officer.post(
        reverse("admin:compliance_consentrecord_add"),
        {
            "contact": contact.pk,
            "purpose": "sms",
            "granted": "on",
            "source": "phone call",
            "lawful_basis": "consent",
            "note": "Said yes on the phone on 3 December",
            "recorded_at_0": "2026-12-03",
            "recorded_at_1": "10:00:00",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert ConsentRecord.objects.get().proof == {"note": "Said yes on the phone on 3 December", "recorded_by": "cora"}
