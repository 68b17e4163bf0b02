"""The inbound webhook trigger: a signed delivery enrols its contact once; bad signatures,
stale ones, unknown or inactive workflows, bad bodies and floods are refused."""

import json
import time
import uuid

import pytest
from django.test import Client
from django_ratelimit import core as ratelimit_core
from django_scopes import scopes_disabled

from marketing.models import Contact
from tests.factories import ContactFactory
from workflows.models import WorkflowInstance
from workflows.outbound_http import signature
from workflows.services import workflow_create, workflow_pause

NOT_JSON = "Expecting value: line 1 column 1 (char 0)"
NAME_THE_CONTACT = "Name the contact by email, external_id or contact_id."
STEPS = [{"id": "log", "type": "action", "action": "log", "config": {"message": "hooked"}, "next": None}]


@pytest.fixture(autouse=True)
def fresh_rate_limits(settings):
    """Each test counts from zero (its own key prefix; the Redis database is shared)."""
    settings.RATELIMIT_CACHE_PREFIX = f"rl-test-{uuid.uuid4().hex}:"


@pytest.fixture
def hooked(org, publish):
    return publish(STEPS, trigger={"type": "webhook"}, slug="crm-sync", settings={"reenrollment": "always"})


def url(workflow) -> str:
    return f"/hooks/workflows/{workflow.pk}/"


def send(workflow, payload, *, secret=None, timestamp=None, header=None, raw: bytes | None = None):
    body = raw if raw is not None else json.dumps(payload).encode()
    if header is None:
        header = signature(secret or workflow.webhook_secret, body, timestamp=timestamp)
    headers = {"X-Signature": header} if header else {}
    return Client().post(url(workflow), data=body, content_type="application/json", headers=headers)


def delivery(id="evt_1", **contact):
    return {"id": id, "contact": contact or {"email": "New.Person@Example.com"}, "data": {"plan": "pro", "seats": 3}}


def test_a_signed_delivery_creates_the_contact_and_enrols_it(org, hooked):
    response = send(hooked, delivery())

    assert response.status_code == 202, response.content
    assert response.json() == {"enrolled": 1}
    contact = Contact.objects.get(org=org, email="new.person@example.com")
    instance = WorkflowInstance.objects.get(workflow=hooked)
    assert instance.contact == contact
    assert instance.trigger_type == "webhook"
    assert instance.trigger_key == "webhook:evt_1"
    assert instance.trigger_data == {"plan": "pro", "seats": 3}
    assert instance.context["trigger"] == {"plan": "pro", "seats": 3}


def test_a_replayed_delivery_enrols_once(org, hooked):
    assert send(hooked, delivery()).json() == {"enrolled": 1}
    again = send(hooked, delivery())  # signed again, same delivery id
    other = send(hooked, delivery(id="evt_2"))

    assert again.status_code == 202 and again.json() == {"enrolled": 0}
    assert other.json() == {"enrolled": 1}
    assert WorkflowInstance.objects.filter(workflow=hooked).count() == 2
    assert Contact.objects.filter(org=org).count() == 1


def test_the_contact_may_be_named_by_external_id_or_id(org, hooked, other_org):
    known = ContactFactory(org=org, external_id="crm-7")
    with scopes_disabled():
        theirs = ContactFactory(org=other_org)

    assert send(hooked, delivery("a", external_id="crm-7")).json() == {"enrolled": 1}
    assert send(hooked, delivery("b", contact_id=known.pk)).json() == {"enrolled": 1}
    unknown = send(hooked, delivery("c", contact_id=theirs.pk))

    assert unknown.status_code == 400
    assert unknown.json() == {"contact": {"contact_id": [f"No contact with id {theirs.pk}."]}}
    assert set(WorkflowInstance.objects.filter(workflow=hooked).values_list("contact_id", flat=True)) == {known.pk}
    with scopes_disabled():
        assert WorkflowInstance.objects.filter(contact=theirs).count() == 0


@pytest.mark.parametrize(
    "tamper",
    ["missing", "wrong secret", "stale", "future", "changed body", "garbage"],
)
def test_a_bad_or_stale_signature_is_401(org, hooked, tamper):
    body = json.dumps(delivery()).encode()
    now = int(time.time())
    header = {
        "missing": "",
        "wrong secret": signature("not-the-secret", body),
        "stale": signature(hooked.webhook_secret, body, timestamp=now - 330),
        "future": signature(hooked.webhook_secret, body, timestamp=now + 330),
        "changed body": signature(hooked.webhook_secret, body.replace(b"pro", b"max")),
        "garbage": "v1=abc",
    }[tamper]

    response = send(hooked, None, raw=body, header=header)

    assert response.status_code == 401
    assert "X-Signature" in response.json()["detail"]
    assert not WorkflowInstance.objects.exists()
    assert not Contact.objects.exists()


