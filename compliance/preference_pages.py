"""The preference centre: the public page behind the signed link in every marketing message.

``/preferences/<token>/`` (``compliance.preference_links``) shows one contact's purposes (on/off)
and topics (checkboxes) as they stand, and four things to do, each its own POST form (plain HTML,
CSRF-checked, no JavaScript needed): save the choices, unsubscribe from all, download my data,
delete my data. The last two open a data-subject request that the person confirms from an email
sent to the contact's address (``compliance.data_subject_requests``), so a forwarded message
cannot be used to take or erase someone's data.

A broken or altered link gets a 400 page and changes nothing; an expired one a 400 page that
says so; a link whose contact is gone a 404. A preview's link shows the page with a notice and
saves nothing. Saves are rate limited per link, like the message's unsubscribe link.
"""

import hashlib
import logging

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods
from django_ratelimit.core import is_ratelimited
from redis.exceptions import RedisError

from compliance.models import Purpose, RequestKind, RequestSource
from compliance.preference_centre import (
    preferences_save,
    preferences_unsubscribe_all,
    purpose_states,
    topic_states,
)
from compliance.preference_links import PreferenceLinkError, preference_link_read
from marketing.client_address import client_ip
from marketing.models import Contact, Organization
from marketing.tenancy import org_context

logger = logging.getLogger(__name__)

SAVE_RATE = "20/m"  # per link: a person saves a few times; a script posting in a loop does not get far
MAX_USER_AGENT = 500
PURPOSE_HELP = {
    Purpose.EMAIL_MARKETING: "Newsletters, offers and news by email.",
    Purpose.SMS: "Offers and news by text message.",
    Purpose.PUSH: "Notifications in your browser.",
    Purpose.TRACKING: "Recording which of our emails you open and which pages and links you visit.",
    Purpose.PROFILING: "Using that activity to score your interest and tailor what we send.",
    Purpose.SALE_SHARING: "Passing your details to partners and other companies.",
}
DATA_REQUESTS = {"export": RequestKind.ACCESS, "erase": RequestKind.ERASURE}


def _masked(email: str) -> str:
    """``a•••@example.com``: enough for the person to recognise the address, not to learn it."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}•••@{domain}" if domain else "your address"


def _proof(request: HttpRequest, message_id: int | None) -> dict:
    proof = {
        "ip": client_ip(request),
        "user_agent": request.headers.get("User-Agent", "")[:MAX_USER_AGENT],
        "page": "preference_centre",
    }
    if message_id:
        proof["message"] = message_id
    return proof


def _rate_limited(request: HttpRequest, token: str) -> bool:
    """Counts this POST against the link's budget; a cache outage lets it through (logged)."""
    digest = hashlib.sha256(token.encode()).hexdigest()
    try:
        return is_ratelimited(
            request, group="compliance.preferences", key=lambda group, request: digest, rate=SAVE_RATE, increment=True
        )
    except RedisError as exc:
        logger.warning("rate limit unavailable group=compliance.preferences error=%r", exc)
        return False


def _page(request: HttpRequest, context: dict, *, status: int = 200) -> HttpResponse:
    response = render(request, "compliance/preference_centre.html", context, status=status)
    response["Cache-Control"] = "no-store"
    # The link is the key: keep it out of other sites' logs. Not "no-referrer": with it, chromium
    # posts the page's own forms with "Origin: null", which the CSRF check refuses.
    response["Referrer-Policy"] = "same-origin"
    return response


def _data_request(*, org: Organization, contact: Contact, kind: str) -> tuple[str, str]:
    """Opens the person's access or erasure request; (status text, error text)."""
    from compliance.data_subject_requests import request_receive

    if not contact.email:
        return "", "We hold no email address for you to confirm the request from; write to us instead."
    try:
        request_receive(
            org=org, kind=kind, email=contact.email, source=RequestSource.PREFERENCE_CENTRE, contact=contact
        )
    except ValidationError as exc:
        return "", "; ".join(exc.messages)
    what = "a copy of your data" if kind == RequestKind.ACCESS else "the deletion of your data"
    return (
        f"We sent an email to {_masked(contact.email)}. Follow its link to confirm you asked for {what}; "
        "nothing happens until you do.",
        "",
    )


def _act(request: HttpRequest, *, link, org: Organization, contact: Contact) -> tuple[str, str, list]:
    """Does what the person pressed: (status text, error text, the changes written)."""
    action = request.POST.get("action", "")
    changes: list = []
    if action == "save":
        chosen_purposes = set(request.POST.getlist("purposes"))
        chosen_topics = set(request.POST.getlist("topics"))
        changes = preferences_save(
            org=org,
            contact=contact,
            purposes={purpose: purpose in chosen_purposes for purpose in Purpose.values},
            topics={s.topic.pk: str(s.topic.pk) in chosen_topics for s in topic_states(org=org, contact=contact)},
            proof=_proof(request, link.message_id),
        )
        status = "Your choices are saved." if changes else "Nothing changed: your choices were already these."
    elif action == "unsubscribe_all":
        changes = preferences_unsubscribe_all(org=org, contact=contact, proof=_proof(request, link.message_id))
        already = "" if changes else "already "
        status = f"You are {already}unsubscribed from all marketing messages from {org.name}."
    elif action in DATA_REQUESTS:
        return (*_data_request(org=org, contact=contact, kind=DATA_REQUESTS[action]), [])
    else:
        return "", "Choose one of the buttons on the page.", []
    if changes:
        logger.info(
            "preferences saved org=%s contact=%s action=%s changes=%d", org.slug, contact.pk, action, len(changes)
        )
    return status, "", changes


@require_http_methods(["GET", "POST"])
def preference_centre_page(request: HttpRequest, token: str) -> HttpResponse:
    """``/preferences/<token>/``: GET shows the centre; POST (``action`` = save, unsubscribe_all,
    export or erase) does what the person pressed and shows the centre again with what changed
    (``role="status"``)."""
    try:
        link = preference_link_read(token)
    except PreferenceLinkError as exc:
        return _page(request, {"error": exc.reason}, status=400)
    org = Organization.objects.filter(pk=link.org_id).first()
    if org is None:
        return _page(request, {"error": "gone"}, status=404)
    status, error, changes = "", "", []
    # The signed token names the org, so everything after runs as that org (its rows only).
    with org_context(org):
        contact = Contact.objects.filter(org=org, pk=link.contact_id).first()
        if contact is None and not link.preview:
            return _page(request, {"error": "gone"}, status=404)
        if request.method == "POST":
            if link.preview:
                status = "This is a preview: nothing was changed."
            elif _rate_limited(request, token):
                response = _page(request, {"error": "busy"}, status=429)
                response["Retry-After"] = "60"
                return response
            else:
                status, error, changes = _act(request, link=link, org=org, contact=contact)
        purposes = [
            {"state": state, "help": PURPOSE_HELP.get(state.purpose, "")}
            for state in purpose_states(org=org, contact=contact)
        ]
        topics = topic_states(org=org, contact=contact)
    labels = dict(Purpose.choices)
    return _page(
        request,
        {
            "org": org,
            "contact": contact,
            "preview": link.preview,
            "purposes": purposes,
            "topics": [{"state": state, "purpose": labels.get(state.topic.purpose, "")} for state in topics],
            "status": status,
            "error_message": error,
            "changes": changes,
        },
    )
