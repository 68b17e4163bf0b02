"""Hostile payloads replayed against every public endpoint: none may answer with a server error.

The corpus holds what the security audit sent (JSON nested 10,000 deep, NaN and Infinity, lone
surrogates, NUL in values, keys and query strings, wrong types for Segment's fields, offsets of
16 hours, bodies that are not JSON or not UTF-8, broken gzip) and more of their kind. Each is
sent to the Segment-compatible API, the events API, the forms and pixel, the message tracking
links, the Twilio and ESP webhooks, the push endpoints and the signed workflow webhook, with
valid credentials where the endpoint checks them, so that the payload reaches the parsing and
the services behind it. The answer may be anything from 200 to 4xx; never a 5xx.
"""

import base64
import gzip
import json
import time
from urllib.parse import urlencode

import pytest
from django.test import Client
from twilio.request_validator import RequestValidator

from marketing.services import api_key_create
from tests.factories import ContactFactory
from workflows.outbound_http import signature
from workflows.services import workflow_create, workflow_publish

DEEP_ARRAY = b"[" * 10_000 + b"]" * 10_000
DEEP_OBJECT = b'{"a":' * 5_000 + b"1" + b"}" * 5_000

# Bodies that are broken as JSON, or JSON that nothing can store.
RAW_BODIES = [
    DEEP_ARRAY,
    DEEP_OBJECT,
    b'{"x": NaN}',
    b'{"x": Infinity, "y": -Infinity}',
    b'{"x": 1e999}',
    b'{"x": ' + b"9" * 5_000 + b"}",
    b'{"x": "\\ud800"}',
    b'{"\\udfff": 1}',
    b'{"x": "a\\u0000b"}',
    b'{"a\\u0000": 1}',
    b"[]",
    b'"a string"',
    b"1",
    b"null",
    b"true",
    b"{}",
    b"\xff\xfe\x00\x01",
    b"not json at all",
    b"",
    b'{"unterminated": "',
]

# Well-formed JSON with hostile shapes, written as Segment or event payloads.
SHAPES = [
    {"context": "a string"},
    {"context": ["a", "list"]},
    {"context": {"campaign": "x", "ip": 1, "consent": []}},
    {"userId": {"an": "object"}, "event": "x"},
    {"anonymousId": 12.5, "event": ["x"]},
    {"userId": "u", "event": "x", "timestamp": "9999-99-99"},
    {"userId": "u", "event": "x", "timestamp": "0001-01-01T00:00:00+16:00"},
    {"userId": "u", "event": "x", "timestamp": "2026-01-01T00:00:00+23:59"},
    {"userId": "u", "event": "x", "properties": {"k\u0000": 1, "deep": [[[[[[[[[[1]]]]]]]]]]}},
    {"userId": "u", "event": "x", "properties": {"n": float("nan")}},
    {"userId": "u", "event": "x", "messageId": "m" * 10_000},
    {"userId": "u", "traits": ["not", "an", "object"]},
    {"userId": "u", "traits": {"email": "\ud800@example.com", "firstName": 7}},
    {"userId": "u", "traits": {"email": "a" * 500 + "@example.com"}},
    {"previousId": {"x": 1}, "userId": []},
    {"batch": "not a list"},
    {"batch": [1, "x", None, [], {"type": "track"}, {"type": "nonsense"}]},
    {"events": "not a list"},
    {"events": [1, None, {"type": "\u0000"}, {"type": "x", "occurred_at": "+16:00"}, {"type": ["x"]}]},
    {"email": ["a@example.com"], "consent_email_marketing": {"x": 1}, "_aid": 5},
    {"id": {"x": 1}, "contact": "ana@example.com", "data": []},
    {"id": "evt", "contact": {"contact_id": 10**30}, "data": {"k": "v"}},
    {"endpoint": "http://127.0.0.1/", "keys": {"p256dh": "\u0000", "auth": []}},
]

QUERY_STRINGS = [
    "%00",
    "a=%00",
    "%00=a",
    "k=%ff%fe",
    "k=" + "x" * 10_000,
    "&".join(f"a{i}=1" for i in range(1_000)),
    "url=javascript:alert(1)&aid=%00",
    "u=http://127.0.0.1:22/&t=%00",
]


