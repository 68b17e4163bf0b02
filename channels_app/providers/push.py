"""Web push (RFC 8030) to the browsers a contact subscribed from, signed with VAPID (RFC 8292).

A push message's ``content`` (``title``, ``body``, ``url``) goes as JSON, encrypted for each of
the contact's ``PushSubscription`` rows (RFC 8291, aes128gcm, by pywebpush's ``WebPusher``),
to the push service behind the subscription's endpoint. The service worker
(``static/channels_app/push-sw.js``) shows it.

The endpoints are URLs a browser gave us through a public page, so they are untrusted: each is
resolved and checked by ``workflows.outbound_http.resolve_public`` (no loopback, private or
link-local address unless ``OUTBOUND_HTTP_ALLOWED_HOSTS`` lists the host) and the request goes to
that checked address, with no redirects.

The dedup token is the ``Topic`` header, a hash of the message's idempotency key: a push service
keeps one undelivered message per topic, so a resend after a sender died replaces the first copy
instead of queueing a second (docs/workflows.md). The notification's ``tag`` is the same hash, so a
copy the browser got twice still shows once.

Replies: 201 (or any 2xx) delivered to the service; 404/410 the subscription is gone (its row is
deleted); 401/403 (our VAPID setup), 429, 5xx and connection errors may pass; another 4xx (400,
413) will not. One delivery is a success (a retry would repeat it on the browsers that got it);
no delivery but a failure that may pass is a ``TransientError``; else a ``PermanentError``
(every subscription gone, or refused).
"""

import base64
import functools
import hashlib
import json
import logging
import socket
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.db.models import Count
from django.utils import timezone
from py_vapid import Vapid, VapidException
from pywebpush import WebPusher, WebPushException

from channels_app.models import PushSubscription
from channels_app.providers import PermanentError, Provider, TransientError, provider
from workflows.outbound_http import BlockedURLError, request

logger = logging.getLogger(__name__)

# Seconds a push service keeps a message for a browser that is offline: a marketing notification
# a day late is still worth showing, a week late it is noise.
TTL_S = 24 * 60 * 60
# The largest plaintext one aes128gcm record of 4096 bytes holds (RFC 8291 §4: 4096 minus the
# 86-byte header, the 16-byte tag and the padding delimiter).
MAX_PAYLOAD = 3993
# Push services answer in milliseconds; a contact's subscriptions (at most 10, see
# push_subscriptions.MAX_PER_CONTACT) at 5 s each stay inside the outbox's 60 s lease.
TIMEOUT = httpx.Timeout(5.0, connect=3.0)
# A VAPID token is valid for at most 24 hours (RFC 8292 §2); 12 leaves room for clock skew.
VAPID_EXPIRY_S = 12 * 60 * 60
TOPIC_LENGTH = 32  # RFC 8030 §5.4: at most 32 characters of the URL-safe base64 alphabet
GONE = {404, 410}
# 401/403: the VAPID key or subject is wrong for this service, which an operator can fix.
MAY_PASS = {401, 403, 408, 425, 429}


def topic_for(idempotency_key: str) -> str:
    """The ``Topic`` for a message: 32 URL-safe base64 characters of the key's SHA-256."""
    digest = hashlib.sha256(idempotency_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:TOPIC_LENGTH]


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def vapid_key() -> Vapid:
    """The VAPID signing key from ``VAPID_PRIVATE_KEY``; raises ``VapidException`` when it is
    missing or malformed, or when ``VAPID_PUBLIC_KEY`` (what browsers subscribed with) is not
    its public half. Parsed once per pair of settings, not once per send."""
    return _vapid_key(getattr(settings, "VAPID_PRIVATE_KEY", ""), getattr(settings, "VAPID_PUBLIC_KEY", ""))


@functools.lru_cache(maxsize=4)
def _vapid_key(private: str, configured: str) -> Vapid:
    if not private:
        raise VapidException("VAPID_PRIVATE_KEY is not set (run `manage.py vapid_keys`).")
    try:
        key = Vapid.from_string(private_key=private)
    except Exception as exc:  # py_vapid raises whatever the decoder raised
        raise VapidException(f"VAPID_PRIVATE_KEY is not a P-256 private key: {exc}") from exc
    if configured and configured.rstrip("=") != public_key_of(key):
        raise VapidException("VAPID_PUBLIC_KEY is not the public half of VAPID_PRIVATE_KEY.")
    return key


def public_key_of(key: Vapid) -> str:
    """The public key as browsers take it (``applicationServerKey``): the uncompressed point,
    URL-safe base64 without padding."""
    point = key.public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return _b64url(point)


def vapid_public_key() -> str:
    """``VAPID_PUBLIC_KEY``, else the public half of ``VAPID_PRIVATE_KEY``, else ""."""
    configured = getattr(settings, "VAPID_PUBLIC_KEY", "")
    if configured:
        return configured.rstrip("=")
    try:
        return public_key_of(vapid_key())
    except VapidException:
        return ""


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _post(endpoint: str, *, body: bytes, headers: dict[str, str]) -> httpx.Response:
    """POSTs to a push endpoint at the address the SSRF guard checked and pinned."""
    return request("POST", endpoint, body=None, content=body, headers=headers, idempotency_key="", timeout=TIMEOUT)


def _marker(count: int) -> str:
    return f"push:{count} subscription{'' if count == 1 else 's'}" if count else ""


