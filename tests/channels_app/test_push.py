"""Web push: the ``webpush`` provider against a loopback push service (the body decrypted with a
browser's keys, the VAPID signature verified), the outbox sending a push template, and the public
subscription endpoints (``channels_app.push_subscriptions``)."""

import base64
import json
import os
import re
import socket
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO

import http_ece
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from django_scopes import scopes_disabled
from py_vapid import Vapid

from channels_app.models import Message, PushSubscription, Suppression
from channels_app.outbox import message_enqueue, message_send
from channels_app.providers import provider_for
from channels_app.providers.push import TTL_S, topic_for
from channels_app.push_subscriptions import MAX_PER_CONTACT, SUBSCRIBE_RATE
from compliance.models import ConsentRecord
from compliance.services import consent_record
from marketing.identity import contact_identify, ref_from
from marketing.models import AnonymousId, ApiKey, Contact
from marketing.services import api_key_create
from marketing.tenancy import org_context
from tests.factories import ContactFactory

SITE = "https://www.acme.io"
PUSH_VARIANTS = [
    {
        "name": "A",
        "weight": 100,
        "title": "Hi {{ first_name }}",
        "body": "Your order shipped.",
        "url": "https://www.acme.io/orders/1",
    }
]


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- a loopback push service and a browser --------------------------------------------------------


