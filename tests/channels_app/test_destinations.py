"""Destination-based channels: Slack incoming webhooks, signed webhooks and social posts, sent
through the outbox to HTTP servers on loopback standing in for Slack, a receiver and Mastodon;
the ``notify_slack`` / ``post_social`` actions; the console page that never shows a secret."""

import json
import logging
import socket
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import Message as Headers
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from channels_app.models import Destination, Message
from channels_app.outbox import message_enqueue, message_send, messages_due
from marketing.models import Role
from tests.workflows.conftest import only_instance
from workflows.actions import actions
from workflows.outbound_http import signature_valid
from workflows.services import workflow_enrol

SLACK_PATH = "/services/T0001/B0002/Zx9SecretWebhookToken"
SECRET = "whsec_4f1c2a9b7e6d5c3a2b1f0e9d"
TOKEN = "mastodon-token-8c7b6a5f4e3d2c1b0a9f"


# --- loopback stand-ins -------------------------------------------------------------------------


@dataclass
class Hit:
    method: str
    path: str
    headers: Headers
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class StandIn:
    """A threaded HTTP server on 127.0.0.1 recording every request; ``replies`` are popped in
    order as (status, body), then it answers ``default``."""

    server: ThreadingHTTPServer
    hits: list[Hit] = field(default_factory=list)
    replies: list[tuple[int, str]] = field(default_factory=list)
    default: tuple[int, str] = (200, "ok")
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def stand_in():
    """Makes loopback HTTP servers (stopped after the test)."""
    servers = []

    def make(default=(200, "ok")) -> StandIn:
        recorder: StandIn

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with recorder.lock:
                    recorder.hits.append(Hit("POST", self.path, self.headers, body))
                    status, text = recorder.replies.pop(0) if recorder.replies else recorder.default
                payload = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if text[:1] in "{[" else "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        recorder = StandIn(server=server, default=default)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return recorder

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def loopback_allowed(settings):
    settings.OUTBOUND_HTTP_ALLOWED_HOSTS = ["127.0.0.1"]


def destination(org, slug, channel, url, secret="", **fields) -> Destination:
    return Destination.objects.create(
        org=org, slug=slug, name=slug.title(), channel=channel, url=url, secret=secret, **fields
    )


def enqueue(org, contact, template, to, key="k1") -> Message:
    return message_enqueue(org=org, contact=contact, template=template, idempotency_key=key, to=to)


def send(message: Message) -> Message:
    message_send(message_id=message.pk)
    message.refresh_from_db()
    return message


@pytest.fixture
def slack_template(template_factory):
    return template_factory(
        "new-mql",
        channel="slack",
        purpose="transactional",
        variants=[
            {
                "name": "A",
                "weight": 1,
                "text": "New MQL: {{ contact.email }}",
                "payload": [{"type": "section", "text": {"type": "mrkdwn", "text": "*{{ first_name }}* is an MQL"}}],
            }
        ],
    )


@pytest.fixture
def webhook_template(template_factory):
    return template_factory(
        "crm-sync",
        channel="webhook",
        purpose="transactional",
        variants=[{"name": "A", "weight": 1, "payload": {"event": "mql", "email": "{{ email }}"}}],
    )


@pytest.fixture
def social_template(template_factory):
    return template_factory(
        "welcome-post",
        channel="social",
        purpose="transactional",
        variants=[{"name": "A", "weight": 1, "text": "Welcome aboard, {{ first_name }}!"}],
    )


# --- Slack --------------------------------------------------------------------------------------


def test_slack_posts_the_rendered_text_and_blocks_to_the_incoming_webhook(
    org, contact, slack_template, stand_in, loopback_allowed
):
    slack = stand_in()
    destination(org, "sales", "slack", slack.url + SLACK_PATH)

    message = send(enqueue(org, contact, slack_template, "sales"))

    assert message.status == "sent", message.error
    assert (message.provider, message.provider_message_id) == ("slack", "k1")
    (hit,) = slack.hits
    assert hit.path == SLACK_PATH
    assert hit.json() == {
        "text": "New MQL: ana@example.com",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*Ana* is an MQL"}}],
    }
    assert hit.headers["Idempotency-Key"] == "k1"


def test_an_object_payload_is_the_whole_slack_message(org, contact, template_factory, stand_in, loopback_allowed):
    slack = stand_in()
    destination(org, "sales", "slack", slack.url + SLACK_PATH)
    attachments = [{"color": "#36a64f", "text": "{{ first_name }} booked a demo"}]
    template = template_factory(
        "demo-booked",
        channel="slack",
        purpose="transactional",
        variants=[{"name": "A", "weight": 1, "payload": {"attachments": attachments, "unfurl_links": False}}],
    )

    assert send(enqueue(org, contact, template, "sales")).status == "sent"
    assert slack.hits[0].json() == {
        "attachments": [{"color": "#36a64f", "text": "Ana booked a demo"}],
        "unfurl_links": False,
    }


