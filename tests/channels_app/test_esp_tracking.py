"""ESP tracking through django-anymail (``channels_app.esp_tracking``): Postmark's webhook payloads,
posted to anymail's real view at the URL we give the ESP, with the basic auth of
``ANYMAIL["WEBHOOK_SECRET"]``, change our messages, the suppression list and consent.

Postmark is the ESP of these tests because its webhooks are secured by basic auth alone (no
signature to compute); the payloads follow Postmark's webhook documentation."""

import base64
import json
import logging
import uuid
from datetime import UTC, datetime

import pytest
from anymail.exceptions import AnymailInsecureWebhookWarning
from django.core import mail
from django.test import Client
from django.urls import reverse

from channels_app.models import Message, Suppression
from channels_app.outbox import message_enqueue, message_send
from channels_app.providers.email import message_id_for
from compliance.selectors import consent_given
from compliance.services import consent_record
from marketing.models import Event
from tests.factories import ContactFactory

URL = "/hooks/esp/postmark/tracking/"
SECRET = "postmark:7c1b0d5e9f"
T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)  # a Monday morning: no quiet hours
AT = "2026-11-30T10:05:12.1234567Z"


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}


@pytest.fixture
def esp():
    """Postmark, as seen by our server: posts JSON with its basic auth."""

    def post(payload, *, auth=SECRET):
        headers = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(auth.encode()).decode()} if auth else {}
        return Client(enforce_csrf_checks=True).post(
            URL, data=json.dumps(payload), content_type="application/json", **headers
        )

    return post


@pytest.fixture
def sent(org, contact, template):
    """A marketing email to Ana that the outbox sent through Postmark (its MessageID stored)."""
    message = message_enqueue(
        org=org, contact=contact, template=template, idempotency_key="welcome:ana", now=T0, enqueue_send=False
    )
    Message.objects.filter(pk=message.pk).update(
        status="sent", provider="email", provider_message_id=str(uuid.uuid4()), sent_at=T0
    )
    message.refresh_from_db()
    return message


def delivery(message_id, recipient="ana@example.com"):
    return {
        "RecordType": "Delivery",
        "ServerID": 23,
        "MessageStream": "outbound",
        "MessageID": message_id,
        "Recipient": recipient,
        "Tag": "welcome",
        "DeliveredAt": AT,
        "Details": "smtp;250 2.0.0 OK",
        "Metadata": {},
    }


def bounce(message_id, *, kind="HardBounce", bounce_id=4323372036854775807, **extra):
    return {
        "RecordType": "Bounce",
        "ID": bounce_id,
        "Type": kind,
        "TypeCode": 1,
        "Name": "Hard bounce",
        "Tag": "welcome",
        "MessageID": message_id,
        "ServerID": 23,
        "MessageStream": "outbound",
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": "ana@example.com",
        "From": "news@acme.io",
        "BouncedAt": AT,
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "Welcome, Ana",
        "Metadata": {},
        **extra,
    }


def engagement(record_type, message_id, **extra):
    return {
        "RecordType": record_type,
        "MessageStream": "outbound",
        "MessageID": message_id,
        "Recipient": "ana@example.com",
        "ReceivedAt": AT,
        "UserAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
        "Platform": "Desktop",
        "Tag": "welcome",
        "Metadata": {},
        **extra,
    }


def history(message):
    message.refresh_from_db()
    return [(entry["status"], entry.get("event")) for entry in message.status_history]


def test_the_url_is_anymails_postmark_tracking_view():
    assert reverse("anymail:postmark_tracking_webhook") == URL


# --- status ---------------------------------------------------------------------------------------


def test_a_delivery_marks_the_message_delivered(esp, sent):
    response = esp(delivery(sent.provider_message_id))

    assert response.status_code == 200
    sent.refresh_from_db()
    assert sent.status == "delivered"
    entry = sent.status_history[-1]
    assert entry["at"] == "2026-11-30T10:05:12.123456+00:00"  # Postmark's time, not ours
    assert entry["reason"].startswith("Postmark delivered") and entry["event"].startswith("postmark:delivered:")


def test_a_delivery_retried_by_the_esp_counts_once(esp, sent):
    esp(delivery(sent.provider_message_id))
    esp(delivery(sent.provider_message_id))

    assert [status for status, _ in history(sent)] == ["queued", "delivered"]


