"""Provider reports on a sent message (``channels_app.delivery_events``): the status moves forward
only, a hard bounce or a complaint suppresses the address, a report counts once, and a report on
a row still ``sending`` leaves its status to the sender."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from channels_app import outbox
from channels_app.delivery_events import message_delivery_event
from channels_app.models import Message, Suppression
from channels_app.outbox import message_enqueue, message_send
from channels_app.providers.email import DjangoEmail
from compliance.models import ConsentRecord
from compliance.selectors import consent_given
from marketing.models import Event

# Monday 30 November 2026, 10:00 UTC = 11:00 in Berlin: outside every quiet hour.
T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


@pytest.fixture
def make_message(org, contact, template):
    """A message to Ana, already through the outbox up to ``status`` (no provider involved)."""

    def make(status="sent", *, purpose="marketing"):
        message = message_enqueue(
            org=org, contact=contact, template=template, idempotency_key=uuid.uuid4().hex, now=T0, enqueue_send=False
        )
        Message.objects.filter(pk=message.pk).update(status=status, purpose=purpose, provider="email")
        message.refresh_from_db()
        return message

    return make


def statuses(message: Message) -> list[str]:
    message.refresh_from_db()
    return [entry["status"] for entry in message.status_history]


# --- forward only ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "report", "after"),
    [
        ("sent", "delivered", "delivered"),
        ("opened", "delivered", "opened"),  # a late delivery report does not undo an open
        ("clicked", "delivered", "clicked"),
        ("bounced", "delivered", "bounced"),
        ("delivered", "opened", "opened"),
        ("clicked", "opened", "clicked"),  # an open reported after the click
        ("opened", "clicked", "clicked"),
        ("sent", "clicked", "clicked"),  # images off: a click without an open
        ("complained", "clicked", "complained"),
        ("delivered", "bounced", "bounced"),
        ("opened", "bounced", "opened"),  # it was read: the bounce is not about this message
        ("clicked", "complained", "complained"),  # a complaint ends everything
        ("bounced", "complained", "complained"),
        ("complained", "complained", "complained"),
        ("sent", "failed", "failed"),
        ("clicked", "failed", "clicked"),
        ("blocked", "delivered", "blocked"),  # never sent: nothing to report on
        ("failed", "bounced", "failed"),
        ("queued", "delivered", "queued"),
    ],
)
def test_a_report_moves_the_status_forward_only(make_message, before, report, after):
    message = make_message(before)

    changed = message_delivery_event(message, report, reason="because", provider_event_id="ev-1")

    message.refresh_from_db()
    assert (message.status, changed) == (after, after != before)
    # Every report is kept in the history, whether it moved the status or not.
    assert message.status_history[-1] | {"at": None} == {
        "status": report,
        "at": None,
        "reason": "because",
        "event": "ev-1",
    }


def test_the_history_carries_the_providers_time(make_message):
    message = make_message("sent")
    at = T0 + timedelta(minutes=3)

    message_delivery_event(message, "delivered", at=at)

    message.refresh_from_db()
    assert message.status_history[-1]["at"] == at.isoformat()


def test_an_unknown_status_is_refused(make_message):
    message = make_message("sent")

    with pytest.raises(ValueError, match="not a delivery status: sending"):
        message_delivery_event(message, "sending")

    assert statuses(message) == ["queued"]


# --- suppression ----------------------------------------------------------------------------------


def test_a_hard_bounce_suppresses_the_address_and_blocks_the_next_send(org, make_message):
    bounced = make_message("sent")

    message_delivery_event(bounced, "bounced", reason="550 5.1.1 no such user", hard_bounce=True)

    bounced.refresh_from_db()
    assert (bounced.status, bounced.error) == ("bounced", "550 5.1.1 no such user")
    suppression = Suppression.objects.get(org=org, channel="email", address="ana@example.com")
    assert (suppression.reason, suppression.detail) == ("hard_bounce", "550 5.1.1 no such user")
    [event] = Event.objects.filter(type="message_bounced")
    assert event.properties["hard_bounce"] is True and event.properties["message_id"] == bounced.pk
    # The next message to the address, marketing or transactional, is stopped by the guards.
    for purpose in ("marketing", "transactional"):
        following = make_message("queued", purpose=purpose)
        assert message_send(message_id=following.pk, now=T0) == "blocked"
        following.refresh_from_db()
        assert following.error == "suppressed: hard bounce"


def test_a_failure_with_a_hard_bounce_suppresses_too(org, make_message):
    message = make_message("sent")

    message_delivery_event(message, "failed", reason="invalid address", hard_bounce=True)

    message.refresh_from_db()
    assert message.status == "failed"
    assert Suppression.objects.get(org=org, address="ana@example.com").reason == "hard_bounce"


def test_a_soft_bounce_is_recorded_but_does_not_suppress(org, make_message):
    message = make_message("delivered")

    message_delivery_event(message, "bounced", reason="452 4.2.2 mailbox full")

    message.refresh_from_db()
    assert message.status == "bounced"
    assert not Suppression.objects.exists()
    assert Event.objects.get(type="message_bounced").properties["hard_bounce"] is False
    following = make_message("queued")
    assert message_send(message_id=following.pk, now=T0) != "blocked"


def test_a_complaint_suppresses_and_withdraws_the_marketing_consent(org, contact, make_message):
    message = make_message("clicked")
    assert consent_given(org=org, contact_id=contact.pk, purpose="email_marketing")

    message_delivery_event(message, "complained", reason="abuse report", at=T0)

    message.refresh_from_db()
    assert message.status == "complained"
    assert Suppression.objects.get(org=org, channel="email", address="ana@example.com").reason == "complaint"
    assert not consent_given(org=org, contact_id=contact.pk, purpose="email_marketing")
    withdrawal = ConsentRecord.objects.filter(contact=contact).order_by("-recorded_at", "-id").first()
    assert (withdrawal.granted, withdrawal.source, withdrawal.proof["message"]) == (False, "complaint", message.pk)
    assert Event.objects.filter(type="message_complained", contact=contact).count() == 1
    # Even a transactional message no longer goes to someone who called us spam.
    following = make_message("queued", purpose="transactional")
    assert message_send(message_id=following.pk, now=T0) == "blocked"


# --- once -----------------------------------------------------------------------------------------


def test_a_report_sent_twice_counts_once(org, make_message):
    message = make_message("delivered")

    first = message_delivery_event(message, "bounced", reason="550", hard_bounce=True, provider_event_id="pm:42")
    second = message_delivery_event(message, "bounced", reason="550", hard_bounce=True, provider_event_id="pm:42")

    assert (first, second) == (True, False)
    assert statuses(message) == ["queued", "bounced"]
    assert Event.objects.filter(type="message_bounced").count() == 1
    assert Suppression.objects.count() == 1


def test_reports_without_an_id_are_each_kept(make_message):
    message = make_message("sent")

    message_delivery_event(message, "opened")
    message_delivery_event(message, "opened")

    assert statuses(message) == ["queued", "opened", "opened"]


# --- a report that beats the sender -----------------------------------------------------------------


def test_a_report_on_a_row_still_sending_only_appends_to_its_history(make_message):
    message = make_message("sending")

    changed = message_delivery_event(message, "delivered", provider_event_id="ev-fast")

    message.refresh_from_db()
    assert (changed, message.status) == (False, "sending")  # the sender's conditional update still finds it
    assert message.status_history[-1]["event"] == "ev-fast"


def test_a_report_that_arrives_during_the_send_survives_the_senders_sent(org, contact, template, smtp, monkeypatch):
    message = message_enqueue(
        org=org, contact=contact, template=template, idempotency_key="fast", now=T0, enqueue_send=False
    )
    send = DjangoEmail.send

    def send_and_report(self, message, session=None):
        provider_message_id = send(self, message, session)
        message_delivery_event(message, "delivered", provider_event_id="ev-during-send")  # the ESP is quick
        return provider_message_id

    monkeypatch.setattr(DjangoEmail, "send", send_and_report)

    assert outbox.message_send(message_id=message.pk, now=T0) == "sent"

    assert "ev-during-send" in [entry.get("event") for entry in Message.objects.get(pk=message.pk).status_history]
