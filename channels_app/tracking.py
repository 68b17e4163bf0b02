"""The public endpoints behind the links in a message: open pixel, click redirect, unsubscribe.

(Routes ``/m/o/<token>.gif``, ``/m/c/<token>`` and ``/m/u/<token>`` are in marketing.urls.)

Every link carries a token signed for its message (``channels_app.signed_links``), so nothing
here trusts a URL or an id from the request: a forged or altered click token gets a 400, never a
redirect. A preview's link (signed as a preview's, or for message 0) gets a page saying it comes
from a preview, and records, redirects and unsubscribes nothing. What happens is recorded as an
event through ``marketing.ingestion`` (source "email"), so scoring, segments and wait-for-event
steps see it like any other event:

- ``email_opened``: one per message (event message_id ``open:<pk>``).
- ``email_clicked``: one per message and link (``click:<pk>:<sha1(url)[:12]>``), with the url
  and its utm_* parameters.
- ``email_opened_machine`` / ``email_clicked_machine``: an open or click that looks like a
  machine's (a mail scanner, a link checker, a prefetch, Apple Mail Privacy Protection's bare
  ``Mozilla/5.0``), once per message (``open-machine:<pk>``) or per link
  (``click-machine:<pk>:<sha1(url)[:12]>``), with ``machine_reason``. A type of its own
  (``marketing.machine_events``) and a key of its own, so the person's open or click after it
  is still recorded as theirs, and nothing counts the machine's unless it names its type.
- ``unsubscribed``: one per message; the email_marketing consent is withdrawn at once
  (``compliance.services.consent_record``), which is what the sender checks before every send.
  That is the RFC 8058 one-click POST; a person who opens the link (GET) is sent to the
  preference centre (``compliance.preference_pages``) instead.

The first open and click move the message's status to opened/clicked (unless a later state such
as clicked, bounced or complained is already set) and append to its ``status_history``; a
machine's is appended to the history ("machine open: …", "machine click: …") and moves nothing.
Recording is rate limited per link (per signed token), not per client IP: mailbox providers
fetch images and post one-click unsubscribes for all their users from a few addresses, and a
per-IP limit would drop real opens and refuse real unsubscribes in a large campaign. A token
cannot be forged, so a per-token limit bounds what anyone can make one link write. A bad token
costs a signature check and nothing else. Over the limit the pixel and the redirect still answer
(a person must never get a broken image or link) but record nothing.
"""

import hashlib
import logging
from urllib.parse import parse_qs, urlsplit

from django.core import signing
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods
from django_ratelimit.core import is_ratelimited
from redis.exceptions import RedisError

from channels_app import signed_links
from channels_app.delivery_events import ADVANCES
from channels_app.models import Message, MessageStatus
from compliance.preference_links import preference_url
from compliance.selectors import consent_allowed_ids, consent_states
from compliance.services import consent_record
from marketing.client_address import client_ip
from marketing.database_roles import system_alias
from marketing.ingestion import events_ingest, events_validate
from marketing.machine_events import MACHINE_TYPES
from marketing.tenancy import org_context
from marketing.web_tracking import PIXEL_GIF, UTM_PARAMETERS

logger = logging.getLogger(__name__)

# Per signed token (one message's pixel, one link, one message's unsubscribe).
OPEN_RATE = "30/m"
CLICK_RATE = "30/m"
UNSUBSCRIBE_RATE = "10/m"
RETRY_AFTER_SECONDS = 60
MAX_USER_AGENT = 500
ONE_CLICK_BODY = "One-Click"  # RFC 8058: the POST body is "List-Unsubscribe=One-Click"

# Statuses an open or a click may replace (delivery_events' forward-only rule): an open never
# undoes a click, a bounce or a complaint.
OPENABLE = ADVANCES[MessageStatus.OPENED]
CLICKABLE = ADVANCES[MessageStatus.CLICKED]