def test_a_rotated_slack_url_applies_to_a_message_already_queued(
    org, contact, slack_template, stand_in, loopback_allowed
):
    old, new = stand_in(), stand_in()
    sales = destination(org, "sales", "slack", old.url + SLACK_PATH)
    message = enqueue(org, contact, slack_template, "sales")
    sales.url = new.url + "/services/T0001/B0002/rotated"
    sales.save()

    assert send(message).status == "sent"
    assert old.hits == [] and [h.path for h in new.hits] == ["/services/T0001/B0002/rotated"]


@pytest.mark.parametrize(
    ("reply", "status", "error"),
    [
        ((429, "rate_limited"), "queued", "will retry: HTTP 429: rate_limited"),
        ((500, "rollup_error"), "queued", "will retry: HTTP 500: rollup_error"),
        ((404, "no_service"), "failed", "HTTP 404: no_service"),
        ((400, "invalid_payload"), "failed", "HTTP 400: invalid_payload"),
        ((410, "channel_is_archived"), "failed", "HTTP 410: channel_is_archived"),
    ],
)
def test_slack_errors_retry_with_backoff_or_fail_with_slacks_reason(
    org, contact, slack_template, stand_in, loopback_allowed, reply, status, error
):
    slack = stand_in(default=reply)
    destination(org, "sales", "slack", slack.url + SLACK_PATH)
    before = timezone.now()

    message = send(enqueue(org, contact, slack_template, "sales"))

    assert (message.status, message.error) == (status, error)
    assert message.status_history[-1]["reason"] == error
    if status == "queued":
        assert message.next_attempt_at >= before + timedelta(seconds=4)  # 10 s × (0.5–1.5) backoff
    assert len(slack.hits) == 1


def test_a_missing_wrong_channel_or_inactive_destination_fails_readably(
    org, contact, slack_template, webhook_template, stand_in, loopback_allowed
):
    slack = stand_in()
    destination(org, "crm", "webhook", slack.url)
    destination(org, "paused", "slack", slack.url + SLACK_PATH, active=False)

    missing = send(enqueue(org, contact, slack_template, "nowhere", key="a"))
    wrong_channel = send(enqueue(org, contact, slack_template, "crm", key="b"))
    inactive = send(enqueue(org, contact, slack_template, "paused", key="c"))

    assert (missing.status, missing.error) == ("failed", "destination: there is no Slack destination “nowhere”.")
    assert wrong_channel.error == "destination: there is no Slack destination “crm”."
    assert (inactive.status, inactive.error) == ("failed", "destination: “paused” is inactive.")
    assert slack.hits == []


def test_the_ssrf_guard_refuses_a_destination_on_loopback_unless_allowed(org, contact, slack_template, stand_in):
    slack = stand_in()
    destination(org, "sales", "slack", slack.url + SLACK_PATH)

    message = send(enqueue(org, contact, slack_template, "sales"))

    assert message.status == "failed"
    assert message.error == "url: 127.0.0.1 resolves to 127.0.0.1, an address inside a private network."
    assert slack.hits == []


def test_a_message_about_a_contact_needs_no_consent(org, slack_template, stand_in, loopback_allowed):
    from tests.factories import ContactFactory

    slack = stand_in()
    destination(org, "sales", "slack", slack.url + SLACK_PATH)
    bo = ContactFactory(org=org, email="bo@example.com", first_name="Bo")  # no consent recorded at all

    assert send(enqueue(org, bo, slack_template, "sales")).status == "sent"
    assert slack.hits[0].json()["text"] == "New MQL: bo@example.com"


# --- webhooks -----------------------------------------------------------------------------------


def test_a_webhook_gets_signed_json_with_the_messages_idempotency_key(
    org, contact, webhook_template, stand_in, loopback_allowed
):
    receiver = stand_in()
    destination(org, "crm", "webhook", receiver.url + "/hooks/mql", secret=SECRET)

    message = send(enqueue(org, contact, webhook_template, "crm", key="wf:1:sync:0"))

    assert message.status == "sent", message.error
    (hit,) = receiver.hits
    assert hit.path == "/hooks/mql"
    assert hit.headers["Idempotency-Key"] == "wf:1:sync:0"
    assert hit.headers["Content-Type"] == "application/json"
    assert signature_valid(SECRET, hit.body, hit.headers["X-Signature"])
    assert not signature_valid("another secret", hit.body, hit.headers["X-Signature"])
    assert hit.json() == {
        "message": message.pk,
        "contact": {"id": contact.pk, "email": "ana@example.com", "first_name": "Ana", "last_name": contact.last_name},
        "payload": {"event": "mql", "email": "ana@example.com"},
    }


