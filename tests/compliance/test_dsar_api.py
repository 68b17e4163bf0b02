"""The data-subject request API: a server key records a request (the person is mailed a link to
confirm it), lists and retrieves the org's requests with their due dates, filters them; bad
input is a 400 naming the field; another org's requests and write keys get nothing."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from compliance.data_subject_requests import request_receive
from compliance.models import DataSubjectRequest
from marketing.services import api_key_create
from marketing.tenancy import org_context
from tests.factories import ContactFactory

URL = "/api/v1/data-subject-requests/"


def post(client, body):
    return client.post(URL, body, content_type="application/json")


def test_a_request_is_recorded_with_its_due_date_and_a_confirmation_is_mailed(
    org, api, django_capture_on_commit_callbacks, eager_tasks
):
    contact = ContactFactory(org=org, email="pat@example.com")

    with django_capture_on_commit_callbacks(execute=True):
        created = post(api, {"kind": "erasure", "email": "Pat@Example.com", "law": "ccpa", "details": "Forget me"})

    assert created.status_code == 201
    body = created.json()
    assert (body["kind"], body["status"], body["law"], body["source"]) == ("erasure", "unverified", "ccpa", "api")
    assert (body["email"], body["contact"], body["details"], body["overdue"]) == (
        "pat@example.com",
        contact.pk,
        "Forget me",
        False,
    )
    request = DataSubjectRequest.objects.get()
    assert request.due_at - request.received_at == timedelta(days=45)
    assert datetime.fromisoformat(body["due_at"]) == request.due_at
    [email] = mail.outbox
    assert email.to == ["pat@example.com"] and "/privacy/requests/confirm/" in email.body


def test_the_law_defaults_to_the_installations(org, api, settings):
    settings.DSAR_DEFAULT_LAW = "gdpr"

    body = post(api, {"kind": "access", "email": "nobody@example.com"}).json()

    assert (body["law"], body["contact"]) == ("gdpr", None)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "pat@example.com"}, "kind"),
        ({"kind": "forget_me", "email": "pat@example.com"}, "kind"),
        ({"kind": "access"}, "email"),
        ({"kind": "access", "email": "not an address"}, "email"),
        ({"kind": "access", "email": "pat@example.com", "law": "lgpd"}, "law"),
        ({"kind": "access", "email": "pat@example.com", "details": 5 * "x" * 1001}, "details"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(org, api, body, field):
    response = post(api, body)

    assert response.status_code == 400 and list(response.json()) == [field]
    assert not DataSubjectRequest.objects.exists()


def test_list_soonest_due_first_with_filters_and_retrieve(org, api):
    now = timezone.now()
    late = request_receive(
        org=org, kind="access", email="late@example.com", source="console", now=now - timedelta(days=40)
    )
    soon = request_receive(org=org, kind="erasure", email="soon@example.com", source="api", law="ccpa", now=now)
    done = request_receive(org=org, kind="access", email="done@example.com", source="api", now=now - timedelta(days=50))
    DataSubjectRequest.objects.filter(pk=done.pk).update(status="completed")

    listed = api.get(URL).json()
    assert [r["id"] for r in listed["results"]] == [done.pk, late.pk, soon.pk]
    assert [r["overdue"] for r in listed["results"]] == [False, True, False]
    assert [r["id"] for r in api.get(URL, {"overdue": "true"}).json()["results"]] == [late.pk]
    assert [r["id"] for r in api.get(URL, {"overdue": "false"}).json()["results"]] == [done.pk, soon.pk]
    assert [r["id"] for r in api.get(URL, {"kind": "erasure"}).json()["results"]] == [soon.pk]
    assert [r["id"] for r in api.get(URL, {"law": "ccpa"}).json()["results"]] == [soon.pk]
    assert [r["id"] for r in api.get(URL, {"status": "completed"}).json()["results"]] == [done.pk]
    assert [r["id"] for r in api.get(URL, {"email": " Late@example.com"}).json()["results"]] == [late.pk]
    assert api.get(URL, {"status": "lost"}).status_code == 400
    one = api.get(f"{URL}{soon.pk}/").json()
    assert (one["id"], one["kind"], one["status"], one["source"]) == (soon.pk, "erasure", "unverified", "api")
    assert api.get(f"{URL}{10**9}/").status_code == 404


def test_another_orgs_requests_are_invisible_and_keys_are_required(org, other_org, api):
    with org_context(other_org):
        theirs = request_receive(org=other_org, kind="access", email="pat@example.com", source="api")

    assert api.get(URL).json()["count"] == 0
    assert api.get(f"{URL}{theirs.pk}/").status_code == 404
    assert Client().get(URL).status_code in (401, 403)
    write = api_key_create(org=org, name="site", scope="write")[1]
    assert (
        post(
            Client(headers={"Authorization": f"Bearer {write}"}), {"kind": "access", "email": "a@b.example"}
        ).status_code
        == 403
    )


def test_answering_is_not_an_api_verb(org, api):
    request = request_receive(
        org=org, kind="access", email="pat@example.com", source="api", now=datetime(2027, 1, 1, tzinfo=UTC)
    )

    assert api.delete(f"{URL}{request.pk}/").status_code == 405
    assert api.patch(f"{URL}{request.pk}/", {"status": "completed"}, content_type="application/json").status_code == 405
    assert DataSubjectRequest.objects.get().status == "unverified"
