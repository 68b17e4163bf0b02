"""The outbox: guards at send time, the delivery protocol (docs/workflows.md), rate limits, and the
``send_email`` workflow action. Email goes to a real SMTP server on loopback."""

import hashlib
from datetime import UTC, datetime, timedelta
from datetime import time as clock

import pytest
import redis

from channels_app import rate_limits
from channels_app.models import Message, MessageTemplate, Suppression
from channels_app.outbox import (
    LEASE,
    LOST_AFTER,
    MAX_ATTEMPTS,
    Recipient,
    UnpublishedTemplateError,
    message_enqueue,
    message_send,
    messages_due,
    messages_enqueue,
    messages_send,
)
from channels_app.providers import providers
from channels_app.providers.email import message_id_for
from channels_app.rendering import RenderError
from compliance.services import consent_record
from tests.factories import ContactFactory
from tests.workflows.conftest import only_instance
from workflows.actions import actions
from workflows.dry_run import workflow_dry_run
from workflows.services import workflow_enrol

# Monday 30 November 2026, 10:00 UTC = 11:00 in Berlin (CET, UTC+1).
T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def enqueue(org, contact, template, key="k1", now=T0):
    return message_enqueue(org=org, contact=contact, template=template, idempotency_key=key, now=now)


def last(message: Message) -> dict:
    message.refresh_from_db()
    return message.status_history[-1]


# --- enqueue ------------------------------------------------------------------------------------


def test_enqueue_renders_the_variant_and_a_second_call_returns_the_same_row(org, contact, template):
    first = enqueue(org, contact, template)
    second = enqueue(org, contact, template)

    assert first.pk == second.pk and Message.objects.count() == 1
    assert (first.status, first.to, first.variant, first.template_version_id) == (
        "queued",
        "ana@example.com",
        "A",
        template.live_version_id,
    )
    assert first.content["subject"] == "Welcome, Ana"
    assert "/m/o/" in first.content["html"]  # the open pixel: rendering's email_finalize ran


def test_a_batch_enqueue_writes_every_message_in_a_few_queries(org, template, django_assert_max_num_queries):
    people = ContactFactory.create_batch(40, org=org)
    first = message_enqueue(org=org, contact=people[0], template=template, idempotency_key="b:0", now=T0)
    recipients = [Recipient(person, f"b:{i}") for i, person in enumerate(people)]
    recipients.append(Recipient(people[1], "b:1"))  # the same key twice in one batch

    with django_assert_max_num_queries(5):  # ids, the insert, companies, the rows already there
        messages = messages_enqueue(org=org, template=template, recipients=recipients, now=T0)

    assert len(messages) == 41 and Message.objects.count() == 40
    assert messages[0].pk == first.pk and messages[1] is messages[40]
    assert [m.contact_id for m in messages[:40]] == [p.pk for p in people]
    for message, person in zip(messages[1:40], people[1:], strict=True):
        row = Message.objects.get(pk=message.pk)
        assert row.content == message.content and row.to == person.email
        assert row.content["subject"] == f"Welcome, {person.first_name}"
        assert "/m/o/" in row.content["html"] and row.status == "queued"


def test_a_render_error_in_a_batch_writes_nothing(org, template_factory):
    # Squaring the contact's seat count over and over passes the number size limit.
    growing = "{% assign n = properties.seats %}{% for i in (1..30) %}{% assign n = n | times: n %}{% endfor %}"
    looping = template_factory("looping", variants=[{"name": "A", "weight": 1, "subject": "Hi", "text": growing}])
    people = ContactFactory.create_batch(3, org=org, properties={"seats": 99999})

    with pytest.raises(RenderError):
        messages_enqueue(org=org, template=looping, recipients=[Recipient(p, f"r:{p.pk}") for p in people])

    assert not Message.objects.exists()


