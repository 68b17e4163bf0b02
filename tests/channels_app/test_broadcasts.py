"""Broadcasts: a template to a segment's current members, once per member per broadcast key."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from channels_app.broadcasts import broadcast_enqueue
from channels_app.models import Message
from channels_app.template_versions import template_publish
from compliance.services import consent_record
from marketing.segments import segment_add_contacts
from tests.factories import ContactFactory, SegmentFactory


@pytest.fixture
def members(org):
    """Three members of the "customers" segment (Cleo never consented) and one outsider."""
    people = []
    for name, consents in (("ana", True), ("ben", True), ("cleo", False)):
        person = ContactFactory(org=org, email=f"{name}@example.com", first_name=name.title())
        if consents:
            consent_record(org=org, contact=person, purpose="email_marketing", granted=True, source="form")
        people.append(person)
    outsider = ContactFactory(org=org, email="out@example.com")
    consent_record(org=org, contact=outsider, purpose="email_marketing", granted=True, source="form")
    segment = SegmentFactory(org=org, slug="customers")
    segment_add_contacts(segment=segment, contacts=people)
    return segment


def test_a_broadcast_sends_each_member_one_message_through_the_guards(
    org, members, template, smtp, eager_tasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        result = broadcast_enqueue(org=org, template=template, segment=members)

    assert (result.key, result.members, result.queued, result.existing) == ("welcome-v1", 3, 3, 0)
    statuses = dict(Message.objects.values_list("to", "status"))
    assert statuses == {"ana@example.com": "sent", "ben@example.com": "sent", "cleo@example.com": "blocked"}
    assert sorted(m.message["To"] for m in smtp.received) == ["ana@example.com", "ben@example.com"]
    assert {m.message["Subject"] for m in smtp.received} == {"Welcome, Ana", "Welcome, Ben"}
    assert Message.objects.get(to="cleo@example.com").error == "no consent: email_marketing was never granted"


def test_running_a_broadcast_again_queues_only_new_members(org, members, template):
    broadcast_enqueue(org=org, template=template, segment=members)
    late = ContactFactory(org=org, email="dora@example.com")
    segment_add_contacts(segment=members, contacts=[late])

    again = broadcast_enqueue(org=org, template=template, segment=members)

    assert (again.members, again.queued, again.existing) == (4, 1, 3)
    assert Message.objects.count() == 4
    assert Message.objects.filter(contact=late, idempotency_key=f"broadcast:welcome-v1:{late.pk}").exists()


def test_a_new_template_version_is_a_new_broadcast(org, members, template):
    broadcast_enqueue(org=org, template=template, segment=members)
    template_publish(template=template)
    template.refresh_from_db()

    second = broadcast_enqueue(org=org, template=template, segment=members)

    assert (second.key, second.queued) == ("welcome-v2", 3)
    assert Message.objects.count() == 6


def test_the_command_broadcasts_to_a_segment(org, members, template):
    out = StringIO()
    options = {"org": "org-a", "template": "welcome", "segment": "customers", "key": "spring"}
    call_command("send_message", **options, stdout=out, stderr=StringIO())

    assert out.getvalue().strip() == (
        "broadcast spring: 3 messages queued for 3 members of customers (0 already had it); "
        "guards are checked as each is sent"
    )
    assert set(Message.objects.values_list("idempotency_key", flat=True)) == {
        f"broadcast:spring:{pk}" for pk in members.memberships.values_list("contact_id", flat=True)
    }


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"segment": "nobody"}, "No segment with slug 'nobody' in org-a."),
        ({"segment": "customers", "template": "missing"}, "No template with slug 'missing' in org-a."),
        ({"contact": "ana@example.com", "key": "spring"}, "--key names a broadcast: use it with --segment."),
    ],
)
def test_the_command_refuses_bad_input_in_one_line(org, members, template, options, error):
    with pytest.raises(CommandError) as refused:
        call_command("send_message", org="org-a", **{"template": "welcome", **options}, stdout=StringIO())
    assert str(refused.value) == error