# User agents of mail security scanners and link checkers, which fetch images and follow links
# no person looked at. Lower-case substrings.
SCANNER_AGENTS = (
    "barracuda",
    "mimecast",
    "proofpoint",
    "symantec",
    "messagelabs",
    "forcepoint",
    "trendmicro",
    "fireeye",
    "safelinks",
    "bot",
    "spider",
    "crawler",
    "python-requests",
    "curl/",
    "wget/",
    "go-http-client",
    "headlesschrome",
)
PREFETCH_HEADERS = ("Purpose", "Sec-Purpose", "X-Purpose", "X-Moz")


def machine_reason(request: HttpRequest) -> str | None:
    """Why this request looks like a machine's rather than a person's, or None."""
    for header in PREFETCH_HEADERS:
        if "prefetch" in request.headers.get(header, "").lower() or request.headers.get(header, "") == "preview":
            return f"{header}: prefetch"
    agent = request.headers.get("User-Agent", "").strip()
    if not agent:
        return "no user agent"
    return agent_machine_reason(agent)


def agent_machine_reason(agent: str) -> str | None:
    """Why this user agent looks like a machine's (a scanner, Apple's proxy), or None."""
    agent = agent.strip()
    if agent == "Mozilla/5.0":
        # Apple Mail Privacy Protection's proxy fetches every image with exactly this agent.
        return "apple mail privacy protection"
    lowered = agent.lower()
    for marker in SCANNER_AGENTS:
        if marker in lowered:
            return f"scanner ({marker})"
    return None


def _rate_limited(request: HttpRequest, *, group: str, rate: str, token: str) -> bool:
    """Counts this request against the token's budget in ``group``; True when over it. As in
    ``marketing.web_tracking``, a cache outage lets requests through (logged)."""
    digest = hashlib.sha256(token.encode()).hexdigest()
    try:
        return is_ratelimited(request, group=group, key=lambda group, request: digest, rate=rate, increment=True)
    except RedisError as exc:
        logger.warning("rate limit unavailable group=%s error=%r", group, exc)
        return False


def _message_of(kind: str, token: str) -> tuple[dict | None, Message | None]:
    """The token's payload (None when forged or altered) and its message (None when there is
    none: deleted, or 0 for a preview)."""
    try:
        payload = signed_links.read(kind, token)
    except signing.BadSignature:
        return None, None
    message_id = payload.get("m") if isinstance(payload, dict) else None
    if not isinstance(message_id, int) or message_id <= 0:
        return payload if isinstance(payload, dict) else None, None
    message = (
        Message.objects.with_scopes_disabled()
        .using(system_alias())
        .select_related("org", "contact", "template_version__template")
        .filter(pk=message_id)
        .first()
    )
    return payload, message


def _preview_payload(kind: str, token: str, payload: dict | None) -> dict | None:
    """The payload when ``token`` is a preview's link (signed as a preview's, or a live token for
    message 0 as previews were once signed), else None. A preview belongs to no message, so its
    links must not pass for a message's."""
    if payload is not None:
        return payload if payload.get("m") == 0 else None
    return signed_links.preview_read(kind, token)


def _preview_notice(request: HttpRequest, kind: str, payload: dict) -> HttpResponse:
    """The page a preview's link shows: what it would do in a sent email, having done nothing."""
    url = _redirect_target(payload) if kind == signed_links.CLICK else None
    response = render(request, "channels_app/preview_link.html", {"kind": kind, "url": url})
    response["Cache-Control"] = "no-store"
    return response


def _message_properties(message: Message) -> dict:
    properties = {"message_id": message.pk, "channel": message.channel}
    if message.template_version_id:
        properties["template"] = message.template_version.template.slug
        properties["template_version"] = message.template_version.number
    if message.variant:
        properties["variant"] = message.variant
    if message.workflow_id:
        properties["workflow"] = message.workflow_id
    return properties


def _event_record(message: Message, *, type: str, key: str, properties: dict) -> bool:
    """Stores one event for the message's contact; True when it is new (not a duplicate).
    Call inside ``org_context(message.org)``."""
    items, errors = events_validate(
        [{"type": type, "contact_id": message.contact_id, "properties": properties, "message_id": key}]
    )
    [result] = events_ingest(org=message.org, items=items, errors=errors, source="email")
    if result.status == "error":
        logger.warning("email event refused message=%s type=%s errors=%s", message.pk, type, result.errors)
        return False
    return result.status == "stored"