def test_one_send_batch_shares_one_smtp_connection_and_checks_guards_once(
    org, template, smtp, django_assert_max_num_queries
):
    people = ContactFactory.create_batch(5, org=org)
    for person in people[:4]:
        consent_record(org=org, contact=person, purpose="email_marketing", granted=True, source="form")
    messages = messages_enqueue(
        org=org, template=template, recipients=[Recipient(p, f"s:{p.pk}") for p in people], now=T0
    )

    # The claim (savepoint, select, update, release, read the rows), suppressions, the org's consent
    # regimes and consent once for the batch, then one outcome transaction a message (savepoint,
    # SET LOCAL, update, release).
    with django_assert_max_num_queries(5 + 3 + 5 * 4):
        results = messages_send(message_ids=[m.pk for m in messages], now=T0)

    assert list(results.values()) == ["sent"] * 4 + ["blocked"]
    assert len(smtp.received) == 4
    assert smtp.greetings == 1


def test_enqueued_messages_of_one_transaction_are_sent_by_one_task_after_commit(
    org, contact, template, smtp, eager_tasks, django_capture_on_commit_callbacks, monkeypatch
):
    from channels_app import tasks

    calls = []
    original = tasks.messages_send.delay
    monkeypatch.setattr(tasks.messages_send, "delay", lambda **kw: calls.append(kw) or original(**kw))
    other = ContactFactory(org=org, email="bo@example.com", first_name="Bo")
    consent_record(org=org, contact=other, purpose="email_marketing", granted=True, source="form")

    with django_capture_on_commit_callbacks(execute=True):
        a = message_enqueue(org=org, contact=contact, template=template, idempotency_key="a")
        b = message_enqueue(org=org, contact=other, template=template, idempotency_key="b")

    assert calls == [{"message_ids": [a.pk, b.pk]}]
    assert sorted(r.rcpt_tos[0] for r in smtp.received) == ["ana@example.com", "bo@example.com"]


def test_an_unpublished_template_cannot_be_enqueued(org, contact):
    draft = MessageTemplate.objects.create(org=org, slug="draft", name="Draft", channel="email", variants=[])
    with pytest.raises(UnpublishedTemplateError, match="draft"):
        enqueue(org, contact, draft)


# --- guards -------------------------------------------------------------------------------------


def test_no_consent_blocks_with_the_reason(org, template, smtp):
    stranger = ContactFactory(org=org, email="stranger@example.com")
    message = enqueue(org, stranger, template)

    assert message_send(message_id=message.pk, now=T0) == "blocked"

    assert last(message)["reason"] == "no consent: email_marketing was never granted"
    assert message.status == "blocked" and message.sent_at is None
    assert smtp.received == []


def test_consent_withdrawn_after_enqueue_blocks_at_send(org, contact, template, smtp):
    message = enqueue(org, contact, template)
    consent_record(org=org, contact=contact, purpose="email_marketing", granted=False, source="unsubscribe_link")

    assert message_send(message_id=message.pk, now=T0) == "blocked"
    assert last(message)["reason"] == "no consent: email_marketing was withdrawn"
    assert smtp.received == []


@pytest.mark.parametrize("stored", ["ana@example.com", hashlib.sha256(b"ana@example.com").hexdigest()])
def test_a_suppressed_address_is_blocked(org, contact, template, smtp, stored):
    Suppression.objects.create(org=org, channel="email", address=stored, reason="manual")
    message = enqueue(org, contact, template)

    assert message_send(message_id=message.pk, now=T0) == "blocked"
    assert last(message)["reason"] == "suppressed: added by hand"


def test_transactional_ignores_consent_and_manual_suppression_but_not_a_hard_bounce(org, template_factory, smtp):
    receipt = template_factory("receipt", purpose="transactional")
    buyer = ContactFactory(org=org, email="buyer@example.com")  # no consent at all
    Suppression.objects.create(org=org, channel="email", address="buyer@example.com", reason="manual")

    sent = enqueue(org, buyer, receipt, key="r1")
    assert message_send(message_id=sent.pk, now=T0) == "sent"

    Suppression.objects.filter(address="buyer@example.com").update(reason="hard_bounce")
    blocked = enqueue(org, buyer, receipt, key="r2")
    assert message_send(message_id=blocked.pk, now=T0) == "blocked"
    assert last(blocked)["reason"] == "suppressed: hard bounce"
    assert len(smtp.received) == 1


