"""Web-push subscriptions from public pages: the endpoints ``static/channels_app/push.js`` calls.

- ``GET /m/push/key``: the VAPID public key the page subscribes with (``{"publicKey": …}``).
- ``POST /m/push/subscriptions?k=mk_…``: the browser's ``PushSubscription.toJSON()`` plus the
  visitor's ``anonymousId`` → the subscription row of that visitor's contact, created or updated
  (201 / 200). ``"consent": true`` (sent when the person just allowed notifications) also records
  a ``push`` consent grant with its proof.
- ``DELETE /m/push/subscriptions?k=mk_…`` (or ``POST /m/push/unsubscribe``, which needs no CORS
  preflight) with ``{"endpoint": …}`` → the row is deleted.

They follow the public tracker's rules (``marketing.web_tracking``, ``marketing.tracking_api``): the
org is the one of the write key (``?k=`` or ``writeKey`` in the body), safe to embed; the visitor
is the anonymous id track.js keeps in the ``mk_aid`` cookie, resolved (or created) by
``contact_identify`` in that org only, so a page can never name another org's contact. Only the
anonymous id is taken, not an email or user id: whoever subscribes receives the contact's
notifications, so a page must not be able to attach its browser to a person by naming them
(``mk.identify`` joins the visitor to the person, as it does for page views). A request whose
``Origin`` the org has not allowed is refused (403, ``marketing.cors``), and each client IP has a
budget per minute (django-ratelimit), as on the other public endpoints.

Bad input is a 400 naming each field: ``{"errors": {"endpoint": "…", "keys.p256dh": "…"}}``.
The endpoint must be https (push services only use https; plain http only for hosts in
``OUTBOUND_HTTP_ALLOWED_HOSTS``, i.e. a loopback test service) and not an address inside a
private network; the provider checks it again, resolved, before every send.
"""

import base64
import binascii
import ipaddress
import logging
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from django_ratelimit.core import is_ratelimited
from redis.exceptions import RedisError

from channels_app.models import PushSubscription
from channels_app.providers.push import vapid_public_key
from compliance.selectors import consent_states
from compliance.services import consent_record
from marketing.api_keys import api_key_from_token
from marketing.client_address import client_ip
from marketing.cors import cors_headers, cors_preflight, cors_refusal
from marketing.identity import contact_identify, merge_handler, ref_from
from marketing.models import Contact, Organization
from marketing.tenancy import org_context
from marketing.web_tracking import client_rate_key, json_object
from workflows.outbound_http import allowed_host, url_problem

logger = logging.getLogger(__name__)

# Per client IP. A browser subscribes once and re-sends its subscription once a visit at most.
SUBSCRIBE_RATE = "20/m"
KEY_RATE = "120/m"
RETRY_AFTER_SECONDS = 60
MAX_BODY = 8 * 1024
MAX_ENDPOINT = 1000  # PushSubscription.endpoint
MAX_ANONYMOUS_ID = 200
MAX_USER_AGENT = 300  # PushSubscription.user_agent
MAX_CONSENT_TEXT = 2000
# Browsers a contact keeps subscriptions from; beyond it the oldest go (one anonymous id
# replayed from a script must not make every send fan out to thousands of endpoints).
MAX_PER_CONTACT = 10
P256_POINT_BYTES = 65
AUTH_SECRET_BYTES = 16
METHODS = "GET, POST, DELETE, OPTIONS"


# --- input --------------------------------------------------------------------------------------


def _b64url_bytes(value: str) -> bytes:
    """Decodes URL-safe base64 with or without padding (standard base64 too: some polyfills)."""
    text = value.strip().replace("+", "-").replace("/", "_").rstrip("=")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _endpoint_problem(endpoint: Any) -> str | None:
    if not isinstance(endpoint, str) or not endpoint.strip():
        return "Required: the subscription's endpoint URL."
    if len(endpoint) > MAX_ENDPOINT:
        return f"At most {MAX_ENDPOINT} characters."
    problem = url_problem(endpoint)
    if problem:
        return problem
    parts = urlsplit(endpoint)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "The URL has an invalid port."
    allowed = allowed_host(parts.hostname, port)
    if parts.scheme != "https" and not allowed:
        return "Must be an https:// URL (push services only use https)."
    try:
        URLValidator(schemes=["http", "https"])(endpoint)
    except ValidationError:
        return "Not a valid URL."
    try:
        ip = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return None  # a name: resolved and checked before every send
    if not allowed and (not ip.is_global or ip.is_multicast):
        return f"{ip} is an address inside a private network, not a push service."
    return None


def _key_problem(value: Any, *, size: int, what: str) -> tuple[str | None, str]:
    """(problem, the value as unpadded URL-safe base64)."""
    if not isinstance(value, str) or not value.strip():
        return f"Required: the subscription's {what}.", ""
    try:
        raw = _b64url_bytes(value)
    except (binascii.Error, ValueError):
        return "Not URL-safe base64.", ""
    if len(raw) != size:
        return f"Must be {size} bytes ({what}); this is {len(raw)}.", ""
    return None, _b64url(raw)