def _json_bodies():
    """(body bytes, content type, extra headers) for every corpus entry."""
    for raw in RAW_BODIES:
        yield raw, "application/json", {}
        yield raw, "text/plain", {}
    for shape in SHAPES:
        raw = json.dumps(shape).encode()
        yield raw, "application/json", {}
    yield b"\x1f\x8b not gzip", "application/json", {"HTTP_CONTENT_ENCODING": "gzip"}
    yield gzip.compress(DEEP_ARRAY), "application/json", {"HTTP_CONTENT_ENCODING": "gzip"}


def _form_bodies():
    for shape in SHAPES:
        yield {k: json.dumps(v) if not isinstance(v, str) else v for k, v in shape.items()}
    yield {"email": "a\u0000b@example.com", "first_name": "\ud800"}
    yield {"email": "x" * 100_000}
    yield {"email": ["a@example.com", "b@example.com"], "tags": [str(i) for i in range(500)]}


class Probe:
    """Sends requests and keeps every answer over 499, with what caused it."""

    def __init__(self):
        self.client = Client(raise_request_exception=False)
        self.errors: list[str] = []
        self.sent = 0

    def check(self, label: str, response) -> None:
        self.sent += 1
        if response.status_code >= 500:
            self.errors.append(f"{label}: {response.status_code}")

    def post(self, path: str, body: bytes, content_type: str, **headers) -> None:
        response = self.client.generic("POST", path, body, content_type=content_type, **headers)
        self.check(f"POST {path} {content_type} {body[:60]!r}", response)

    def post_form(self, path: str, data: dict, **headers) -> None:
        # Encoded by hand: a lone surrogate goes out as the bytes a hostile client would send.
        body = urlencode(data, doseq=True, encoding="utf-8", errors="surrogatepass")
        response = self.client.generic("POST", path, body, content_type="application/x-www-form-urlencoded", **headers)
        self.check(f"POST form {path} {str(data)[:60]}", response)

    def get(self, path: str, query: str = "", **headers) -> None:
        response = self.client.get(f"{path}?{query}" if query else path, **headers)
        self.check(f"GET {path}?{query[:60]}", response)


@pytest.fixture
def probe(eager_tasks, settings):
    # Hundreds of calls from one address: without this the rate limits would answer most of them
    # before their payload reaches the parsing this test is about.
    settings.RATELIMIT_ENABLE = False
    return Probe()


@pytest.fixture
def keys(org):
    ContactFactory(org=org, email="ana@example.com", external_id="u")
    write = api_key_create(org=org, name="site", scope="write")[1]
    return {"write": write, "basic": "Basic " + base64.b64encode(f"{write}:".encode()).decode()}


@pytest.mark.parametrize(
    "path", ["/v1/identify", "/v1/track", "/v1/page", "/v1/screen", "/v1/group", "/v1/alias", "/v1/batch", "/v1/import"]
)
def test_the_segment_compatible_api(probe, keys, path):
    for body, content_type, headers in _json_bodies():
        probe.post(path, body, content_type, HTTP_AUTHORIZATION=keys["basic"], **headers)
    for query in QUERY_STRINGS:
        probe.get(path, query, HTTP_AUTHORIZATION=keys["basic"])
    assert probe.errors == []


def test_the_events_api_with_a_write_key(probe, keys):
    for body, content_type, headers in _json_bodies():
        probe.post("/api/v1/events/", body, content_type, HTTP_AUTHORIZATION=f"Bearer {keys['write']}", **headers)
    for query in QUERY_STRINGS:
        probe.get("/api/v1/events/", query, HTTP_AUTHORIZATION=f"Bearer {keys['write']}")
    assert probe.errors == []


def test_the_public_forms_and_the_pixel(probe, keys):
    form = f"/t/forms/newsletter/?k={keys['write']}"
    for body, content_type, headers in _json_bodies():
        probe.post(form, body, content_type, **headers)
    for data in _form_bodies():
        probe.post_form(form, data)
    for query in QUERY_STRINGS:
        probe.post_form(f"/t/forms/newsletter/?{query}", {"email": "ana@example.com"})
        probe.get("/t/p.gif", f"k={keys['write']}&{query}")
        probe.get("/t/p.gif", query)
    assert probe.errors == []