def test_a_hard_bounce_bounces_suppresses_and_blocks_the_next_send(org, esp, sent, template, contact):
    response = esp(bounce(sent.provider_message_id))

    assert response.status_code == 200
    sent.refresh_from_db()
    assert sent.status == "bounced" and "550 5.1.1" in sent.error
    assert sent.status_history[-1]["event"] == "postmark:4323372036854775807"
    suppression = Suppression.objects.get(org=org, channel="email", address="ana@example.com")
    assert suppression.reason == "hard_bounce"
    assert Event.objects.get(type="message_bounced").properties["hard_bounce"] is True
    following = message_enqueue(
        org=org, contact=contact, template=template, idempotency_key="next", now=T0, enqueue_send=False
    )
    assert message_send(message_id=following.pk, now=T0) == "blocked"
    following.refresh_from_db()
    assert following.error == "suppressed: hard bounce"


def test_the_same_bounce_posted_twice_counts_once(esp, sent):
    first = esp(bounce(sent.provider_message_id))
    second = esp(bounce(sent.provider_message_id))

    assert first.status_code == second.status_code == 200
    assert history(sent) == [("queued", None), ("bounced", "postmark:4323372036854775807")]
    assert Event.objects.filter(type="message_bounced").count() == 1


def test_a_soft_bounce_is_a_bounce_without_suppression(esp, sent):
    # Anymail reports Postmark's SoftBounce as "bounced"; Postmark may still deliver it.
    # A full mailbox answers 552 5.2.2: only Postmark's Type tells that it is not for good.
    esp(bounce(sent.provider_message_id, kind="SoftBounce", Details="smtp;552 5.2.2 Mailbox full"))

    sent.refresh_from_db()
    assert sent.status == "bounced"
    assert not Suppression.objects.exists()


def test_a_transient_delay_changes_nothing(esp, sent):
    response = esp(bounce(sent.provider_message_id, kind="Transient", Details="smtp;421 try again later"))

    assert response.status_code == 200
    assert history(sent) == [("queued", None)]
    sent.refresh_from_db()
    assert sent.status == "sent"


def test_a_rejected_bad_address_fails_and_suppresses(org, esp, sent):
    esp(bounce(sent.provider_message_id, kind="BadEmailAddress", bounce_id=77))

    sent.refresh_from_db()
    assert sent.status == "failed" and "reject reason invalid" in sent.error
    assert Suppression.objects.get(org=org, address="ana@example.com").reason == "hard_bounce"


def test_a_blocked_message_fails_without_suppressing_the_address(esp, sent):
    # DMARC policy: our sending setup's fault, not the recipient's address.
    esp(bounce(sent.provider_message_id, kind="DMARCPolicy", bounce_id=78))

    sent.refresh_from_db()
    assert sent.status == "failed"
    assert not Suppression.objects.exists()


def test_a_spam_complaint_suppresses_and_withdraws_consent(org, esp, sent, contact):
    esp(bounce(sent.provider_message_id, kind="SpamComplaint", bounce_id=512, RecordType="SpamComplaint"))

    sent.refresh_from_db()
    assert sent.status == "complained"
    assert Suppression.objects.get(org=org, address="ana@example.com").reason == "complaint"
    assert not consent_given(org=org, contact_id=contact.pk, purpose="email_marketing")


def test_an_unsubscribe_at_the_esp_withdraws_consent_like_our_link(org, esp, sent, contact):
    payload = {
        "RecordType": "SubscriptionChange",
        "MessageID": sent.provider_message_id,
        "ServerID": 23,
        "MessageStream": "outbound",
        "ChangedAt": AT,
        "Recipient": "ana@example.com",
        "Origin": "Recipient",
        "SuppressSending": True,
        "SuppressionReason": "ManualSuppression",
        "Tag": "welcome",
        "Metadata": {},
    }

    response = esp(payload)
    esp(payload)  # again: nothing new

    assert response.status_code == 200
    assert not consent_given(org=org, contact_id=contact.pk, purpose="email_marketing")
    sent.refresh_from_db()
    assert sent.status == "sent"  # an unsubscribe says nothing about delivery
    assert history(sent) == [("queued", None), ("unsubscribed", None)]
    [event] = Event.objects.filter(type="unsubscribed")
    assert event.properties["source"] == "esp_unsubscribe"
    assert not Suppression.objects.exists()  # unsubscribing can be undone; a suppression cannot