def subscription_clean(data: dict[str, Any]) -> dict[str, str]:
    """The checked ``endpoint``, ``p256dh``, ``auth`` and ``anonymous_id`` of a subscribe call;
    raises ``ValidationError`` naming each bad field (``endpoint``, ``keys.p256dh``, ``keys.auth``,
    ``anonymousId``)."""
    errors: dict[str, str] = {}
    endpoint = data.get("endpoint")
    problem = _endpoint_problem(endpoint)
    if problem:
        errors["endpoint"] = problem
    keys = data.get("keys")
    if not isinstance(keys, dict):
        errors["keys"] = 'Required: {"p256dh": …, "auth": …} from PushSubscription.toJSON().'
        keys = None
    p256dh = auth = ""
    if keys is not None:
        problem, p256dh = _key_problem(keys.get("p256dh"), size=P256_POINT_BYTES, what="P-256 public key")
        if not problem:
            try:
                ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), _b64url_bytes(p256dh))
            except ValueError:
                problem = "Not a point on the P-256 curve."
        if problem:
            errors["keys.p256dh"] = problem
        problem, auth = _key_problem(keys.get("auth"), size=AUTH_SECRET_BYTES, what="auth secret")
        if problem:
            errors["keys.auth"] = problem
    anonymous_id = data.get("anonymousId")
    if not isinstance(anonymous_id, str) or not anonymous_id.strip():
        errors["anonymousId"] = "Required: the visitor's anonymous id (track.js's mk.anonymousId())."
    elif len(anonymous_id.strip()) > MAX_ANONYMOUS_ID:
        errors["anonymousId"] = f"At most {MAX_ANONYMOUS_ID} characters."
    if errors:
        raise ValidationError(errors)
    return {"endpoint": endpoint.strip(), "p256dh": p256dh, "auth": auth, "anonymous_id": anonymous_id.strip()}


# --- services -----------------------------------------------------------------------------------


def push_subscription_save(
    *,
    org: Organization,
    anonymous_id: str,
    endpoint: str,
    p256dh: str,
    auth: str,
    user_agent: str = "",
    consent_proof: dict | None = None,
) -> tuple[PushSubscription, bool]:
    """The subscription for ``endpoint``, created or updated for the contact of ``anonymous_id``
    (created when the id is new), and whether it was created. An endpoint is one browser's: sent
    again by another visitor it moves to that visitor's contact, with the keys it has now. A
    contact keeps its ``MAX_PER_CONTACT`` newest subscriptions. ``consent_proof`` records a
    ``push`` consent grant with it as proof, unless the contact's consent is granted already."""
    with transaction.atomic():
        contact = contact_identify(org=org, ref=ref_from(anonymous_id=anonymous_id), reason="push_subscribe")
        fields = {"contact": contact, "p256dh": p256dh, "auth": auth}
        if user_agent:  # a call without one keeps what the browser said before
            fields["user_agent"] = user_agent[:MAX_USER_AGENT]
        subscription, created = PushSubscription.objects.update_or_create(org=org, endpoint=endpoint, defaults=fields)
        older = (
            PushSubscription.objects.filter(org=org, contact=contact)
            .order_by("-created_at", "-pk")
            .values_list("pk", flat=True)[MAX_PER_CONTACT:]
        )
        PushSubscription.objects.filter(org=org, pk__in=list(older)).delete()
        if consent_proof is not None:
            granted = consent_states(org=org, contact_ids=[contact.pk], purpose="push").get(contact.pk)
            if not granted:
                consent_record(
                    org=org, contact=contact, purpose="push", granted=True, source="push_subscribe", proof=consent_proof
                )
    logger.info(
        "push subscription saved org=%s contact=%s subscription=%s created=%s",
        org.slug,
        contact.pk,
        subscription.pk,
        created,
    )
    return subscription, created


def push_subscription_delete(*, org: Organization, endpoint: str) -> int:
    """Deletes the org's subscription for ``endpoint`` (the browser unsubscribed); returns how
    many rows went (0 or 1). Knowing the endpoint is the proof: only the browser and we have it."""
    deleted, _ = PushSubscription.objects.filter(org=org, endpoint=endpoint).delete()
    return deleted


@merge_handler
def push_subscriptions_merge(org: Organization, kept: Contact, gone: Contact) -> int:
    """Two contacts merged (an anonymous visitor identified): the browsers stay subscribed."""
    return PushSubscription.objects.with_scopes_disabled().filter(org=org, contact=gone).update(contact=kept)


# --- views --------------------------------------------------------------------------------------


