"""Console pages for events: the contact timeline, events, merges, dispatch batches."""

from datetime import timedelta

from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled

from marketing.identity import contact_identify, ref_from
from marketing.models import DispatchBatch, Event, Role
from marketing.tenancy import org_context
from tests.factories import ContactFactory


def timeline_url(contact):
    return reverse("admin:marketing_contact_timeline", args=[contact.pk])


def test_timeline_shows_events_and_merges_newest_first_paginated(org, console):
    now = timezone.now()
    anonymous = contact_identify(org=org, ref=ref_from(anonymous_id="anon-1"))
    Event.objects.bulk_create(
        [
            Event(
                org=org,
                contact=anonymous,
                type=f"view-{i:02d}",
                occurred_at=now - timedelta(hours=i),
                message_id=f"m{i}",
            )
            for i in range(60)
        ]
    )
    known = ContactFactory(org=org, email="ana@example.com")
    contact_identify(org=org, ref=ref_from(email="ana@example.com", anonymous_id="anon-1"))

    first = console.get(timeline_url(known)).content.decode()
    assert "61 entries" in first
    assert first.index("Merged contact") < first.index("view-00") < first.index("view-01")
    assert "view-48" in first and "view-49" not in first  # 50 a page
    second = console.get(timeline_url(known), {"page": 2}).content.decode()
    assert "view-49" in second and "view-59" in second and "view-48" not in second
    assert "Timeline" in console.get(reverse("admin:marketing_contact_change", args=[known.pk])).content.decode()


def test_timeline_of_another_orgs_contact_is_404(org, other_org, console):
    with scopes_disabled():
        theirs = ContactFactory(org=other_org)
    assert console.get(timeline_url(theirs)).status_code == 404


def test_event_pages_are_read_only_and_scoped(org, other_org, console):
    mine = ContactFactory(org=org, email="mine@example.com")
    Event.objects.create(org=org, contact=mine, type="mine_happened", occurred_at=timezone.now(), message_id="a")
    with org_context(other_org):
        theirs = ContactFactory(org=other_org)
        foreign = Event.objects.create(
            org=other_org, contact=theirs, type="theirs_happened", occurred_at=timezone.now(), message_id="b"
        )

    page = console.get(reverse("admin:marketing_event_changelist")).content.decode()
    assert "mine_happened" in page and "theirs_happened" not in page
    assert console.get(reverse("admin:marketing_event_change", args=[foreign.pk])).status_code == 302
    assert console.get(reverse("admin:marketing_event_add")).status_code == 403


def test_redeliver_action_requeues_a_batch(org, member_factory, monkeypatch, django_capture_on_commit_callbacks):
    sent = []
    monkeypatch.setattr("marketing.tasks.dispatch_batch.delay", lambda **kw: sent.append(kw["batch_id"]))
    batch = DispatchBatch.objects.create(org=org, event_ids=[], status="running")
    client = Client()
    client.force_login(member_factory(org, Role.ADMIN))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("admin:marketing_dispatchbatch_changelist"), {"action": "redeliver", "_selected_action": [batch.pk]}
        )
    batch.refresh_from_db()
    assert batch.status == "pending" and sent == [batch.pk]