def _tracking_allowed(message: Message) -> bool:
    """Whether the org's tracking regime lets an open or a click of the message's contact be
    recorded (opt-out: unless withdrawn; opt-in: only after a grant). Call inside its org."""
    ids = consent_allowed_ids(org=message.org, contact_ids=[message.contact_id], purpose="tracking")
    return message.contact_id in ids


def _history_append(message: Message, entry: dict, *, status: str | None = None, replaces=()) -> None:
    """Appends ``entry`` to the message's history and, when its status is one of ``replaces``,
    moves it to ``status``. The row is locked, so concurrent appends do not lose each other."""
    with transaction.atomic():
        row = Message.objects.select_for_update().get(pk=message.pk)
        row.status_history = [*row.status_history, {"at": timezone.now().isoformat(), **entry}]
        fields = ["status_history"]
        if status and row.status in replaces:
            row.status = status
            fields.append("status")
        row.save(update_fields=fields)


def _request_proof(request: HttpRequest) -> dict:
    return {
        "ip": client_ip(request),
        "user_agent": request.headers.get("User-Agent", "")[:MAX_USER_AGENT],
    }


# --- open -----------------------------------------------------------------------------------------


def _gif() -> HttpResponse:
    response = HttpResponse(PIXEL_GIF, content_type="image/gif")
    response["Cache-Control"] = "no-store, private"
    return response


@require_GET
def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    """``GET /m/o/<token>.gif``: records the message's open; always answers the 1×1 GIF."""
    _, message = _message_of(signed_links.OPEN, token)
    if message is None or message.contact_id is None:
        return _gif()
    if _rate_limited(request, group="channels.open", rate=OPEN_RATE, token=token):
        return _gif()
    machine = machine_reason(request)
    properties = _message_properties(message)
    if machine:
        kind, key, properties["machine_reason"] = MACHINE_TYPES["email_opened"], f"open-machine:{message.pk}", machine
    else:
        kind, key = "email_opened", f"open:{message.pk}"
    with org_context(message.org):
        if _tracking_allowed(message) and _event_record(message, type=kind, key=key, properties=properties):
            if machine:
                _history_append(message, {"status": "opened", "reason": f"machine open: {machine}", "machine": True})
            else:
                _history_append(
                    message, {"status": "opened", "reason": "pixel"}, status=MessageStatus.OPENED, replaces=OPENABLE
                )
    return _gif()


# --- click ----------------------------------------------------------------------------------------


def _url_properties(url: str) -> dict:
    properties = {"url": url}
    query = parse_qs(urlsplit(url).query)
    for name in UTM_PARAMETERS:
        if query.get(name):
            properties[name] = query[name][0]
    return properties


def _redirect_target(payload: dict | None) -> str | None:
    """The signed URL when it is an absolute http(s) URL (the only kind ``email_finalize``
    tracks), else None."""
    url = payload.get("u") if payload else None
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. a broken IPv6 host in the author's link
        return None
    return url if parts.scheme in {"http", "https"} and parts.netloc else None


@require_GET
def click_redirect(request: HttpRequest, token: str) -> HttpResponse:
    """``GET /m/c/<token>``: records the click and redirects (302) to the link's URL exactly as
    written, query and UTM parameters included. A forged or altered token gets a 400."""
    payload, message = _message_of(signed_links.CLICK, token)
    if (preview := _preview_payload(signed_links.CLICK, token, payload)) is not None:
        return _preview_notice(request, signed_links.CLICK, preview)
    url = _redirect_target(payload)
    if url is None:
        return HttpResponseBadRequest("This link is broken or has been altered.", content_type="text/plain")
    recordable = message is not None and message.contact_id is not None
    if recordable and not _rate_limited(request, group="channels.click", rate=CLICK_RATE, token=token):
        machine = machine_reason(request)
        properties = {**_message_properties(message), **_url_properties(url)}
        link = f"{message.pk}:{hashlib.sha1(url.encode(), usedforsecurity=False).hexdigest()[:12]}"
        # The machine's click has a key of its own: a scanner following the link first must not
        # use up the key of the person's click that comes after it.
        if machine:
            kind, key, properties["machine_reason"] = MACHINE_TYPES["email_clicked"], f"click-machine:{link}", machine
        else:
            kind, key = "email_clicked", f"click:{link}"
        with org_context(message.org):
            if _tracking_allowed(message) and _event_record(message, type=kind, key=key, properties=properties):
                if machine:
                    entry = {"status": "clicked", "reason": f"machine click: {machine}", "url": url, "machine": True}
                    _history_append(message, entry)
                else:
                    _history_append(
                        message,
                        {"status": "clicked", "reason": "link", "url": url},
                        status=MessageStatus.CLICKED,
                        replaces=CLICKABLE,
                    )
    response = HttpResponseRedirect(url)
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"  # the token stays out of the target's logs
    return response


