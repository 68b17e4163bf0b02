"""Identity resolution and merges: nothing lost, nothing duplicated, conflicts recorded."""

from datetime import timedelta

import pytest
from django.utils import timezone

from marketing.identity import Trust, contact_identify, contact_merge, ref_from
from marketing.models import AnonymousId, Contact, ContactMerge, Event
from tests.factories import ContactFactory, ContactListFactory, TagFactory

EVENTS = "/api/v1/events/"


def test_anonymous_page_views_end_up_on_the_known_contact_after_identify(org, api):
    views = [{"type": "page_view", "anonymous_id": "anon-1", "properties": {"path": p}} for p in ("/", "/pricing")]
    api.post(EVENTS, {"events": views}, content_type="application/json")
    anonymous = Contact.objects.get(anonymous_ids__value="anon-1")
    known = ContactFactory(org=org, email="ana@example.com")

    kept = contact_identify(org=org, ref=ref_from(email="ana@example.com", anonymous_id="anon-1"))

    assert kept == known
    assert sorted(Event.objects.filter(contact=known).values_list("properties__path", flat=True)) == ["/", "/pricing"]
    assert not Contact.objects.filter(pk=anonymous.pk).exists()
    assert AnonymousId.objects.get(value="anon-1").contact == known
    merge = ContactMerge.objects.get()
    assert (merge.kept, merge.merged_contact_id, merge.moved["events"]) == (known, anonymous.pk, 2)

    # Later anonymous page views of the same browser land on the known contact directly.
    api.post(EVENTS, {"events": [{"type": "page_view", "anonymous_id": "anon-1"}]}, content_type="application/json")
    assert Event.objects.filter(contact=known).count() == 3


def test_merge_with_conflicting_properties_newer_wins_and_both_are_recorded(org):
    now = timezone.now()
    older = ContactFactory(
        org=org,
        email="ana@example.com",
        first_name="Ana",
        job_title="Engineer",
        lifecycle_stage="customer",
        properties={"plan": "free", "seats": 3},
    )
    newer = ContactFactory(
        org=org,
        email=None,
        external_id="u-42",
        first_name="Anna",
        phone="+4915112345678",
        lifecycle_stage="lead",
        properties={"plan": "pro", "team": "blue"},
    )
    Contact.objects.filter(pk=older.pk).update(updated_at=now - timedelta(days=3))
    Contact.objects.filter(pk=newer.pk).update(updated_at=now)
    vip, newsletter = TagFactory(org=org, name="vip"), ContactListFactory(org=org)
    newer.tags.add(vip)
    newsletter.contacts.add(newer)
    Event.objects.create(org=org, contact=newer, type="x", occurred_at=now, message_id="m-1")

    merge = contact_merge(
        org=org, kept=Contact.objects.get(pk=older.pk), gone=Contact.objects.get(pk=newer.pk), reason="identify"
    )
    kept = Contact.objects.get(pk=older.pk)

    assert kept.first_name == "Anna"  # the more recently updated contact's value wins…
    assert merge.conflicts["first_name"] == {"kept": "Ana", "merged": "Anna", "chosen": "Anna"}  # …both recorded
    assert kept.properties == {"plan": "pro", "seats": 3, "team": "blue"}
    assert merge.conflicts["properties.plan"] == {"kept": "free", "merged": "pro", "chosen": "pro"}
    assert kept.job_title == "Engineer" and kept.phone == "+4915112345678"  # gaps filled from either side
    assert kept.lifecycle_stage == "customer"  # the furthest stage is kept
    assert kept.external_id == "u-42" and kept.email == "ana@example.com"
    assert list(kept.tags.all()) == [vip] and list(kept.lists.all()) == [newsletter]
    assert Event.objects.get(message_id="m-1").contact_id == kept.pk
    assert merge.merged_snapshot["first_name"] == "Anna" and merge.merged_snapshot["id"] == newer.pk
    assert Contact.objects.count() == 1


def test_a_server_identify_naming_two_known_contacts_merges_into_the_older(org):
    first = ContactFactory(org=org, email="ana@example.com")
    second = ContactFactory(org=org, email=None, external_id="u-1")
    kept = contact_identify(org=org, ref=ref_from(email="ana@example.com", external_id="u-1"), trust=Trust.SERVER)
    assert kept.pk == first.pk
    assert Contact.objects.get().external_id == "u-1"
    assert ContactMerge.objects.get().merged_contact_id == second.pk


def test_a_batch_tying_identifiers_of_two_contacts_merges_them(org, api):
    api.post(EVENTS, {"events": [{"type": "v", "anonymous_id": "anon-7"}]}, content_type="application/json")
    known = ContactFactory(org=org, external_id="u-7")
    body = api.post(
        EVENTS,
        {"events": [{"type": "login", "external_id": "u-7", "anonymous_id": "anon-7"}]},
        content_type="application/json",
    ).json()
    assert body["results"][0]["contact_id"] == known.pk
    assert Event.objects.filter(contact=known).count() == 2
    assert Contact.objects.count() == 1


def test_identify_is_idempotent(org):
    first = contact_identify(org=org, ref=ref_from(email="a@example.com", anonymous_id="anon-1"))
    again = contact_identify(org=org, ref=ref_from(email="A@example.com", anonymous_id="anon-1"))
    assert first == again
    assert (Contact.objects.count(), AnonymousId.objects.count(), ContactMerge.objects.count()) == (1, 1, 0)


def test_merging_a_contact_into_itself_is_refused(org):
    contact = ContactFactory(org=org)
    with pytest.raises(ValueError, match="itself"):
        contact_merge(org=org, kept=contact, gone=contact, reason="manual")
