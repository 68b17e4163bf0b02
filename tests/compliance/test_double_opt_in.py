"""Double opt-in: consent ticked on a public form waits for the person's confirmation by email;
the link's page confirms on POST only; tampered and expired links say so; repeats do not spam;
consent survives merges and deletions."""

import re
import time
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.core import signing
from django.test import Client
from django.utils import timezone

from channels_app.models import Message
from compliance import double_opt_in
from compliance.models import ConsentRecord, ConsentState, PendingConsent
from compliance.services import consent_record, consent_regimes_set
from marketing.identity import contact_merge
from marketing.models import ApiKey, Contact
from marketing.services import api_key_create
from tests.factories import ContactFactory

SITE = "https://www.acme.example"
AGENT = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:131.0) Gecko/20100101 Firefox/131.0"


@pytest.fixture
def site_key(org):
    org.allowed_origins = [SITE]
    org.save(update_fields=["allowed_origins"])
    return api_key_create(org=org, name="website", scope=ApiKey.Scope.WRITE)[1]


@pytest.fixture
def submit(site_key, eager_tasks, django_capture_on_commit_callbacks):
    """Posts the newsletter form as a browser would; what runs after commit (the event's dispatch,
    the email's send) runs at once."""

    def post(email="ana@example.com", **fields):
        data = {
            "_k": site_key,
            "email": email,
            "consent_email_marketing": "on",
            "consent_sms": ["false"],
            "consent_text": "Yes, send me the newsletter.",
            **fields,
        }
        with django_capture_on_commit_callbacks(execute=True):
            return Client().post(
                "/t/forms/newsletter/",
                data,
                HTTP_ORIGIN=SITE,
                HTTP_USER_AGENT="FormBrowser/2.0",
                HTTP_ACCEPT="application/json",
                REMOTE_ADDR="203.0.113.7",
            )

    return post


def confirmation_links() -> list[str]:
    texts = Message.objects.with_scopes_disabled().filter(purpose="transactional").order_by("pk")
    return [urlsplit(re.search(r"https?://\S+", m.content["text"]).group(0)).path for m in texts]


def test_form_consent_is_pending_until_confirmed_from_the_real_link(org, submit):
    assert submit().status_code == 200
    ana = Contact.objects.get(email="ana@example.com")
    # The refusal is recorded at once; the grant waits.
    assert list(ana.consent_records.values_list("purpose", "granted")) == [("sms", False)]
    assert not ConsentState.objects.filter(contact=ana, purpose="email_marketing").exists()
    pending = PendingConsent.objects.get()
    assert pending.purposes == "email_marketing" and pending.sends == 1
    [notice] = Message.objects.filter(purpose="transactional")
    assert notice.to == "ana@example.com" and notice.contact_id is None
    [link] = confirmation_links()

    page = Client().get(link)  # a mail scanner, or the person opening the page
    assert page.status_code == 200 and "Yes, confirm" in page.text and "email marketing" in page.text
    assert not ana.consent_records.filter(granted=True).exists()  # GET confirms nothing

    confirmed = Client().post(link, HTTP_USER_AGENT=AGENT, REMOTE_ADDR="198.51.100.4")
    assert confirmed.status_code == 200 and "it is confirmed" in confirmed.text
    grant = ana.consent_records.get(granted=True)
    assert (grant.purpose, grant.source) == ("email_marketing", "double_opt_in")
    proof = grant.proof
    assert proof["form"] == "newsletter" and proof["text"] == "Yes, send me the newsletter."
    assert proof["ip"] == "203.0.113.7" and proof["user_agent"] == "FormBrowser/2.0" and proof["at"]
    assert proof["confirmed_ip"] == "198.51.100.4" and proof["confirmed_user_agent"] == AGENT
    assert proof["confirmed_at"]
    assert ConsentState.objects.get(contact=ana, purpose="email_marketing").granted is True
    # A second POST (a double click) records nothing more.
    Client().post(link)
    assert ana.consent_records.filter(granted=True).count() == 1


def test_a_tampered_or_expired_link_gets_a_clear_page_and_confirms_nothing(org, submit):
    submit()
    [link] = confirmation_links()
    token = link.rstrip("/").rsplit("/", 1)[1]
    tampered = link.replace(token, token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb"))
    bad = Client().post(tampered)
    assert bad.status_code == 400 and "does not work" in bad.text
    forged = signing.dumps({"p": PendingConsent.objects.get().pk, "s": 1}, salt="something else")
    assert Client().get(f"/privacy/consent/confirm/{forged}/").status_code == 400
    eight_days_later = time.time() + 8 * 86400
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("django.core.signing.time.time", lambda: eight_days_later)
        expired = Client().post(link)
    assert expired.status_code == 400 and "has expired" in expired.text
    assert not ConsentRecord.objects.filter(granted=True).exists()


def test_repeated_submissions_keep_one_pending_and_mail_at_most_once_per_interval(org, submit):
    submit()
    submit()  # straight after: no second email
    assert PendingConsent.objects.count() == 1 and len(confirmation_links()) == 1
    # As if the email went out a little more than the interval ago.
    earlier = timezone.now() - double_opt_in.RESEND_INTERVAL - timedelta(seconds=1)
    PendingConsent.objects.update(sent_at=earlier)
    submit()
    links = confirmation_links()
    assert PendingConsent.objects.get().sends == 2 and len(links) == 2
    # Only the newest email's link works.
    assert Client().post(links[0]).status_code == 400
    assert Client().post(links[1]).status_code == 200
    assert ConsentRecord.objects.filter(granted=True).count() == 1


def test_without_double_opt_in_a_ticked_box_is_recorded_at_once(org, submit):
    consent_regimes_set(org=org, regimes={}, double_opt_in=False)
    submit()
    ana = Contact.objects.get(email="ana@example.com")
    assert set(ana.consent_records.values_list("purpose", "granted")) == {("email_marketing", True), ("sms", False)}
    assert not PendingConsent.objects.exists() and not Message.objects.exists()


# --- merges and deletion -------------------------------------------------------------------------


def test_a_merge_moves_the_consent_records_and_the_newest_record_wins(org):
    now = timezone.now()
    kept, gone = ContactFactory(org=org), ContactFactory(org=org)
    consent_record(org=org, contact=kept, purpose="email_marketing", granted=False, source="one_click", at=now)
    consent_record(
        org=org, contact=gone, purpose="email_marketing", granted=True, source="form", at=now - timedelta(days=1)
    )
    consent_record(org=org, contact=gone, purpose="sms", granted=True, source="form", at=now)
    contact_merge(org=org, kept=kept, gone=gone, reason="test")
    assert ConsentRecord.objects.filter(contact=kept).count() == 3
    states = dict(ConsentState.objects.filter(contact=kept).values_list("purpose", "granted"))
    assert states == {"email_marketing": False, "sms": True}  # the newer withdrawal wins
    assert ConsentState.objects.count() == 2  # the merged-away contact's states went with it


def test_deleting_a_contact_keeps_its_consent_records_and_drops_its_state(org):
    ana = ContactFactory(org=org, email="ana@example.com")
    consent_record(org=org, contact=ana, purpose="email_marketing", granted=True, source="form")
    ana.delete()
    record = ConsentRecord.objects.get()
    assert record.contact_id is None and record.subject_email == "ana@example.com"
    assert not ConsentState.objects.exists()