def _rate_limited(request: HttpRequest, *, group: str, rate: str) -> bool:
    """Counts this request against the client IP's budget; a cache outage lets it through
    (logged), as in ``marketing.web_tracking``."""
    try:
        return is_ratelimited(request, group=group, key=client_rate_key, rate=rate, increment=True)
    except RedisError as exc:
        logger.warning("rate limit unavailable group=%s error=%r", group, exc)
        return False


def _too_many(request: HttpRequest, rate: str) -> HttpResponse:
    response = JsonResponse({"detail": f"Too many requests from this address (limit {rate})."}, status=429)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return cors_headers(response, request)


def _body(request: HttpRequest) -> dict[str, Any]:
    """The JSON object sent (as application/json or, to skip the CORS preflight, text/plain)."""
    if len(request.body) > MAX_BODY:
        raise ValidationError({"body": f"At most {MAX_BODY // 1024} KB."})
    return json_object(request.body, expected="Send a JSON object: the PushSubscription and the anonymousId.")


def _errors(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = {field: " ".join(messages) for field, messages in exc.message_dict.items()}
    return cors_headers(JsonResponse({"errors": errors}, status=400), request)


def _preflight(request: HttpRequest) -> HttpResponse:
    response = cors_preflight(request)
    response["Access-Control-Allow-Methods"] = METHODS  # DELETE too
    return response


@require_http_methods(["GET", "OPTIONS"])
def vapid_key(request: HttpRequest) -> HttpResponse:
    """``GET /m/push/key``: the VAPID public key (the same for every org), 503 when unset."""
    if request.method == "OPTIONS":
        return _preflight(request)
    if _rate_limited(request, group="push.key", rate=KEY_RATE):
        return _too_many(request, KEY_RATE)
    key = vapid_public_key()
    if not key:
        response = JsonResponse({"detail": "Web push is not configured on this server (VAPID keys)."}, status=503)
    else:
        response = JsonResponse({"publicKey": key})
        response["Cache-Control"] = "public, max-age=3600"
    return cors_headers(response, request)


def _public_call(request: HttpRequest, handle) -> HttpResponse:
    """Body, key, origin and rate limit as on every public endpoint, then ``handle(org, data)``."""
    if request.method == "OPTIONS":
        return _preflight(request)
    try:
        data = _body(request)
    except ValidationError as exc:
        return _errors(request, exc)
    raw = request.GET.get("k") or data.get("writeKey")
    if not isinstance(raw, str) or not raw.strip():
        response = JsonResponse({"detail": "Send the organisation's write key as ?k=mk_… or writeKey."}, status=401)
        return cors_headers(response, request)
    key, problem = api_key_from_token(raw.strip())
    if key is None:
        return cors_headers(JsonResponse({"detail": problem}, status=401), request)
    with org_context(key.org):
        refusal = cors_refusal(request, key.org)
        if refusal is not None:
            return refusal
        if _rate_limited(request, group="push.subscriptions", rate=SUBSCRIBE_RATE):
            return _too_many(request, SUBSCRIBE_RATE)
        try:
            response = handle(key.org, data)
        except ValidationError as exc:
            return _errors(request, exc)
    return cors_headers(response, request)


def _subscribe(request: HttpRequest, org: Organization, data: dict[str, Any]) -> HttpResponse:
    cleaned = subscription_clean(data)
    user_agent = request.headers.get("User-Agent", "")
    proof = None
    if data.get("consent") is True:
        text = data.get("consentText")
        proof = {
            "text": text[:MAX_CONSENT_TEXT] if isinstance(text, str) else None,
            "ip": client_ip(request),
            "user_agent": user_agent[:MAX_USER_AGENT],
            "origin": request.headers.get("Origin", ""),
            "push_service": urlsplit(cleaned["endpoint"]).hostname,
        }
    _, created = push_subscription_save(org=org, user_agent=user_agent, consent_proof=proof, **cleaned)
    return JsonResponse({"ok": True, "created": created}, status=201 if created else 200)


def _unsubscribe(org: Organization, data: dict[str, Any]) -> HttpResponse:
    endpoint = data.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint.strip():
        raise ValidationError({"endpoint": "Required: the endpoint of the subscription to remove."})
    return JsonResponse({"ok": True, "deleted": push_subscription_delete(org=org, endpoint=endpoint.strip())})


@csrf_exempt  # public, authenticated by the org's write key (no session to forge); Origin checked per org
@require_http_methods(["POST", "DELETE", "OPTIONS"])
def subscriptions(request: HttpRequest) -> HttpResponse:
    """``POST`` subscribes (or updates) this browser; ``DELETE`` removes its subscription."""
    if request.method == "DELETE":
        return _public_call(request, _unsubscribe)
    return _public_call(request, lambda org, data: _subscribe(request, org, data))


@csrf_exempt
@require_http_methods(["POST", "OPTIONS"])
def unsubscribe(request: HttpRequest) -> HttpResponse:
    """``POST /m/push/unsubscribe``: as ``DELETE /m/push/subscriptions``, for sendBeacon."""
    return _public_call(request, _unsubscribe)