def test_within_the_window_an_older_signature_is_accepted(org, hooked):
    response = send(hooked, delivery(), timestamp=int(time.time()) - 290)

    assert response.status_code == 202


def test_unknown_or_inactive_workflows_are_404(org, hooked, publish):
    draft = workflow_create(
        org=org, name="draft", slug="draft", definition={"trigger": {"type": "webhook"}, "steps": STEPS}
    )
    manual = publish(STEPS, slug="manual")
    paused = publish(STEPS, trigger={"type": "webhook"}, slug="paused")
    workflow_pause(workflow=paused)

    for workflow in (draft, manual, paused):
        assert send(workflow, delivery()).status_code == 404
    missing = Client().post("/hooks/workflows/999999/", data=b"{}", content_type="application/json")
    assert missing.status_code == 404
    assert not WorkflowInstance.objects.exists()


@pytest.mark.parametrize(
    ("payload", "errors"),
    [
        (b"not json", {"body": [f"Send a JSON object: this body is not valid JSON ({NOT_JSON})."]}),
        (b"[1, 2]", {"body": ["Send a JSON object."]}),
        ({"contact": {"email": "a@example.com"}}, {"id": ["This field is required."]}),
        ({"id": "x", "contact": {}}, {"contact": {"non_field_errors": [NAME_THE_CONTACT]}}),
        ({"id": "x", "contact": {"email": "not an email"}}, "contact.email"),
        ({"id": "x", "contact": {"email": "a@example.com"}, "data": [1]}, "data"),
        ({"id": "", "contact": {"email": "a@example.com"}}, "id"),
    ],
)  # fmt: skip
def test_a_bad_body_is_400_with_field_messages(org, hooked, payload, errors):
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()

    response = send(hooked, None, raw=raw)

    assert response.status_code == 400
    body = response.json()
    if isinstance(errors, dict):
        assert body == errors
    else:
        field, _, inner = errors.partition(".")
        assert body[field] if not inner else body[field][inner]
    assert not WorkflowInstance.objects.exists()


DEEP = b"[" * 10_000 + b"]" * 10_000


@pytest.mark.parametrize(
    ("raw", "field", "says"),
    [
        (DEEP, "body", "nested deeper than 64 levels"),
        (b'{"id": "x", "contact": {"email": "a@example.com"}, "data": {"a": ' + DEEP + b"}}", "body", "nested deeper"),
        (b'{"id": "x", "contact": {"email": "a@example.com"}, "data": {"seats": NaN}}', "data.seats", "finite"),
        (b'{"id": "x", "contact": {"email": "a@example.com"}, "data": {"n": Infinity}}', "data.n", "finite"),
        (b'{"id": "x", "contact": {"email": "a@example.com"}, "data": {"plan": "p\\u0000"}}', "data.plan", "NUL"),
        (b'{"id": "x\\u0000", "contact": {"email": "a@example.com"}}', "id", "NUL"),
        (b'{"id": "x", "contact": {"email": "a@example.com"}, "data": {"p": ["\\ud800"]}}', "data.p[0]", "surrogate"),
        (b'{"id": "x", "contact": {"email": "a@example.com"}, "data": {"\\u0000": 1}}', "data", "NUL"),
    ],
)  # fmt: skip
def test_a_body_that_cannot_be_stored_is_400_naming_where(org, hooked, raw, field, says):
    response = send(hooked, None, raw=raw)

    assert response.status_code == 400
    assert says in response.json()[field][0]
    assert not WorkflowInstance.objects.exists()


def test_only_post(org, hooked):
    assert Client().get(url(hooked)).status_code == 405


def test_a_large_body_is_413(org, hooked):
    big = delivery()
    big["data"] = {"blob": "x" * 300_000}

    assert send(hooked, big).status_code == 413


def test_calls_are_rate_limited_per_ip_and_workflow(org, hooked, publish, monkeypatch):
    monkeypatch.setattr("workflows.webhooks.WEBHOOK_RATE", "2/m")
    monkeypatch.setattr(ratelimit_core, "_get_window", lambda value, period: 1_800_000_000)
    other = publish(STEPS, trigger={"type": "webhook"}, slug="other")

    statuses = [send(hooked, delivery(id=f"r{i}")).status_code for i in range(3)]

    assert statuses == [202, 202, 429]
    assert send(other, delivery(id="o1")).status_code == 202
    assert WorkflowInstance.objects.filter(workflow=hooked).count() == 2