def test_a_contact_without_an_address_is_blocked(org, template):
    nameless = ContactFactory(org=org, email=None)
    consent_record(org=org, contact=nameless, purpose="email_marketing", granted=True, source="form")
    message = enqueue(org, nameless, template)

    assert message_send(message_id=message.pk, now=T0) == "blocked"
    assert last(message)["reason"] == "the contact has no email address"


def test_the_daily_cap_holds_until_the_contacts_next_day_then_sends(org, contact, template, smtp):
    org.frequency_caps = {"email": {"day": 1, "week": 5}}
    org.save()
    first = enqueue(org, contact, template, key="c1")
    assert message_send(message_id=first.pk, now=T0) == "sent"

    second = enqueue(org, contact, template, key="c2")
    assert message_send(message_id=second.pk, now=T0 + timedelta(hours=1)) == "held"

    second.refresh_from_db()
    midnight_berlin = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    assert second.next_attempt_at == midnight_berlin
    assert second.status_history[-1]["reason"] == "frequency cap: 1 email sent today (at most 1 a day)"
    assert second.attempts == 0  # a hold is not an attempt
    assert message_send(message_id=second.pk, now=midnight_berlin - timedelta(seconds=1)) is None  # not yet
    assert second.pk in messages_due(now=midnight_berlin)
    assert message_send(message_id=second.pk, now=midnight_berlin) == "sent"
    assert len(smtp.received) == 2


def test_the_weekly_cap_holds_until_monday(org, contact, template, smtp):
    org.frequency_caps = {"email": {"week": 1}}
    org.save()
    assert message_send(message_id=enqueue(org, contact, template, key="w1").pk, now=T0) == "sent"
    held = enqueue(org, contact, template, key="w2")

    assert message_send(message_id=held.pk, now=T0 + timedelta(days=2)) == "held"
    held.refresh_from_db()
    assert held.next_attempt_at == datetime(2026, 12, 6, 23, 0, tzinfo=UTC)  # Monday 00:00 in Berlin


def test_two_messages_to_one_contact_in_one_batch_cannot_both_pass_a_cap(org, contact, template, smtp):
    org.frequency_caps = {"email": {"day": 1}}
    org.save()
    first, second = (enqueue(org, contact, template, key=key) for key in ("b1", "b2"))

    assert messages_send(message_ids=[first.pk, second.pk], now=T0) == {first.pk: "sent", second.pk: "held"}
    assert len(smtp.received) == 1


def test_sms_quiet_hours_default_to_21_to_8_in_the_contacts_time_zone(org, contact, template_factory):
    consent_record(org=org, contact=contact, purpose="sms", granted=True, source="form")
    sms = template_factory("reminder", channel="sms")
    message = enqueue(org, contact, sms)
    late_in_berlin = datetime(2026, 11, 30, 21, 30, tzinfo=UTC)  # 22:30 in Berlin

    assert message_send(message_id=message.pk, now=late_in_berlin) == "held"

    message.refresh_from_db()
    assert message.to == "+4915112345678"
    assert message.next_attempt_at == datetime(2026, 12, 1, 7, 0, tzinfo=UTC)  # 08:00 in Berlin
    assert message.status_history[-1]["reason"] == "quiet hours: 21:00–08:00 Europe/Berlin"


def test_email_quiet_hours_are_the_orgs_and_use_its_time_zone_when_the_contact_has_none(org, template, smtp):
    org.quiet_hours_start, org.quiet_hours_end = clock(20, 0), clock(7, 30)
    org.default_time_zone = "America/New_York"
    org.save()
    sam = ContactFactory(org=org, email="sam@example.com", time_zone="")
    consent_record(org=org, contact=sam, purpose="email_marketing", granted=True, source="form")
    message = enqueue(org, sam, template)

    assert message_send(message_id=message.pk, now=datetime(2026, 12, 1, 3, 0, tzinfo=UTC)) == "held"  # 22:00 NY
    message.refresh_from_db()
    opens = datetime(2026, 12, 1, 12, 30, tzinfo=UTC)  # 07:30 in New York
    assert message.next_attempt_at == opens
    assert message_send(message_id=message.pk, now=opens) == "sent"