@pytest.mark.parametrize(
    ("reply", "status"),
    [((408, ""), "queued"), ((429, ""), "queued"), ((503, "down"), "queued"), ((400, "bad"), "failed"),
     ((401, "who?"), "failed"), ((410, "gone"), "failed"), ((204, ""), "sent")],
)  # fmt: skip
def test_webhook_replies_map_to_sent_retry_or_failed(
    org, contact, webhook_template, stand_in, loopback_allowed, reply, status
):
    receiver = stand_in(default=reply)
    destination(org, "crm", "webhook", receiver.url, secret=SECRET)

    message = send(enqueue(org, contact, webhook_template, "crm"))

    assert message.status == status
    if status != "sent":
        assert f"HTTP {reply[0]}" in message.error


def test_a_webhook_that_cannot_be_reached_is_retried(org, contact, webhook_template, loopback_allowed):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    destination(org, "crm", "webhook", f"http://127.0.0.1:{port}/hook", secret=SECRET)

    message = send(enqueue(org, contact, webhook_template, "crm"))

    assert message.status == "queued"
    assert message.error.startswith("will retry: ConnectError")


def test_every_attempt_of_a_webhook_carries_the_same_key(org, contact, webhook_template, stand_in, loopback_allowed):
    receiver = stand_in()
    receiver.replies = [(503, "busy")]
    destination(org, "crm", "webhook", receiver.url, secret=SECRET)
    message = send(enqueue(org, contact, webhook_template, "crm"))
    assert message.status == "queued"

    message_send(message_id=message.pk, now=message.next_attempt_at)
    message.refresh_from_db()
    # A sender that dies after the receiver accepted: the lease runs out, and the row goes again.
    Message.objects.filter(pk=message.pk).update(status="sending", lease_until=timezone.now() - timedelta(seconds=1))
    assert message.pk in messages_due()
    assert send(message).status == "sent"

    assert [h.headers["Idempotency-Key"] for h in receiver.hits] == ["k1", "k1", "k1"]


# --- social -------------------------------------------------------------------------------------


def test_the_console_network_logs_the_post(org, contact, social_template, caplog):
    destination(org, "company", "social", "https://mastodon.example", secret=TOKEN)

    with caplog.at_level(logging.INFO, logger="channels_app.providers.social"):
        message = send(enqueue(org, contact, social_template, "company"))

    assert (message.status, message.provider, message.provider_message_id) == ("sent", "social", "console:k1")
    (record,) = [r for r in caplog.records if r.name == "channels_app.providers.social"]
    assert "destination=company" in record.getMessage()
    assert "Welcome aboard, Ana!" in record.getMessage()
    assert TOKEN not in record.getMessage()


def test_mastodon_posts_a_status_with_the_token_and_its_idempotency_key(
    org, contact, social_template, stand_in, loopback_allowed, settings
):
    settings.SOCIAL_PROVIDER = "mastodon"
    server = stand_in(default=(200, json.dumps({"id": "109876543210", "content": "<p>Welcome aboard, Ana!</p>"})))
    destination(org, "company", "social", server.url + "/", secret=TOKEN)

    message = send(enqueue(org, contact, social_template, "company"))

    assert (message.status, message.provider_message_id) == ("sent", "109876543210")
    (hit,) = server.hits
    assert hit.path == "/api/v1/statuses"
    assert hit.headers["Authorization"] == f"Bearer {TOKEN}"
    assert hit.headers["Idempotency-Key"] == "k1"
    assert "X-Signature" not in hit.headers  # the token is not a signing secret
    assert hit.json() == {"status": "Welcome aboard, Ana!"}


def test_mastodon_refusals_fail_with_the_servers_reason(
    org, contact, social_template, stand_in, loopback_allowed, settings
):
    settings.SOCIAL_PROVIDER = "mastodon"
    server = stand_in(default=(422, '{"error":"Validation failed: Text character limit of 500 exceeded"}'))
    destination(org, "company", "social", server.url, secret=TOKEN)

    message = send(enqueue(org, contact, social_template, "company"))

    assert message.status == "failed"
    assert message.error == 'HTTP 422: {"error":"Validation failed: Text character limit of 500 exceeded"}'


def test_an_unknown_social_provider_fails_naming_the_setting(org, contact, social_template, settings):
    settings.SOCIAL_PROVIDER = "myspace"
    destination(org, "company", "social", "https://mastodon.example", secret=TOKEN)

    message = send(enqueue(org, contact, social_template, "company"))

    assert message.error == "SOCIAL_PROVIDER: “myspace” is not a social network (console, mastodon)."


# --- actions ------------------------------------------------------------------------------------