class PushService(ThreadingHTTPServer):
    """Records every POST (path, headers, body); answers 201 with a Location, or ``replies[path]``."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), PushHandler)
        self.received: list[dict] = []
        self.replies: dict[str, int] = {}
        self.lock = threading.Lock()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class PushHandler(BaseHTTPRequestHandler):
    def do_POST(self):  # http.server's hook
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.received.append({"path": self.path, "headers": dict(self.headers.items()), "body": body})
            number = len(self.server.received)
        status = self.server.replies.get(self.path, 201)
        self.send_response(status)
        if status == 201:
            self.send_header("Location", f"{self.server.url('/messages/')}{number}")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def push_service(settings):
    """The loopback push service, exempt from the private-address guard as a test host."""
    server = PushService()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.OUTBOUND_HTTP_ALLOWED_HOSTS = ["127.0.0.1"]
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def vapid(settings):
    """A fresh VAPID key pair in the settings, as ``vapid_keys`` prints it."""
    out = StringIO()
    call_command("vapid_keys", "--subject", "mailto:ops@acme.io", stdout=out)
    values = dict(line.split("=", 1) for line in out.getvalue().split())
    settings.VAPID_PUBLIC_KEY = values["VAPID_PUBLIC_KEY"]
    settings.VAPID_PRIVATE_KEY = values["VAPID_PRIVATE_KEY"]
    settings.VAPID_SUBJECT = values["VAPID_SUBJECT"]
    return values


class Browser:
    """What a browser keeps for one subscription: an ECDH P-256 key pair and a 16-byte auth secret."""

    def __init__(self):
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.p256dh = b64url(point)

    def keys(self) -> dict:
        return {"p256dh": self.p256dh, "auth": b64url(self.auth)}

    def decrypt(self, body: bytes) -> dict:
        return json.loads(http_ece.decrypt(body, private_key=self.private_key, auth_secret=self.auth))


def subscribe(org, contact, endpoint: str, browser: Browser) -> PushSubscription:
    keys = browser.keys()
    return PushSubscription.objects.create(
        org=org, contact=contact, endpoint=endpoint, p256dh=keys["p256dh"], auth=keys["auth"]
    )


@pytest.fixture
def push_contact(org):
    """Bo, who allowed web push."""
    bo = ContactFactory(org=org, email="bo@example.com", first_name="Bo")
    consent_record(org=org, contact=bo, purpose="push", granted=True, source="push_subscribe")
    return bo


@pytest.fixture
def push_template(template_factory):
    return template_factory("shipped", channel="push", variants=PUSH_VARIANTS)


def send(org, contact, template, key="push-1") -> Message:
    message = message_enqueue(org=org, contact=contact, template=template, idempotency_key=key, enqueue_send=False)
    message_send(message_id=message.pk)
    message.refresh_from_db()
    return message


# --- the provider -------------------------------------------------------------------------------


def test_a_push_template_is_sent_encrypted_for_the_browser_and_signed_with_vapid(
    org, push_contact, push_template, push_service, vapid
):
    browser = Browser()
    subscribe(org, push_contact, push_service.url("/sub/1"), browser)

    message = send(org, push_contact, push_template)

    assert (message.status, message.to, message.provider) == ("sent", "push:1 subscription", "webpush")
    [request] = push_service.received
    assert message.provider_message_id == push_service.url("/messages/1")  # the service's Location
    headers = request["headers"]
    assert browser.decrypt(request["body"]) == {
        "title": "Hi Bo",
        "body": "Your order shipped.",
        "url": "https://www.acme.io/orders/1",
        "tag": topic_for("push-1"),
    }
    assert headers["Content-Encoding"] == "aes128gcm"
    assert headers["TTL"] == str(TTL_S)
    assert headers["Topic"] == topic_for("push-1")
    # RFC 8292: "vapid t=<JWT>,k=<our public key>", the JWT signed by our private key, for this service.
    authorization = headers["Authorization"]
    scheme, _, fields = authorization.partition(" ")
    parts = dict(field.split("=", 1) for field in fields.split(","))
    assert scheme == "vapid" and parts["k"] == vapid["VAPID_PUBLIC_KEY"]
    assert Vapid.verify(authorization)
    claims = json.loads(b64url_decode(parts["t"].split(".")[1]))
    assert claims["aud"] == push_service.url("") and claims["sub"] == "mailto:ops@acme.io"
    assert claims["exp"] > timezone.now().timestamp()
    with scopes_disabled():
        assert PushSubscription.objects.get().last_used_at is not None


def test_the_topic_is_a_short_url_safe_hash_of_the_key_so_a_resend_replaces_the_first_copy(
    org, push_contact, push_template, push_service, vapid
):
    subscribe(org, push_contact, push_service.url("/sub/1"), Browser())
    message = message_enqueue(
        org=org, contact=push_contact, template=push_template, idempotency_key="wf:42:step:7:" + "x" * 150
    )
    sender = provider_for("push")

    sender.send(message)
    sender.send(message)  # the sender died after the first and the lease ran out

    first, second = (r["headers"]["Topic"] for r in push_service.received)
    assert first == second and re.fullmatch(r"[A-Za-z0-9_-]{1,32}", first)
    assert topic_for("another key") != first


def test_gone_subscriptions_are_deleted_and_the_message_fails_when_none_is_left(
    org, push_contact, push_template, push_service, vapid
):
    subscribe(org, push_contact, push_service.url("/sub/410"), Browser())
    subscribe(org, push_contact, push_service.url("/sub/404"), Browser())
    push_service.replies.update({"/sub/410": 410, "/sub/404": 404})

    message = send(org, push_contact, push_template)

    assert message.status == "failed"
    assert "every push subscription of the contact is gone" in message.error
    assert len(push_service.received) == 2
    with scopes_disabled():
        assert not PushSubscription.objects.exists()
        assert not Suppression.objects.exists()  # "push:2 subscriptions" is no address to suppress


def test_one_delivery_is_a_success_and_the_gone_subscription_goes(
    org, push_contact, push_template, push_service, vapid
):
    browser = Browser()
    kept = subscribe(org, push_contact, push_service.url("/sub/ok"), browser)
    subscribe(org, push_contact, push_service.url("/sub/gone"), Browser())
    push_service.replies["/sub/gone"] = 410

    message = send(org, push_contact, push_template)

    assert message.status == "sent"
    with scopes_disabled():
        assert list(PushSubscription.objects.values_list("pk", flat=True)) == [kept.pk]
    delivered = next(r for r in push_service.received if r["path"] == "/sub/ok")
    assert browser.decrypt(delivered["body"])["title"] == "Hi Bo"


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_busy_or_failing_push_service_is_retried_later(org, push_contact, push_template, push_service, vapid, status):
    subscribe(org, push_contact, push_service.url("/sub/1"), Browser())
    push_service.replies["/sub/1"] = status

    message = send(org, push_contact, push_template)

    assert message.status == "queued" and message.next_attempt_at > timezone.now()
    assert f"answered {status}" in message.error
    with scopes_disabled():
        assert PushSubscription.objects.count() == 1


def test_a_push_service_that_refuses_the_connection_is_retried(org, push_contact, push_template, settings, vapid):
    settings.OUTBOUND_HTTP_ALLOWED_HOSTS = ["127.0.0.1"]
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    subscribe(org, push_contact, f"http://127.0.0.1:{port}/sub/1", Browser())

    message = send(org, push_contact, push_template)

    assert message.status == "queued" and "ConnectError" in message.error
    with scopes_disabled():
        assert PushSubscription.objects.count() == 1


def test_an_endpoint_inside_our_network_is_never_called_and_its_subscription_goes(
    org, push_contact, push_template, push_service, vapid, settings
):
    subscribe(org, push_contact, push_service.url("/sub/1"), Browser())
    settings.OUTBOUND_HTTP_ALLOWED_HOSTS = []  # 127.0.0.1 is loopback: a production server refuses it

    message = send(org, push_contact, push_template)

    assert message.status == "failed"
    assert push_service.received == []
    with scopes_disabled():
        assert not PushSubscription.objects.exists()


def test_without_vapid_keys_the_message_waits_for_them(org, push_contact, push_template, push_service, settings):
    settings.VAPID_PRIVATE_KEY = ""
    subscribe(org, push_contact, push_service.url("/sub/1"), Browser())

    message = send(org, push_contact, push_template)

    assert message.status == "queued" and "VAPID_PRIVATE_KEY is not set" in message.error
    assert push_service.received == []


def test_a_contact_without_subscriptions_is_blocked_with_the_reason(org, push_contact, push_template):
    message = send(org, push_contact, push_template)

    assert (message.status, message.to) == ("blocked", "")
    assert message.error == "the contact has no web push address"


def test_marketing_push_needs_push_consent(org, push_template, push_service, vapid):
    ana = ContactFactory(org=org, email="ana@example.com", first_name="Ana")
    consent_record(org=org, contact=ana, purpose="email_marketing", granted=True, source="form")
    subscribe(org, ana, push_service.url("/sub/1"), Browser())

    message = send(org, ana, push_template)

    assert message.status == "blocked" and message.error == "no consent: push was never granted"
    assert push_service.received == []


def test_the_address_counts_the_subscriptions(org, push_contact):
    sender = provider_for("push")
    assert sender.name == "webpush" and sender.address(push_contact) == ""
    subscribe(org, push_contact, "https://push.example/a", Browser())
    subscribe(org, push_contact, "https://push.example/b", Browser())
    assert sender.address(push_contact) == "push:2 subscriptions"


# --- the subscription endpoints -------------------------------------------------------------------


@pytest.fixture(autouse=True)
def fresh_rate_limits(settings):
    settings.RATELIMIT_CACHE_PREFIX = f"rl-test-{uuid.uuid4().hex}:"


@pytest.fixture
def site_key(org):
    """A write key of ``org``, whose site ``SITE`` is an allowed origin."""
    org.allowed_origins = [SITE]
    org.save(update_fields=["allowed_origins"])
    return api_key_create(org=org, name="website", scope=ApiKey.Scope.WRITE)[1]


def post(key, body, *, path="/m/push/subscriptions", method="post", origin=SITE, **meta):
    client = Client()
    call = getattr(client, method)
    headers = {"HTTP_ORIGIN": origin} if origin else {}
    return call(f"{path}?k={key}", json.dumps(body), content_type="text/plain", **headers, **meta)


def subscription_json(browser: Browser, endpoint="https://fcm.googleapis.com/fcm/send/abc", **extra) -> dict:
    return {"endpoint": endpoint, "expirationTime": None, "keys": browser.keys(), **extra}


def test_a_subscription_is_saved_for_the_visitors_contact_and_updated_when_sent_again(org, site_key):
    browser = Browser()
    visitor = contact_identify(org=org, ref=ref_from(anonymous_id="aid-1"))

    created = post(site_key, subscription_json(browser, anonymousId="aid-1"), HTTP_USER_AGENT="Firefox/130")
    renewed_keys = Browser()
    updated = post(site_key, subscription_json(renewed_keys, anonymousId="aid-1"))

    assert created.status_code == 201 and created.json() == {"ok": True, "created": True}
    assert created["Access-Control-Allow-Origin"] == SITE
    assert updated.status_code == 200 and updated.json()["created"] is False
    subscription = PushSubscription.objects.get()
    assert (subscription.contact_id, subscription.endpoint, subscription.user_agent) == (
        visitor.pk,
        "https://fcm.googleapis.com/fcm/send/abc",
        "Firefox/130",
    )
    assert (subscription.p256dh, subscription.auth) == (renewed_keys.p256dh, b64url(renewed_keys.auth))
    assert not ConsentRecord.objects.exists()  # no "consent": true, nothing recorded


def test_a_new_visitor_gets_an_anonymous_contact_and_consent_is_recorded_once(org, site_key):
    body = subscription_json(Browser(), anonymousId="aid-new", consent=True, consentText="Notify me of offers")

    assert post(site_key, body).status_code == 201
    assert post(site_key, body).status_code == 200

    contact = Contact.objects.get(pk=AnonymousId.objects.get(value="aid-new").contact_id)
    assert PushSubscription.objects.get().contact_id == contact.pk
    [record] = ConsentRecord.objects.filter(contact=contact)
    assert (record.purpose, record.granted, record.source) == ("push", True, "push_subscribe")
    assert record.proof["text"] == "Notify me of offers" and record.proof["origin"] == SITE


def test_bad_subscriptions_are_refused_naming_each_field(org, site_key):
    body = {
        "endpoint": "http://push.example/sub",
        "keys": {"p256dh": b64url(b"\x04" + b"\x01" * 64), "auth": b64url(b"short")},
    }
    response = post(site_key, body)

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"endpoint", "keys.p256dh", "keys.auth", "anonymousId"}
    assert "https" in errors["endpoint"]
    assert "P-256" in errors["keys.p256dh"]
    assert "16 bytes" in errors["keys.auth"]
    assert not PushSubscription.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"endpoint": "https://10.0.0.5/sub"}, "endpoint"),
        ({"endpoint": "https://user:pw@push.example/sub"}, "endpoint"),
        ({"endpoint": "ftp://push.example/sub"}, "endpoint"),
        ({"keys": "abc"}, "keys"),
        ({"keys": {"p256dh": "!!!", "auth": b64url(os.urandom(16))}}, "keys.p256dh"),
        ({"anonymousId": "x" * 201}, "anonymousId"),
    ],
)
def test_each_bad_field_is_named(org, site_key, body, field):
    response = post(site_key, {**subscription_json(Browser(), anonymousId="aid-1"), **body})

    assert response.status_code == 400 and field in response.json()["errors"]


def test_http_endpoints_are_taken_only_for_allowed_test_hosts(org, site_key, settings):
    body = subscription_json(Browser(), endpoint="http://127.0.0.1:9/sub", anonymousId="aid-1")
    assert post(site_key, body).status_code == 400

    settings.OUTBOUND_HTTP_ALLOWED_HOSTS = ["127.0.0.1"]
    assert post(site_key, body).status_code == 201


def test_a_subscription_never_reaches_another_orgs_contact(org, other_org, site_key):
    with org_context(other_org):
        theirs = contact_identify(org=other_org, ref=ref_from(anonymous_id="aid-shared"))
        other_org.allowed_origins = ["https://other.example"]
        other_org.save(update_fields=["allowed_origins"])

    assert post(site_key, subscription_json(Browser(), anonymousId="aid-shared")).status_code == 201
    refused = post(
        site_key,
        subscription_json(Browser(), endpoint="https://push.example/2", anonymousId="aid-shared"),
        origin="https://other.example",  # the other org's site using our key
    )

    assert refused.status_code == 403
    with scopes_disabled():
        [subscription] = PushSubscription.objects.all()
        assert subscription.org_id == org.pk and subscription.contact_id != theirs.pk
        assert Contact.objects.get(pk=subscription.contact_id).org_id == org.pk
        assert not PushSubscription.objects.filter(contact=theirs).exists()


def test_a_missing_or_wrong_key_is_refused(org, site_key):
    body = subscription_json(Browser(), anonymousId="aid-1")
    assert Client().post("/m/push/subscriptions", json.dumps(body), content_type="text/plain").status_code == 401
    assert post("mk_aaaaaaaa_nope", body).status_code == 401
    assert not PushSubscription.objects.exists()


@pytest.mark.parametrize(("method", "path"), [("delete", "/m/push/subscriptions"), ("post", "/m/push/unsubscribe")])
def test_unsubscribing_deletes_the_row(org, site_key, method, path):
    body = subscription_json(Browser(), anonymousId="aid-1")
    post(site_key, body)
    post(site_key, subscription_json(Browser(), endpoint="https://push.example/other", anonymousId="aid-1"))

    response = post(site_key, {"endpoint": body["endpoint"]}, path=path, method=method)
    again = post(site_key, {"endpoint": body["endpoint"]}, path=path, method=method)

    assert response.status_code == 200 and response.json() == {"ok": True, "deleted": 1}
    assert again.json()["deleted"] == 0
    assert list(PushSubscription.objects.values_list("endpoint", flat=True)) == ["https://push.example/other"]
    assert post(site_key, {}, path=path, method=method).json()["errors"]["endpoint"]


def test_the_preflight_allows_delete(org):
    response = Client().options("/m/push/subscriptions", HTTP_ORIGIN=SITE)
    assert response.status_code == 204 and "DELETE" in response["Access-Control-Allow-Methods"]


def test_subscribing_is_rate_limited_per_ip(org, site_key):
    limit = int(SUBSCRIBE_RATE.split("/")[0])
    body = subscription_json(Browser(), anonymousId="aid-1")
    statuses = [post(site_key, body, REMOTE_ADDR="203.0.113.9").status_code for _ in range(limit + 1)]

    assert statuses[:limit] == [201] + [200] * (limit - 1)
    assert statuses[-1] == 429
    assert post(site_key, body, REMOTE_ADDR="203.0.113.10").status_code == 200  # another client


def test_a_contact_keeps_its_newest_subscriptions(org, site_key):
    for n in range(MAX_PER_CONTACT + 2):
        post(site_key, subscription_json(Browser(), endpoint=f"https://push.example/{n}", anonymousId="aid-1"))

    endpoints = set(PushSubscription.objects.values_list("endpoint", flat=True))
    assert endpoints == {f"https://push.example/{n}" for n in range(2, MAX_PER_CONTACT + 2)}


def test_subscriptions_follow_the_visitor_when_they_identify(org, site_key):
    post(site_key, subscription_json(Browser(), anonymousId="aid-1"))
    known = ContactFactory(org=org, email="cy@example.com")

    contact_identify(org=org, ref=ref_from(email="cy@example.com", anonymous_id="aid-1"))

    assert PushSubscription.objects.get().contact_id == known.pk


def test_the_page_gets_the_vapid_public_key(db, vapid, settings):
    response = Client().get("/m/push/key", HTTP_ORIGIN=SITE)
    assert response.status_code == 200 and response.json() == {"publicKey": vapid["VAPID_PUBLIC_KEY"]}

    settings.VAPID_PUBLIC_KEY = ""  # derived from the private key
    assert Client().get("/m/push/key").json()["publicKey"] == vapid["VAPID_PUBLIC_KEY"]

    settings.VAPID_PRIVATE_KEY = ""
    assert Client().get("/m/push/key").status_code == 503


def test_vapid_keys_prints_a_working_pair(vapid):
    key = Vapid.from_string(private_key=vapid["VAPID_PRIVATE_KEY"])
    point = b64url_decode(vapid["VAPID_PUBLIC_KEY"])
    assert len(point) == 65 and point[0] == 4
    headers = key.sign({"sub": "mailto:ops@acme.io", "aud": "https://push.example"})
    assert Vapid.verify(headers["Authorization"])
    assert headers["Authorization"].endswith(f"k={vapid['VAPID_PUBLIC_KEY']}")