def test_esp_opens_and_clicks_move_the_status_but_record_no_events(esp, sent):
    esp(engagement("Open", sent.provider_message_id, FirstOpen=True, ReadSeconds=5))
    sent.refresh_from_db()
    assert sent.status == "opened"

    esp(engagement("Click", sent.provider_message_id, ClickLocation="HTML", OriginalLink="https://acme.io/start"))
    sent.refresh_from_db()
    assert sent.status == "clicked"
    # Our pixel and redirect record email_opened / email_clicked; the ESP's copies are not counted.
    assert not Event.objects.filter(type__in=["email_opened", "email_clicked"]).exists()


def test_a_late_delivery_does_not_undo_a_click(esp, sent):
    esp(engagement("Click", sent.provider_message_id, OriginalLink="https://acme.io/start"))
    esp(delivery(sent.provider_message_id))

    sent.refresh_from_db()
    assert sent.status == "clicked"
    assert [status for status, _ in history(sent)] == ["queued", "clicked", "delivered"]


# --- finding the message --------------------------------------------------------------------------


def test_a_report_on_mail_we_did_not_send_is_ignored(esp, sent, caplog):
    with caplog.at_level(logging.INFO, logger="channels_app.esp_tracking"):
        response = esp(bounce("0f0f0f0f-not-ours", bounce_id=9))

    assert response.status_code == 200  # else the ESP retries it for days
    assert "unknown message" in caplog.text
    assert not Suppression.objects.exists()
    assert history(sent) == [("queued", None)]


def test_our_own_message_id_is_found_with_or_without_brackets(org, esp, contact, template):
    message = message_enqueue(
        org=org, contact=contact, template=template, idempotency_key="smtp:1", now=T0, enqueue_send=False
    )
    own_id = message_id_for(message.idempotency_key, "news@acme.io")
    Message.objects.filter(pk=message.pk).update(status="sent", provider="email", provider_message_id=own_id)

    esp(delivery(own_id.strip("<>")))

    message.refresh_from_db()
    assert message.status == "delivered"


def test_a_shared_message_id_is_told_apart_by_the_recipient(org, esp, template, contact):
    other = ContactFactory(org=org, email="bo@example.com")
    rows = []
    for key, person in (("batch:ana", contact), ("batch:bo", other)):
        row = message_enqueue(org=org, contact=person, template=template, idempotency_key=key, enqueue_send=False)
        Message.objects.filter(pk=row.pk).update(status="sent", provider="email", provider_message_id="batch-1")
        rows.append(row)

    esp(delivery("batch-1", recipient="ANA@example.com"))

    assert [Message.objects.get(pk=row.pk).status for row in rows] == ["delivered", "sent"]


def test_a_report_that_beats_the_sender_is_found_by_our_metadata(esp, org, contact, template):
    message = message_enqueue(org=org, contact=contact, template=template, idempotency_key="fast", enqueue_send=False)
    Message.objects.filter(pk=message.pk).update(status="sending")
    payload = delivery("f1e2d3c4-b5a6", recipient="ana@example.com") | {"Metadata": {"message": str(message.pk)}}

    esp(payload)

    message.refresh_from_db()
    assert message.status == "sending"  # the sender's own "sent" must still find it
    assert message.status_history[-1]["status"] == "delivered"


def test_metadata_naming_another_recipients_message_is_not_trusted(esp, org, sent):
    payload = delivery("f1e2d3c4-b5a6", recipient="mallory@example.com") | {"Metadata": {"message": str(sent.pk)}}

    esp(payload)

    assert history(sent) == [("queued", None)]


# --- security -------------------------------------------------------------------------------------


@pytest.mark.parametrize("auth", [None, "postmark:wrong"])
def test_a_report_without_the_secret_is_refused(org, esp, sent, auth):
    response = esp(bounce(sent.provider_message_id), auth=auth)

    assert response.status_code == 400
    sent.refresh_from_db()
    assert sent.status == "sent"
    assert not Suppression.objects.exists()


def test_without_a_configured_secret_reports_are_ignored(settings, esp, sent, caplog):
    settings.ANYMAIL = {"WEBHOOK_SECRET": ""}

    with pytest.warns(AnymailInsecureWebhookWarning), caplog.at_level(logging.WARNING):
        response = esp(bounce(sent.provider_message_id), auth=None)

    assert response.status_code == 200  # anymail answers: the ESP must not retry for ever
    assert "WEBHOOK_SECRET is not set" in caplog.text
    sent.refresh_from_db()
    assert sent.status == "sent"
    assert not Suppression.objects.exists()


