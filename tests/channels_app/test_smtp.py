"""The email provider against a real SMTP server on loopback (aiosmtpd): what arrives, byte for byte."""

import re

from channels_app import signed_links
from channels_app.models import Message, Suppression
from channels_app.outbox import message_enqueue, message_send
from channels_app.providers.email import message_id_for


def test_a_marketing_email_arrives_with_its_message_id_unsubscribe_headers_and_footer(org, contact, template, smtp):
    org.from_name, org.from_email = "Acme News", "news@acme.io"
    org.postal_address = "1 Main Street\nSpringfield"
    org.save()
    message = message_enqueue(org=org, contact=contact, template=template, idempotency_key="wf:1:step:2/visit 1")

    assert message_send(message_id=message.pk) == "sent"

    (received,) = smtp.received
    assert received.rcpt_tos == ["ana@example.com"]
    assert received.mail_from == "news@acme.io"
    email = received.message
    assert email["Message-ID"] == "<wf=3A1=3Astep=3A2/visit=201@acme.io>"
    assert email["From"] == "Acme News <news@acme.io>"
    assert email["Subject"] == "Welcome, Ana"
    # Signed links carry a timestamp, so compare what they sign rather than the bytes.
    header = email["List-Unsubscribe"].strip()  # folded onto a line of its own
    assert header.startswith(f"<{signed_links.absolute('/m/u/')}") and header.endswith(">")
    assert header[1:-1].encode() in received.raw
    assert unsubscribe_target(header[1:-1]) == {"m": message.pk}
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = email.get_body(("plain",)).get_content()
    html = email.get_body(("html",)).get_content()
    assert "Hello Ana." in text and "Hello Ana" in html
    assert "1 Main Street" in text and "Springfield" in text and "1 Main Street" in html
    footer_link = re.search(r"Unsubscribe: (\S+)", text).group(1)
    assert unsubscribe_target(footer_link) == {"m": message.pk}
    assert "https://acme.io/start" not in html and signed_links.absolute("/m/c/") in html  # a signed redirect
    assert signed_links.absolute("/m/o/") in html  # the open pixel

    message.refresh_from_db()
    assert (message.status, message.provider, message.provider_message_id) == (
        "sent",
        "email",
        "<wf=3A1=3Astep=3A2/visit=201@acme.io>",
    )
    assert [h["status"] for h in message.status_history] == ["queued", "sent"]


def unsubscribe_target(url: str) -> dict:
    return signed_links.read(signed_links.UNSUBSCRIBE, url.rsplit("/", 1)[1])


def test_message_ids_of_different_keys_never_collide():
    assert message_id_for("a:b", "x@acme.io") != message_id_for("a=3Ab", "x@acme.io")
    assert message_id_for("a:b", "x@acme.io") == "<a=3Ab@acme.io>"
    assert message_id_for("é", "Bounce@Acme.IO") == "<=C3=A9@acme.io>"


def test_a_transactional_email_has_no_unsubscribe_header_and_falls_back_to_default_from(
    org, contact, template_factory, smtp, settings
):
    settings.DEFAULT_FROM_EMAIL = "noreply@platform.example"
    receipt = template_factory("receipt", purpose="transactional")
    message = message_enqueue(org=org, contact=contact, template=receipt, idempotency_key="receipt-1")

    assert message_send(message_id=message.pk) == "sent"

    email = smtp.received[0].message
    assert email["From"] == "noreply@platform.example"
    assert email["Message-ID"] == "<receipt-1@platform.example>"
    assert email["List-Unsubscribe"] is None
    assert "Unsubscribe" not in email.get_body(("plain",)).get_content()


def test_a_550_refused_recipient_fails_the_message_and_suppresses_the_address(org, contact, template, smtp):
    smtp.rcpt_replies["ana@example.com"] = "550 5.1.1 <ana@example.com>: no such user"
    message = message_enqueue(org=org, contact=contact, template=template, idempotency_key="k-550")

    assert message_send(message_id=message.pk) == "failed"

    message.refresh_from_db()
    assert message.error.startswith("550 5.1.1")
    suppression = Suppression.objects.get(channel="email", address="ana@example.com")
    assert suppression.reason == "hard_bounce"
    assert smtp.received == []


def test_a_550_policy_rejection_fails_without_suppressing(org, contact, template, smtp):
    smtp.rcpt_replies["ana@example.com"] = "550 5.7.1 rejected by policy"
    message = message_enqueue(org=org, contact=contact, template=template, idempotency_key="k-policy")

    assert message_send(message_id=message.pk) == "failed"
    assert not Suppression.objects.exists()


def test_a_4xx_reply_is_retried_later_with_the_same_message_id(org, contact, template, smtp):
    smtp.rcpt_replies["ana@example.com"] = "451 4.3.0 try again later"
    message = message_enqueue(org=org, contact=contact, template=template, idempotency_key="k-451")

    assert message_send(message_id=message.pk) == "queued"
    message.refresh_from_db()
    assert message.error.startswith("will retry: 451")
    assert message.next_attempt_at > message.created_at

    del smtp.rcpt_replies["ana@example.com"]
    assert message_send(message_id=message.pk, now=message.next_attempt_at) == "sent"
    assert smtp.message_ids() == [message_id_for("k-451", "noreply@localhost")]
    assert Message.objects.get(pk=message.pk).attempts == 2


def test_a_server_that_is_down_is_a_transient_failure(org, contact, template, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    message = message_enqueue(org=org, contact=contact, template=template, idempotency_key="k-down")

    assert message_send(message_id=message.pk) == "queued"
    message.refresh_from_db()
    assert "will retry" in message.error


def test_the_one_click_unsubscribe_in_a_received_email_blocks_the_next_send(org, contact, template, smtp):
    from django.test import Client

    first = message_enqueue(org=org, contact=contact, template=template, idempotency_key="first")
    assert message_send(message_id=first.pk) == "sent"
    url = smtp.received[0].message["List-Unsubscribe"].strip()[1:-1]
    # What Gmail and Yahoo do with the header (RFC 8058): a POST without cookies.
    response = Client(enforce_csrf_checks=True).post(
        url.removeprefix(signed_links.absolute("")),
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    second = message_enqueue(org=org, contact=contact, template=template, idempotency_key="second")
    assert message_send(message_id=second.pk) == "blocked"
    second.refresh_from_db()
    assert "email_marketing" in second.status_history[-1]["reason"]
    assert len(smtp.received) == 1