@pytest.mark.parametrize("token", ["", "x", "\u0000", "%00", "a" * 5_000, "eyJhIjoxfQ:1abc:sig", "0:0:0"])
def test_the_message_tracking_links(probe, db, token):
    for path in (f"/m/o/{token}.gif", f"/m/c/{token}", f"/m/u/{token}"):
        for query in ["", *QUERY_STRINGS]:
            probe.get(path, query)
    probe.post_form(f"/m/u/{token}", {"List-Unsubscribe": "One-Click"})
    assert probe.errors == []


def test_the_twilio_webhooks_with_valid_signatures(probe, db, settings):
    settings.TWILIO_AUTH_TOKEN = "test-auth-token"
    validator = RequestValidator(settings.TWILIO_AUTH_TOKEN)
    forms = [
        {"MessageSid": "SM\u0000", "From": "+1555", "Body": "STOP"},
        {"MessageSid": "SM1", "From": "x" * 10_000, "Body": "\ud800"},
        {"MessageSid": "SM2", "From": "not a number", "Body": "START", "To": "\u0000"},
        {"MessageSid": "SM3", "From": "+15550001111", "Body": "hello" * 1_000},
        {"MessageSid": "SM4", "MessageStatus": "delivered\u0000", "ErrorCode": "x"},
        {},
    ]
    for path in ("/m/sms/inbound", "/m/sms/status/garbage", "/m/sms/status/\u0000"):
        for form in forms:
            url = f"{settings.SITE_URL}{path}"
            try:
                header = validator.compute_signature(url, form)
            except UnicodeEncodeError:  # Twilio never signs a lone surrogate: sent unsigned
                header = "unsigned"
            probe.post_form(path, form, HTTP_X_TWILIO_SIGNATURE=header)
        for body, content_type, headers in _json_bodies():
            probe.post(path, body, content_type, **headers)
    assert probe.errors == []


@pytest.mark.parametrize("esp", ["postmark", "sendgrid", "mailgun", "amazon_ses", "mailjet", "sparkpost", "brevo"])
def test_the_esp_tracking_webhooks(probe, db, settings, esp):
    settings.ANYMAIL = {"WEBHOOK_SECRET": "user:secret"}
    auth = "Basic " + base64.b64encode(b"user:secret").decode()
    path = f"/hooks/esp/{esp}/tracking/"
    for body, content_type, headers in _json_bodies():
        probe.post(path, body, content_type, HTTP_AUTHORIZATION=auth, **headers)
    for data in _form_bodies():
        probe.post_form(path, data, HTTP_AUTHORIZATION=auth)
    assert probe.errors == []


def test_the_push_endpoints(probe, keys, settings):
    settings.VAPID_PUBLIC_KEY = (
        "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM"
    )
    for path in ("/m/push/subscriptions", "/m/push/unsubscribe"):
        for body, content_type, headers in _json_bodies():
            probe.post(f"{path}?k={keys['write']}", body, content_type, **headers)
    for query in QUERY_STRINGS:
        probe.get("/m/push/key", query)
    assert probe.errors == []


def test_the_signed_workflow_webhook(probe, org):
    steps = [{"id": "log", "type": "action", "action": "log", "config": {"message": "hooked"}, "next": None}]
    workflow = workflow_create(
        org=org, name="hooked", slug="hooked", definition={"trigger": {"type": "webhook"}, "steps": steps}
    )
    workflow_publish(workflow=workflow)
    path = f"/hooks/workflows/{workflow.pk}/"
    for body, content_type, headers in _json_bodies():
        header = signature(workflow.webhook_secret, body, timestamp=int(time.time()))
        probe.post(path, body, content_type, HTTP_X_SIGNATURE=header, **headers)
        probe.post(path, body, content_type, HTTP_X_SIGNATURE="t=\u0000,v1=zz", **headers)
    assert probe.errors == []