# --- unsubscribe ----------------------------------------------------------------------------------


def unsubscribe_record(*, message: Message, source: str, proof: dict) -> bool:
    """Withdraws the contact's email_marketing consent because of ``message`` (at once: the
    sender checks consent before every send), notes it in the message's history and records an
    ``unsubscribed`` event. True when it withdrew; False when already withdrawn (nothing new)."""
    contact = message.contact
    with org_context(message.org):
        states = consent_states(org=message.org, contact_ids=[contact.pk], purpose="email_marketing")
        if states.get(contact.pk) is False:
            return False
        with transaction.atomic():
            consent_record(
                org=message.org,
                contact=contact,
                purpose="email_marketing",
                granted=False,
                source=source,
                proof={"message": message.pk, **proof},
            )
            _history_append(message, {"status": "unsubscribed", "reason": source})
        _event_record(
            message,
            type="unsubscribed",
            key=f"unsubscribe:{message.pk}",
            properties={**_message_properties(message), "source": source},
        )
    return True


def _csrf_refusal(request: HttpRequest) -> HttpResponse | None:
    """Django's CSRF check, for the page's own form (the view itself is exempt for RFC 8058)."""
    return CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {})


@csrf_exempt  # RFC 8058 one-click POSTs come from mail providers without cookies; see below
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """``/m/u/<token>``: GET redirects to the contact's preference centre (at "Unsubscribe from
    all"); POST unsubscribes from email marketing.

    A POST whose body is ``List-Unsubscribe=One-Click`` (RFC 8058, sent by the mailbox provider
    when the person presses its "Unsubscribe" button) needs no CSRF token: the signed token is
    the proof, and the provider has no cookies to send. The page's own form is CSRF-checked.
    """
    payload, message = _message_of(signed_links.UNSUBSCRIBE, token)
    if (preview := _preview_payload(signed_links.UNSUBSCRIBE, token, payload)) is not None:
        return _preview_notice(request, signed_links.UNSUBSCRIBE, preview)
    if message is None or message.contact_id is None:
        return render(request, "channels_app/unsubscribe.html", {"invalid": True}, status=400)
    org = message.org
    if request.method == "GET":
        # The person who follows the link lands in the preference centre, at "Unsubscribe from
        # all", with a link signed now: this one works as long as the message exists.
        url = preference_url(org_id=org.pk, contact_id=message.contact_id, message_id=message.pk)
        response = HttpResponseRedirect(f"{url}#unsubscribe")
        response["Cache-Control"] = "no-store"
        response["Referrer-Policy"] = "no-referrer"
        return response
    one_click = request.POST.get("List-Unsubscribe") == ONE_CLICK_BODY
    if not one_click:
        refusal = _csrf_refusal(request)
        if refusal is not None:
            return refusal
    if _rate_limited(request, group="channels.unsubscribe", rate=UNSUBSCRIBE_RATE, token=token):
        response = HttpResponse("Too many requests; try again in a minute.", status=429, content_type="text/plain")
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    unsubscribe_record(
        message=message, source="one_click" if one_click else "unsubscribe_link", proof=_request_proof(request)
    )
    if one_click:
        return HttpResponse("Unsubscribed.", content_type="text/plain")
    return render(request, "channels_app/unsubscribe.html", {"org": org, "done": True})