def test_email_has_no_quiet_hours_when_the_org_sets_none(org, contact, template, smtp):
    night = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
    message = enqueue(org, contact, template, now=night)
    assert message_send(message_id=message.pk, now=night) == "sent"


# --- the delivery protocol ----------------------------------------------------------------------


def test_a_redelivered_send_task_sends_once(org, contact, template, smtp):
    from channels_app.tasks import messages_send

    message = enqueue(org, contact, template, now=None)  # due now: the task sends at the clock's time

    assert messages_send(message_ids=[message.pk]) == 1
    assert messages_send(message_ids=[message.pk]) == 0  # the task again: nothing to claim
    assert len(smtp.received) == 1


def test_a_row_left_sending_after_its_lease_is_sent_again_with_the_same_message_id(org, contact, template, smtp):
    message = enqueue(org, contact, template)
    # A sender claimed it, the SMTP server accepted it, and the sender died before recording it.
    Message.objects.filter(pk=message.pk).update(status="sending", attempts=1, lease_until=T0 + LEASE)
    message.refresh_from_db()
    providers()["email"].send(message)

    assert messages_due(now=T0 + LEASE - timedelta(seconds=1)) == []  # the lease still holds
    assert messages_due(now=T0 + LEASE + timedelta(seconds=1)) == [message.pk]
    assert message_send(message_id=message.pk, now=T0 + LEASE + timedelta(seconds=1)) == "sent"

    expected = message_id_for("k1", "noreply@localhost")
    assert smtp.message_ids() == [expected, expected]
    message.refresh_from_db()
    assert (message.status, message.attempts, message.provider_message_id) == ("sent", 2, expected)


def test_a_lease_expired_out_of_attempts_fails(org, contact, template):
    message = enqueue(org, contact, template)
    Message.objects.filter(pk=message.pk).update(status="sending", attempts=MAX_ATTEMPTS, lease_until=T0)

    assert messages_due(now=T0 + timedelta(seconds=1)) == []
    message.refresh_from_db()
    assert message.status == "failed" and "died" in message.error


def test_a_queued_message_whose_task_was_lost_is_found(org, contact, template):
    message = enqueue(org, contact, template)

    assert messages_due(now=T0 + LOST_AFTER - timedelta(seconds=1)) == []
    assert messages_due(now=T0 + LOST_AFTER) == [message.pk]


def test_transient_errors_back_off_exponentially_then_fail(org, contact, template, smtp):
    smtp.rcpt_replies["ana@example.com"] = "421 4.7.0 slow down"
    message = enqueue(org, contact, template)
    now, delays = T0, []

    for _ in range(MAX_ATTEMPTS - 1):
        assert message_send(message_id=message.pk, now=now) == "queued"
        message.refresh_from_db()
        delays.append((message.next_attempt_at - now).total_seconds())
        now = message.next_attempt_at
    assert message_send(message_id=message.pk, now=now) == "failed"

    assert all(5 <= d / 2**i <= 15 for i, d in enumerate(delays)), delays  # 10 s × 2^n, ±50 % jitter
    message.refresh_from_db()
    assert message.error == f"421 4.7.0 slow down (after {MAX_ATTEMPTS} attempts)"
    assert smtp.received == []


def test_a_permanent_error_fails_at_once_without_suppressing(org, contact, template, smtp):
    smtp.rcpt_replies["ana@example.com"] = "552 5.2.2 mailbox full"
    message = enqueue(org, contact, template)

    assert message_send(message_id=message.pk, now=T0) == "failed"
    message.refresh_from_db()
    assert (message.attempts, message.error) == (1, "552 5.2.2 mailbox full")
    assert not Suppression.objects.exists()


