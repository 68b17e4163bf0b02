"""``/api/v1/handoffs/``: the list and its filters, tenancy, manual handoffs, the rep's moves."""

import pytest
from django.test import Client

from marketing.models import Event, Role
from marketing.services import api_key_create
from marketing.tenancy import org_context
from scoring.handoffs import handoff_create
from scoring.models import Handoff
from tests.factories import ContactFactory

URL = "/api/v1/handoffs/"


@pytest.fixture
def reps(org, member_factory):
    return [member_factory(org, Role.SALES, username=f"rep{i}") for i in range(2)]


def hand(org, contact, reason="demo_request"):
    return handoff_create(org=org, contact=contact, reason=reason)


def test_list_by_contact_carries_assignee_status_and_reason(org, reps, api):
    ana, bo = ContactFactory(org=org), ContactFactory(org=org)
    handoff = hand(org, ana)
    hand(org, bo)
    body = api.get(URL, {"contact": ana.pk}).json()
    assert body["count"] == 1
    [row] = body["results"]
    assert row["id"] == handoff.pk and row["contact"] == ana.pk
    assert row["assignee"] == {"id": reps[0].pk, "username": "rep0"}
    assert (row["status"], row["reason"], row["sla_state"]) == ("open", "demo_request", "on_time")
    assert {"score", "sla_due_at", "created_at"} <= set(row)


def test_filters_by_status_and_assignee(org, reps, api):
    first, second = hand(org, ContactFactory(org=org)), hand(org, ContactFactory(org=org))
    api.post(f"{URL}{first.pk}/accept/")
    assert [r["id"] for r in api.get(URL, {"status": "accepted"}).json()["results"]] == [first.pk]
    assert [r["id"] for r in api.get(URL, {"assignee": reps[1].pk}).json()["results"]] == [second.pk]
    assert api.get(URL, {"status": "nonsense"}).status_code == 400


def test_filters_by_reason_and_sla_state_and_retrieve_one(org, reps, api):
    from datetime import timedelta

    from django.utils import timezone

    demo, manual = hand(org, ContactFactory(org=org)), hand(org, ContactFactory(org=org), reason="manual")
    Handoff.objects.filter(pk=manual.pk).update(sla_due_at=timezone.now() - timedelta(hours=1))

    assert [r["id"] for r in api.get(URL, {"reason": "manual"}).json()["results"]] == [manual.pk]
    assert [r["id"] for r in api.get(URL, {"sla_state": "overdue"}).json()["results"]] == [manual.pk]
    assert [r["id"] for r in api.get(URL, {"sla_state": "on_time"}).json()["results"]] == [demo.pk]
    assert api.get(URL, {"sla_state": "late"}).status_code == 400
    one = api.get(f"{URL}{manual.pk}/")
    assert one.status_code == 200
    assert (one.json()["id"], one.json()["reason"], one.json()["sla_state"]) == (manual.pk, "manual", "overdue")
    assert api.get(f"{URL}{10**9}/").status_code == 404


def test_another_orgs_handoffs_are_invisible(org, other_org, reps, member_factory, api):
    with org_context(other_org):
        member_factory(other_org, Role.SALES, username="theirs")
        contact = ContactFactory(org=other_org)
        theirs = hand(other_org, contact)
    assert api.get(URL, {"contact": contact.pk}).json()["results"] == []
    assert api.get(URL).json()["count"] == 0
    assert api.get(f"{URL}{theirs.pk}/").status_code == 404
    assert api.post(f"{URL}{theirs.pk}/accept/").status_code == 404
    assert api.post(URL, {"contact_id": contact.pk}, content_type="application/json").status_code == 400


def test_keys_are_required_and_write_keys_refused(org, reps):
    assert Client().get(URL).status_code in (401, 403)
    write = api_key_create(org=org, name="site", scope="write")[1]
    assert Client(headers={"Authorization": f"Bearer {write}"}).get(URL).status_code == 403


def test_create_by_hand_then_409_then_field_errors(org, reps, api):
    contact = ContactFactory(org=org)
    created = api.post(URL, {"contact_id": contact.pk, "detail": "called us"}, content_type="application/json")
    assert created.status_code == 201
    body = created.json()
    assert (body["reason"], body["detail"], body["assignee"]["id"]) == ("manual", "called us", reps[0].pk)
    again = api.post(URL, {"contact_id": contact.pk}, content_type="application/json")
    assert again.status_code == 409 and again.json()["handoff"] == body["id"]
    missing = api.post(URL, {}, content_type="application/json")
    assert missing.status_code == 400 and "contact_id" in missing.json()
    assert api.post(URL, {"contact_id": 10**9}, content_type="application/json").json() == {
        "contact_id": ["There is no such contact."]
    }


def test_accept_reject_convert_and_conflicts(org, reps, api):
    contact = ContactFactory(org=org)
    handoff = hand(org, contact)
    accepted = api.post(f"{URL}{handoff.pk}/accept/")
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    assert api.post(f"{URL}{handoff.pk}/accept/").status_code == 409
    no_reason = api.post(f"{URL}{handoff.pk}/reject/", {}, content_type="application/json")
    assert no_reason.status_code == 400 and "reason" in no_reason.json()
    rejected = api.post(f"{URL}{handoff.pk}/reject/", {"reason": "no budget"}, content_type="application/json")
    assert rejected.json()["status"] == "rejected" and rejected.json()["rejection_reason"] == "no budget"
    assert Event.objects.filter(contact=contact, type="handoff_rejected").exists()
    assert api.post(f"{URL}{handoff.pk}/convert/").status_code == 409
    second = hand(org, contact)
    converted = api.post(f"{URL}{second.pk}/convert/")
    assert converted.json()["status"] == "converted"
    assert Handoff.objects.get(pk=second.pk).status == Handoff.Status.CONVERTED


def test_list_is_paginated_without_n_plus_one(org, reps, api, django_assert_max_num_queries):
    for _ in range(12):
        hand(org, ContactFactory(org=org))
    with django_assert_max_num_queries(8):
        body = api.get(URL, {"page_size": 5}).json()
    assert body["count"] == 12 and len(body["results"]) == 5 and body["next"]


def test_the_schema_documents_the_endpoints(org):
    schema = Client().get("/api/schema/", {"format": "json"}).json()
    paths = schema["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/handoffs/"])
    assert "post" in paths["/api/v1/handoffs/{id}/reject/"]
    parameters = {p["name"] for p in paths["/api/v1/handoffs/"]["get"]["parameters"]}
    assert {"contact", "status", "assignee", "page"} <= parameters