@provider
class WebPush(Provider):
    """Sends a push template's ``title``, ``body`` and ``url`` to every browser the contact
    subscribed from, through their push services; a gone subscription (404/410) is deleted."""

    name = "webpush"
    channel = "push"
    default_rate_per_s = 100

    def address(self, contact) -> str:
        return self.addresses([contact])[0]

    def addresses(self, contacts: list) -> list[str]:
        """``push:N subscriptions`` per contact ("" without any): one query for the batch. Call in
        the contacts' org context."""
        counts = dict(
            PushSubscription.objects.filter(contact_id__in=[contact.pk for contact in contacts])
            .values_list("contact_id")
            .annotate(count=Count("pk"))
            .values_list("contact_id", "count")
        )
        return [_marker(counts.get(contact.pk, 0)) for contact in contacts]

    def payload(self, message) -> bytes:
        """The JSON the service worker reads: title, body, url, and the tag that folds copies."""
        content = message.content or {}
        data = {
            "title": str(content.get("title") or ""),
            "body": str(content.get("body") or ""),
            "url": str(content.get("url") or ""),
            "tag": topic_for(message.idempotency_key),
        }
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()

    def send(self, message, session=None) -> str:
        """Pushes ``message`` to each of its contact's subscriptions, in the message's org context
        (the outbox's send runs there): gone ones are deleted, delivered ones marked used."""
        subscriptions = list(
            PushSubscription.objects.filter(org_id=message.org_id, contact_id=message.contact_id).order_by("pk")
        )
        if not subscriptions:
            raise PermanentError("the contact has no push subscriptions left (unsubscribed or expired)")
        try:
            key = vapid_key()
            subject = getattr(settings, "VAPID_SUBJECT", "")
            if not subject:
                raise VapidException("VAPID_SUBJECT is not set (a mailto: or https: URL of the sender).")
        except VapidException as exc:  # our configuration, not this message: it can be fixed
            raise TransientError(str(exc)) from exc
        payload = self.payload(message)
        if len(payload) > MAX_PAYLOAD:
            raise PermanentError(
                f"the notification is {len(payload)} bytes as JSON; push services take at most {MAX_PAYLOAD}"
            )
        topic = topic_for(message.idempotency_key)
        delivered: list[tuple[PushSubscription, str]] = []
        gone: list[int] = []
        failures: list[str] = []  # may pass: 401/403 (our VAPID setup), 408, 429, 5xx, network
        refusals: list[str] = []  # will not pass: 400, 413, another 4xx
        claims_by_origin: dict[str, dict[str, str]] = {}
        for subscription in subscriptions:
            origin = _origin(subscription.endpoint)
            if origin not in claims_by_origin:
                claims = {"sub": subject, "aud": origin, "exp": int(timezone.now().timestamp()) + VAPID_EXPIRY_S}
                try:
                    claims_by_origin[origin] = key.sign(claims)
                except VapidException as exc:  # e.g. VAPID_SUBJECT not mailto:/https:
                    raise TransientError(f"VAPID: {exc}") from exc
            outcome = self._push_one(subscription, payload, claims_by_origin[origin], topic)
            if outcome[0] == "delivered":
                delivered.append((subscription, outcome[1]))
            elif outcome[0] == "gone":
                gone.append(subscription.pk)
            else:
                (refusals if outcome[0] == "refused" else failures).append(outcome[1])
        if gone:
            PushSubscription.objects.filter(pk__in=gone).delete()
            logger.info("push subscriptions gone message=%s deleted=%d", message.pk, len(gone))
        if delivered:
            PushSubscription.objects.filter(pk__in=[s.pk for s, _ in delivered]).update(last_used_at=timezone.now())
            if failures or refusals:
                logger.warning("push partly failed message=%s errors=%s", message.pk, "; ".join(failures + refusals))
            return delivered[0][1]
        if failures:
            raise TransientError("; ".join(failures + refusals))
        if refusals:
            raise PermanentError("; ".join(refusals))
        raise PermanentError(f"every push subscription of the contact is gone ({len(gone)} expired or revoked)")

    def _push_one(self, subscription: PushSubscription, payload: bytes, vapid_headers: dict, topic: str):
        """("delivered", id) | ("gone", reason) | ("failed", reason) | ("refused", reason)."""
        label = f"subscription #{subscription.pk}"
        try:
            pusher = WebPusher(
                {"endpoint": subscription.endpoint, "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth}}
            )
            body = pusher.encode(payload, "aes128gcm")["body"]
        except (WebPushException, ValueError, TypeError) as exc:  # keys a browser never made
            return "gone", f"{label}: unusable keys ({exc})"
        headers = {
            **vapid_headers,
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(TTL_S),
            "Topic": topic,
            "Urgency": "normal",
        }
        try:
            response = _post(subscription.endpoint, body=body, headers=headers)
        except BlockedURLError as exc:
            if isinstance(exc.__cause__, socket.gaierror):  # DNS may answer later
                return "failed", f"{label}: {exc}"
            return "gone", f"{label}: {exc}"  # an endpoint inside our network is never sent to
        except httpx.HTTPError as exc:
            return "failed", f"{label}: {type(exc).__name__}: {exc}"
        status = response.status_code
        if 200 <= status < 300:
            return "delivered", response.headers.get("Location") or f"topic:{topic}"
        if status in GONE:
            return "gone", f"{label}: {status}"
        reply = f"{label}: push service answered {status} {response.text[:200].strip()}".rstrip()
        if status in MAY_PASS or status >= 500:
            return "failed", reply
        return "refused", reply
