"""Shipped actions, the outbound HTTP guard and the delivery protocol (in process)."""

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from tests.factories import ContactListFactory
from tests.workflows.conftest import only_instance
from workflows import outbound_http
from workflows.deliveries import deliveries_due, delivery_send
from workflows.models import Delivery, WorkflowInstance
from workflows.services import workflow_enrol

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def enrol(workflow, contact, key="k"):
    return workflow_enrol(workflow=workflow, contact_ids=[contact.pk], trigger_type="manual", trigger_key=key, now=T0)


class Receiver(BaseHTTPRequestHandler):
    calls: list = []
    status = 200

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"] or 0))
        type(self).calls.append({"headers": dict(self.headers), "body": body})
        payload = json.dumps({"plan": "pro"}).encode()
        self.send_response(type(self).status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver(settings):
    Receiver.calls, Receiver.status = [], 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.OUTBOUND_HTTP_ALLOWED_HOSTS = ["127.0.0.1"]
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_field_tag_and_list_actions_change_the_contact(org, contact, publish, drain):
    ContactListFactory(org=org, slug="newsletter")
    workflow = publish(
        [
            {
                "id": "f",
                "type": "action",
                "action": "update_field",
                "config": {"field": "lifecycle_stage", "value": "mql"},
                "next": "p",
            },
            {
                "id": "p",
                "type": "action",
                "action": "update_field",
                "config": {"field": "properties.plan", "value": "pro"},
                "next": "t",
            },
            {"id": "t", "type": "action", "action": "add_tag", "config": {"tags": ["vip", "beta"]}, "next": "u"},
            {"id": "u", "type": "action", "action": "remove_tag", "config": {"tags": ["beta"]}, "next": "l"},
            {"id": "l", "type": "action", "action": "add_to_list", "config": {"list": "newsletter"}, "next": None},
        ]
    )
    enrol(workflow, contact)
    drain(T0)
    contact.refresh_from_db()
    assert only_instance(workflow).status == "completed"
    assert (contact.lifecycle_stage, contact.properties["plan"]) == ("mql", "pro")
    assert list(contact.tags.values_list("name", flat=True)) == ["vip"]
    assert list(contact.lists.values_list("slug", flat=True)) == ["newsletter"]


def test_enrol_in_workflow_enrols_once_per_visit(org, contact, publish, drain):
    target = publish(
        [{"id": "x", "type": "delay", "config": {"duration": "P1D"}, "next": None}],
        slug="target",
        settings={"reenrollment": "always"},
    )
    publish(
        [{"id": "go", "type": "action", "action": "enrol_in_workflow", "config": {"workflow": "target"}, "next": None}],
        slug="source",
    )
    from workflows.models import Workflow

    enrol(Workflow.objects.get(slug="source"), contact)
    drain(T0)
    instance = WorkflowInstance.objects.get(workflow=target)
    assert instance.trigger_key.startswith("step:") and instance.trigger_type == "workflow"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/",
        "http://localhost/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://[::1]/",
    ],
)
def test_outbound_requests_to_private_addresses_are_refused(url):
    with pytest.raises(outbound_http.BlockedURLError):
        outbound_http.resolve_public(url)


def test_signatures_verify_and_expire():
    body = b'{"a":1}'
    header = outbound_http.signature("s3cret", body, timestamp=1_800_000_000)
    assert outbound_http.signature_valid("s3cret", body, header, now=1_800_000_100)
    assert not outbound_http.signature_valid("s3cret", body + b" ", header, now=1_800_000_100)
    assert not outbound_http.signature_valid("other", body, header, now=1_800_000_100)
    assert not outbound_http.signature_valid("s3cret", body, header, now=1_800_000_400)  # outside the window
    assert not outbound_http.signature_valid("s3cret", body, "garbage", now=1_800_000_100)


def test_a_webhook_is_recorded_then_sent_once_with_its_key_and_its_result_feeds_later_steps(
    org, contact, publish, drain, receiver
):
    workflow = publish(
        [
            {
                "id": "hook",
                "type": "action",
                "action": "http_request",
                "config": {"url": f"{receiver}/hook", "body": {"x": 1}, "sign": True},
                "next": "check",
            },
            {
                "id": "check",
                "type": "condition",
                "condition": {"==": [{"var": "workflow.steps.hook.result.body.plan"}, "pro"]},
                "true_next": "yes",
                "false_next": None,
            },
            {"id": "yes", "type": "action", "action": "add_tag", "config": {"tags": ["pro"]}, "next": None},
        ]
    )
    enrol(workflow, contact)
    drain(T0)
    delivery = Delivery.objects.get()
    assert (delivery.status, Receiver.calls) == ("queued", [])  # recorded in the step's transaction, not sent
    assert delivery_send(delivery_id=delivery.pk) == "sent"
    assert delivery_send(delivery_id=delivery.pk) is None  # a redelivered task does nothing
    drain()
    assert only_instance(workflow).status == "completed"
    assert list(contact.tags.values_list("name", flat=True)) == ["pro"]
    (call,) = Receiver.calls
    assert call["headers"]["Idempotency-Key"] == delivery.idempotency_key == f"{only_instance(workflow).pk}:hook:1"
    assert outbound_http.signature_valid(workflow.webhook_secret, call["body"], call["headers"]["X-Signature"])


def test_a_sender_that_died_mid_call_is_replaced_and_sends_with_the_same_key(org, contact, publish, drain, receiver):
    workflow = publish(
        [{"id": "hook", "type": "action", "action": "webhook", "config": {"url": receiver}, "next": None}]
    )
    enrol(workflow, contact)
    drain(T0)
    delivery = Delivery.objects.get()
    # The sender claimed it and died before recording the outcome: the lease runs out.
    Delivery.objects.filter(pk=delivery.pk).update(status="sending", lease_until=timezone.now() - timedelta(seconds=1))
    assert deliveries_due() == [delivery.pk]
    assert delivery_send(delivery_id=delivery.pk) == "sent"
    assert [c["headers"]["Idempotency-Key"] for c in Receiver.calls] == [delivery.idempotency_key]
    body = json.loads(Receiver.calls[0]["body"])
    assert (body["workflow"], body["contact"]["email"]) == (workflow.slug, contact.email)


def test_a_client_error_fails_the_step_to_its_error_edge(org, contact, publish, drain, receiver):
    Receiver.status = 422
    workflow = publish(
        [
            {
                "id": "hook",
                "type": "action",
                "action": "webhook",
                "config": {"url": receiver},
                "next": None,
                "on_error": "alert",
            },
            {"id": "alert", "type": "action", "action": "log", "config": {"message": "hook failed"}, "next": None},
        ]
    )
    enrol(workflow, contact)
    drain(T0)
    assert delivery_send(delivery_id=Delivery.objects.get().pk) == "failed"
    drain()
    instance = only_instance(workflow)
    assert instance.status == "completed"
    assert "HTTP 422" in instance.context["steps"]["hook"]["result"]["error"]


def test_a_server_error_is_retried_with_backoff(org, contact, publish, drain, receiver):
    Receiver.status = 503
    workflow = publish(
        [{"id": "hook", "type": "action", "action": "webhook", "config": {"url": receiver}, "next": None}]
    )
    enrol(workflow, contact)
    drain(T0)
    delivery = Delivery.objects.get()
    assert delivery_send(delivery_id=delivery.pk) == "queued"
    delivery.refresh_from_db()
    assert delivery.attempts == 1 and delivery.next_attempt_at > timezone.now()
    assert delivery_send(delivery_id=delivery.pk) is None  # not due yet
