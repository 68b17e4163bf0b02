"""The events API: per-item results, idempotency on message_id, property typing, batch limits."""

import pytest
from django.test import Client
from django.utils import timezone
from django_scopes import scopes_disabled

from marketing.models import AnonymousId, Contact, DispatchBatch, Event, PropertyDefinition
from tests.factories import ContactFactory

EVENTS = "/api/v1/events/"


def post(client, events):
    return client.post(EVENTS, {"events": events}, content_type="application/json")


def good_event(i, **extra):
    return {
        "type": "page_view",
        "email": f"visitor{i % 7}@example.com",
        "properties": {"path": f"/p/{i}"},
        "occurred_at": "2026-11-28T10:00:00Z",
        "message_id": f"msg-{i}",
        **extra,
    }


def test_a_batch_with_three_bad_events_stores_the_other_97(org, api):
    events = [good_event(i) for i in range(100)]
    events[10] = {"type": "page_view", "properties": {}}  # names no contact
    events[50] = good_event(50, email="not-an-email")
    events[99] = good_event(99, occurred_at="yesterday")

    body = post(api, events).json()

    assert (body["stored"], body["duplicates"], body["errors"]) == (97, 0, 3)
    errors = {r["index"]: r["errors"] for r in body["results"] if r["status"] == "error"}
    assert set(errors) == {10, 50, 99}
    assert "name the contact" in errors[10]["event"]
    assert "@" in errors[50]["email"]
    assert "occurred_at" in errors[99]
    assert Event.objects.count() == 97
    assert Contact.objects.count() == 7  # visitor0…6, each created once


def test_an_offset_postgresql_refuses_is_stored_as_the_same_instant_in_utc(org, api):
    # ISO-8601 allows offsets up to ±23:59; PostgreSQL refuses 16 hours or more.
    body = post(api, [good_event(1, occurred_at="2026-11-28T10:00:00+23:59")]).json()

    assert body["stored"] == 1, body
    stored = Event.objects.get().occurred_at
    assert stored.isoformat() == "2026-11-27T10:01:00+00:00"


def test_resending_the_same_message_ids_stores_nothing_new(org, api):
    events = [good_event(i) for i in range(20)]
    first = post(api, events).json()
    again = post(api, events).json()

    assert first["stored"] == 20 and again["stored"] == 0 and again["duplicates"] == 20
    assert Event.objects.count() == 20
    assert [r["contact_id"] for r in again["results"]] == [r["contact_id"] for r in first["results"]]


def test_duplicate_message_ids_inside_one_batch(org, api):
    body = post(api, [good_event(1), good_event(1)]).json()
    assert [r["status"] for r in body["results"]] == ["stored", "duplicate"]


def test_events_attach_to_contacts_by_each_kind_of_identifier(org, api):
    known = ContactFactory(org=org, email="ana@example.com", external_id="u-1")
    body = post(
        api,
        [
            {"type": "a", "contact_id": known.pk},
            {"type": "b", "email": "ANA@example.com"},
            {"type": "c", "external_id": "u-1"},
            {"type": "d", "anonymous_id": "anon-9"},
            {"type": "e", "anonymous_id": "anon-9"},
            {"type": "f", "contact_id": 999999},
        ],
    ).json()

    ids = [r.get("contact_id") for r in body["results"]]
    assert ids[:3] == [known.pk] * 3
    assert ids[3] == ids[4] != known.pk
    assert AnonymousId.objects.get(value="anon-9").contact_id == ids[3]
    assert body["results"][5]["errors"] == {"contact_id": "No contact with id 999999."}


def test_another_orgs_contact_id_is_not_found(org, other_org, api):
    with scopes_disabled():
        theirs = ContactFactory(org=other_org)
    body = post(api, [{"type": "x", "contact_id": theirs.pk}]).json()
    assert body["results"][0]["status"] == "error"
    with scopes_disabled():
        assert not Event.objects.filter(contact=theirs).exists()