def test_notify_slack_in_a_workflow_run_reaches_slack(
    org, contact, slack_template, stand_in, loopback_allowed, publish, drain
):
    slack = stand_in()
    destination(org, "sales", "slack", slack.url + SLACK_PATH)
    workflow = publish(
        [
            {
                "id": "tell",
                "type": "action",
                "action": "notify_slack",
                "config": {"template": "new-mql", "destination": "sales"},
                "next": None,
            }
        ]
    )
    workflow_enrol(workflow=workflow, contact_ids=[contact.pk], trigger_type="manual", trigger_key="t1")
    drain()

    instance = only_instance(workflow)
    assert instance.status == "completed", instance.error
    message = Message.objects.get(instance=instance)
    assert (message.channel, message.to, message.step_id) == ("slack", "sales", "tell")
    assert send(message).status == "sent"
    assert [h.json()["text"] for h in slack.hits] == ["New MQL: ana@example.com"]


def test_the_destination_actions_check_their_destination(org, slack_template, social_template):
    destination(org, "sales", "slack", "https://hooks.slack.com/services/T/B/x")
    destination(org, "company", "social", "https://mastodon.example")
    notify_slack, post_social = actions()["notify_slack"], actions()["post_social"]

    assert notify_slack.check({"template": "new-mql", "destination": "sales"}, org=org) == []
    assert notify_slack.check({"template": "new-mql", "destination": "ops"}, org=org) == [
        "destination: there is no destination “ops”."
    ]
    assert notify_slack.check({"template": "new-mql", "destination": "company"}, org=org) == [
        "destination: “company” is a social destination, not a Slack one."
    ]
    assert post_social.check({"template": "new-mql", "destination": "company"}, org=org) == [
        "template: “new-mql” is for Slack, not social post."
    ]
    assert post_social.check({"template": "welcome-post", "destination": "company"}, org=org) == []
    assert notify_slack.config_schema["required"] == ["template", "destination"]


# --- the console --------------------------------------------------------------------------------


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_console_never_shows_a_secret_or_a_slack_url_in_full(org, member_factory):
    slack = destination(org, "sales", "slack", "https://hooks.slack.com" + SLACK_PATH)
    hook = destination(org, "crm", "webhook", "https://crm.example/hooks/mql", secret=SECRET)
    admin = client_for(member_factory(org, Role.ADMIN, username="ada"))
    analyst = client_for(member_factory(org, Role.ANALYST, username="ann"))

    pages = {
        "list": admin.get(reverse("admin:channels_app_destination_changelist")),
        "slack": admin.get(reverse("admin:channels_app_destination_change", args=[slack.pk])),
        "hook": admin.get(reverse("admin:channels_app_destination_change", args=[hook.pk])),
        "analyst list": analyst.get(reverse("admin:channels_app_destination_changelist")),
        "analyst slack": analyst.get(reverse("admin:channels_app_destination_change", args=[slack.pk])),
        "analyst hook": analyst.get(reverse("admin:channels_app_destination_change", args=[hook.pk])),
    }

    for name, page in pages.items():
        html = page.content.decode()
        assert page.status_code == 200, name
        assert SECRET not in html and "Zx9SecretWebhookToken" not in html, name
    assert "https://hooks.slack.com/…" in pages["list"].content.decode()
    assert f"…{SECRET[-4:]}" in pages["list"].content.decode()  # the last four, to tell secrets apart
    assert 'name="secret"' in pages["hook"].content.decode()  # editable, but empty
    assert 'name="secret"' not in pages["analyst hook"].content.decode()


def test_an_empty_secret_or_slack_url_field_keeps_the_stored_one(org, console):
    slack = destination(org, "sales", "slack", "https://hooks.slack.com" + SLACK_PATH, secret=SECRET)
    url = reverse("admin:channels_app_destination_change", args=[slack.pk])
    fields = {"slug": "sales", "name": "Sales room", "channel": "slack", "url": "", "secret": "", "active": "on"}

    assert console.post(url, fields).status_code == 302
    slack.refresh_from_db()
    assert (slack.name, slack.url, slack.secret) == ("Sales room", "https://hooks.slack.com" + SLACK_PATH, SECRET)

    rotated = "https://hooks.slack.com/services/T0001/B0002/rotated"
    assert console.post(url, {**fields, "url": rotated, "secret": "new"}).status_code == 302
    slack.refresh_from_db()
    assert (slack.url, slack.secret) == (rotated, "new")


def test_the_console_refuses_a_url_the_guard_would_refuse(org, console):
    page = console.post(
        reverse("admin:channels_app_destination_add"),
        {"slug": "crm", "name": "CRM", "channel": "webhook", "url": "https://user:pw@crm.example/x", "active": "on"},
    )
    assert "Put credentials in headers, not in the URL." in page.content.decode()
    assert not Destination.objects.exists()