def test_a_550_suppresses_the_address_and_blocks_the_next_message(org, contact, template, smtp):
    smtp.rcpt_replies["ana@example.com"] = "550 5.1.1 no such user"
    first = enqueue(org, contact, template, key="b1")
    assert message_send(message_id=first.pk, now=T0) == "failed"

    second = enqueue(org, contact, template, key="b2")
    assert message_send(message_id=second.pk, now=T0) == "blocked"
    assert Suppression.objects.get().reason == "hard_bounce"


def test_over_the_rate_limit_a_message_is_requeued_shortly_without_using_an_attempt(
    org, contact, template, smtp, settings
):
    settings.EMAIL_RATE_PER_S = 0.2  # a bucket of one token, refilled in 5 s
    rate_limits._local_buckets.pop("email", None)
    if settings.REDIS_URL:
        redis.Redis.from_url(settings.REDIS_URL).delete("ratelimit:email")
    first, second = enqueue(org, contact, template, key="r1"), enqueue(org, contact, template, key="r2")

    assert message_send(message_id=first.pk, now=T0) == "sent"
    assert message_send(message_id=second.pk, now=T0) == "queued"

    second.refresh_from_db()
    assert second.attempts == 0 and second.error == "rate limit of email"
    assert 1 < (second.next_attempt_at - T0).total_seconds() <= 5
    assert len(smtp.received) == 1


# --- the send_email action ----------------------------------------------------------------------


def test_send_email_in_a_workflow_creates_one_message_per_visit(org, contact, template, publish, drain):
    workflow = publish(
        [
            {"id": "each", "type": "loop", "over": "workflow.trigger.items", "as": "item", "max": 5,
             "body_next": "mail", "next": None},
            {"id": "mail", "type": "action", "action": "send_email", "config": {"template": "welcome"},
             "next": "each"},
        ]
    )  # fmt: skip
    workflow_enrol(
        workflow=workflow,
        contact_ids=[contact.pk],
        trigger_type="manual",
        trigger_key="t1",
        trigger_data={"items": [1, 2, 3]},
        now=T0,
    )
    drain(T0)
    drain(T0)

    instance = only_instance(workflow)
    assert instance.status == "completed", instance.error
    messages = Message.objects.filter(instance=instance)
    assert messages.count() == 3
    assert len({m.idempotency_key for m in messages}) == 3
    assert {(m.step_id, m.workflow_id, m.status) for m in messages} == {("mail", workflow.pk, "queued")}
    assert instance.context["steps"]["mail"]["result"]["message"] in {m.pk for m in messages}


def test_send_email_checks_its_template(org, template_factory):
    template_factory("reminder", channel="sms")
    send_email = actions()["send_email"]

    assert send_email.check({"template": "welcome"}, org=org) == ["template: there is no template “welcome”."]
    assert send_email.check({"template": "reminder"}, org=org) == ["template: “reminder” is for SMS, not email."]


def test_send_email_dry_run_previews_subject_and_recipient_without_writing(org, contact, template, publish):
    workflow = publish(
        [{"id": "mail", "type": "action", "action": "send_email", "config": {"template": "welcome"}, "next": None}]
    )

    result = workflow_dry_run(workflow=workflow, contact=contact, start=T0)

    assert not Message.objects.exists()
    preview = str(result)
    assert "Welcome, Ana" in preview and "ana@example.com" in preview


def test_a_template_that_names_tags_gets_them_and_one_that_does_not_costs_no_tag_query(org, contact, template_factory):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from marketing.services import contacts_tag

    contacts_tag(org=org, contacts=type(contact).objects.filter(pk=contact.pk), names=["vip"])
    tagged = template_factory(
        "tagged", variants=[{"name": "A", "weight": 1, "subject": "Hi", "text": "{{ tags | join: ',' }}"}]
    )
    plain = template_factory("plain")
    assert enqueue(org, contact, tagged, key="t").content["text"].startswith("vip")
    with CaptureQueriesContext(connection) as queries:
        enqueue(org, contact, plain, key="p")
    assert not [q for q in queries if "marketing_contact_tags" in q["sql"] or "listmembership" in q["sql"]]