# --- sent through anymail -------------------------------------------------------------------------


def test_a_send_through_an_anymail_backend_is_found_by_anymails_id(settings, org, esp, template, contact):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    other = ContactFactory(org=org, email="bo@example.com")
    consent_record(org=org, contact=other, purpose="email_marketing", granted=True, source="form")
    messages = [
        message_enqueue(org=org, contact=person, template=template, idempotency_key=key, now=T0, enqueue_send=False)
        for key, person in (("anymail:bo", other), ("anymail:ana", contact))
    ]

    assert [message_send(message_id=message.pk, now=T0) for message in messages] == ["sent", "sent"]

    assert len(mail.outbox) == 2
    for message, email in zip(messages, mail.outbox, strict=True):
        message.refresh_from_db()
        assert message.provider == "email"
        assert email.extra_headers["Message-ID"] == message_id_for(message.idempotency_key, "noreply@localhost")
    # The test backend's id is the message's place in its outbox; the second one's is 1 (the
    # first's, 0, is falsy, and the provider then stores our own Message-ID: found all the same).
    ana = messages[1]
    assert ana.provider_message_id == str(mail.outbox[1].anymail_status.message_id) == "1"
    for message in messages:
        esp(delivery(message.provider_message_id, recipient=message.to))
        message.refresh_from_db()
        assert message.status == "delivered"


# --- bad input: unconfigured ESPs, bodies that are not the ESP's payload ---------------------------

TRACKING_URLS = [
    f"/hooks/esp/{esp}/tracking/"
    for esp in (
        "amazon_ses",
        "brevo",
        "mailersend",
        "mailgun",
        "mailjet",
        "mailtrap",
        "mandrill",
        "postal",
        "postmark",
        "resend",
        "sendgrid",
        "sendinblue",
        "sparkpost",
        "unisender_go",
    )
]
DEEP = "[" * 10_000 + "]" * 10_000
BAD_BODIES = ["[]", "[1]", "[[]]", '"x"', "{}", '{"msys": []}', '[{"msys": 1}]', "not json", DEEP]


@pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailInsecureWebhookWarning")
@pytest.mark.parametrize("secret", [SECRET, ""])
def test_no_esp_tracking_endpoint_answers_a_500_to_a_bad_body(settings, db, secret):
    settings.ANYMAIL = {"WEBHOOK_SECRET": secret}
    headers = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(SECRET.encode()).decode()}
    client = Client(raise_request_exception=False)

    answers = {
        (url, body[:12]): client.post(url, body, content_type="application/json", **headers).status_code
        for url in TRACKING_URLS
        for body in BAD_BODIES
    }

    assert {key: status for key, status in answers.items() if status >= 500} == {}


def test_an_esp_whose_keys_are_not_configured_is_a_404_saying_so(settings, db, caplog):
    headers = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(SECRET.encode()).decode()}

    with caplog.at_level(logging.WARNING):
        response = Client().post("/hooks/esp/mailgun/tracking/", "{}", content_type="application/json", **headers)

    assert response.status_code == 404
    assert "Mailgun" in response.json()["detail"] and "not set up" in response.json()["detail"]
    assert "MAILGUN_WEBHOOK_SIGNING_KEY" in caplog.text  # the operator learns which setting


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("[]", "not a Postmark"),
        ('[{"RecordType": "Delivery"}]', "not a Postmark"),
        ('"Delivery"', "not a Postmark"),
        (DEEP, "nested deeper than"),
        ('{"RecordType": "Delivery", "ServerID": NaN}', "ServerID"),
        ('{"RecordType": "Bounce", "Description": "x\\u0000"}', "Description"),
    ],
)
def test_a_body_that_is_not_the_esps_payload_is_a_400_and_changes_nothing(org, esp, sent, body, says):
    headers = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(SECRET.encode()).decode()}

    response = Client().post(URL, body, content_type="application/json", **headers)

    assert response.status_code == 400
    assert says in response.json()["detail"]
    sent.refresh_from_db()
    assert sent.status == "sent"
    assert not Suppression.objects.exists()