def test_new_property_keys_get_auto_definitions_and_wrong_types_are_item_errors(org, api):
    post(
        api,
        [
            {
                "type": "purchase",
                "email": "a@example.com",
                "properties": {"amount": 10.5, "currency": "EUR", "paid_at": "2026-11-01T10:00:00Z"},
            }
        ],
    )
    defs = {d.key: (d.type, d.source) for d in PropertyDefinition.objects.filter(subject="event")}
    assert defs == {"amount": ("number", "auto"), "currency": ("string", "auto"), "paid_at": ("datetime", "auto")}

    body = post(
        api,
        [
            {"type": "purchase", "email": "a@example.com", "properties": {"amount": "ten"}},
            {"type": "purchase", "email": "a@example.com", "properties": {"amount": 3}},
        ],
    ).json()
    assert body["results"][0]["errors"] == {"properties.amount": "expected number, got string"}
    assert body["results"][1]["status"] == "stored"


def test_limits_and_shape_errors(org, api):
    too_many = post(api, [good_event(i) for i in range(1001)])
    assert too_many.status_code == 400 and "At most 1000" in too_many.json()["events"][0]
    assert post(api, "nope").status_code == 400
    body = post(api, [["not", "an", "object"], {"type": "x", "email": "a@example.com", "colour": "red"}]).json()
    assert body["results"][0]["errors"] == {"event": "must be a JSON object"}
    assert "colour" in body["results"][1]["errors"]


def test_authentication(org, write_key):
    assert Client().post(EVENTS, {"events": []}, content_type="application/json").status_code == 401
    write = Client(headers={"Authorization": f"Bearer {write_key}"})
    assert post(write, [good_event(1)]).json()["stored"] == 1  # write keys may track


@pytest.mark.django_db(transaction=True)
def test_a_dispatch_batch_commits_with_the_events(org, api, monkeypatch):
    sent = []
    monkeypatch.setattr("marketing.tasks.dispatch_batch.delay", lambda **kw: sent.append(kw))
    post(api, [good_event(i) for i in range(5)])

    batch = DispatchBatch.objects.get()
    assert sorted(batch.event_ids) == sorted(Event.objects.values_list("pk", flat=True))
    assert sent == [{"batch_id": batch.pk}]  # one task for the batch, after commit


def test_an_oversized_request_is_413(org, api):
    response = api.post(
        EVENTS,
        {"events": [good_event(1, properties={"pad": "x" * (6 * 1024 * 1024)})]},
        content_type="application/json",
    )
    assert response.status_code == 413
    assert "smaller batches" in response.json()["detail"]


def test_system_events_are_stored_once_in_dispatch_batches_and_skip_the_orgs_type_checks(org, monkeypatch):
    from marketing.ingestion import SystemEvent, events_record

    monkeypatch.setattr("marketing.ingestion.MAX_BATCH", 2)
    PropertyDefinition.objects.create(org=org, subject="event", key="score", type="string")
    contacts = ContactFactory.create_batch(3, org=org)
    at = timezone.now()
    events = [
        SystemEvent(
            contact_id=c.pk,
            type="score_threshold_crossed",
            properties={"score": 310},
            occurred_at=at,
            message_id=f"crossing-{c.pk}",
        )
        for c in contacts
    ]
    events.append(events[0])  # the same message id twice in one call: one event

    assert events_record(org=org, events=events, source="scoring") == 3
    stored = Event.objects.filter(type="score_threshold_crossed")
    assert sorted(stored.values_list("contact_id", flat=True)) == sorted(c.pk for c in contacts)
    assert {e.properties["score"] for e in stored} == {310}  # a number, though the org typed "score" a string
    assert sorted(len(b.event_ids) for b in DispatchBatch.objects.all()) == [1, 2]
    assert sorted(i for b in DispatchBatch.objects.all() for i in b.event_ids) == sorted(e.pk for e in stored)

    assert events_record(org=org, events=events, source="scoring") == 0  # redelivered: nothing new
    assert stored.count() == 3 and DispatchBatch.objects.count() == 2
