"""Twilio's requests to us: delivery reports of the SMS we sent, and texts people send back.

Routes (in ``channels_app.urls``): ``POST /m/sms/status/<token>`` is the ``StatusCallback`` each
message carries (``channels_app.providers.sms``); ``POST /m/sms/inbound`` is the messaging
webhook to set on the Twilio number (or Messaging Service) for incoming messages.

Every request must carry a valid ``X-Twilio-Signature`` (HMAC of the URL and the form with
``TWILIO_AUTH_TOKEN``, checked by ``twilio.request_validator.RequestValidator``) or it gets a 403
and changes nothing. The URL checked is the one Twilio was given, ``SITE_URL`` + the path, not
the host this request reached through a proxy. The views are CSRF-exempt: Twilio has no cookie
and the signature is the proof.

Incoming texts, by their trimmed, case-insensitive text (a trailing "." or "!" ignored):

- STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT: in every org that has contacts with that number,
  an ``sms_stop`` suppression of the number (carriers apply STOP to every message from the
  sender, transactional too, and our sending numbers serve every org) and an ``sms`` consent
  withdrawal for those contacts (source ``sms_reply``).
- START, UNSTOP, YES: the ``sms_stop`` suppression is lifted and ``sms`` consent recorded as
  granted, in the same orgs.
- HELP, INFO: a TwiML reply naming the org that last texted the number, with "Reply STOP to
  unsubscribe."
- Anything else: an ``sms_received`` event (source ``sms``, properties ``body``, ``from``,
  ``to``) for the contact the number's latest SMS went to (else every contact with that number),
  so wait-for-event steps and segments can use replies. Twilio's ``MessageSid`` is the event's
  message id, so a webhook Twilio sends twice is stored once.

Twilio's signature carries no time, so a captured request stays valid: every text's
``MessageSid`` is claimed (``InboundSmsReceipt``) in the transaction that acts on it, and a sid
seen before — a replay, or Twilio retrying — answers empty TwiML and changes nothing (a STOP
replayed after START does not unsubscribe again). A text without ``MessageSid`` is a 400.
"""

import logging
from collections import defaultdict

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.request_validator import SIGNATURE_HEADER, RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from channels_app.delivery_events import message_delivery_event
from channels_app.models import Channel, InboundSmsReceipt, Message, MessageStatus, Suppression
from channels_app.providers.sms import CALLBACK_HARD_BOUNCE_CODES, UNSUBSCRIBED, status_token_read, stop_suppress
from compliance.selectors import consent_states
from compliance.services import consent_record
from marketing.database_roles import system_alias
from marketing.field_encryption import phone_index
from marketing.ingestion import events_ingest, events_validate
from marketing.json_input import json_problem
from marketing.models import Contact, Organization
from marketing.phone_numbers import normalise_phone
from marketing.tenancy import org_context

logger = logging.getLogger(__name__)

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_WORDS = frozenset({"START", "UNSTOP", "YES"})
HELP_WORDS = frozenset({"HELP", "INFO"})
CONSENT_SOURCE = "sms_reply"
MAX_BODY = 1600  # Twilio's limit for one message's text
LATEST_SCAN = 20  # a reply answers one of the newest texts to its number's contacts


# --- request checks --------------------------------------------------------------------------------


def twilio_signed(request: HttpRequest) -> bool:
    """Whether Twilio signed this request (with ``TWILIO_AUTH_TOKEN``, for ``SITE_URL`` + path)."""
    auth_token = str(getattr(settings, "TWILIO_AUTH_TOKEN", "") or "")
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not auth_token or not signature:
        return False
    url = f"{settings.SITE_URL}{request.get_full_path()}"
    return RequestValidator(auth_token).validate(url, request.POST, signature)


def _unstorable(request: HttpRequest) -> HttpResponse | None:
    """A 400 naming the first form field that holds what cannot be stored (a NUL, a lone
    surrogate), else None. A signature proves who sent the form, not what it holds."""
    problem = json_problem({key: request.POST.getlist(key) for key in request.POST})
    if problem is None:
        return None
    return HttpResponseBadRequest(f"{problem}.", content_type="text/plain")


def _forbidden(request: HttpRequest) -> HttpResponse:
    logger.warning("twilio webhook refused path=%s reason=bad signature", request.path)
    return HttpResponseForbidden("Invalid Twilio signature.", content_type="text/plain")


def _twiml(text: str = "") -> HttpResponse:
    response = MessagingResponse()
    if text:
        response.message(text)
    return HttpResponse(str(response), content_type="application/xml")


# --- status callback -------------------------------------------------------------------------------


@csrf_exempt
@require_POST
def status_callback(request: HttpRequest, token: str) -> HttpResponse:
    """``POST /m/sms/status/<token>``: Twilio's report on one message. ``delivered`` moves it to
    delivered; ``undelivered``/``failed`` to failed with Twilio's ErrorCode in the reason (30005
    unknown number, 30006 landline, 21211, 21614 are hard bounces: the number is suppressed;
    21610 means the recipient had replied STOP: an ``sms_stop`` suppression). Other statuses
    (queued, sent, …) change nothing."""
    if not twilio_signed(request):
        return _forbidden(request)
    if refusal := _unstorable(request):
        return refusal
    message_id = status_token_read(token)
    message = (
        Message.objects.with_scopes_disabled().using(system_alias()).select_related("org").filter(pk=message_id).first()
        if message_id
        else None
    )
    if message is None:
        return HttpResponseBadRequest("Unknown message.", content_type="text/plain")
    report = request.POST.get("MessageStatus", "")
    sid = request.POST.get("MessageSid", "")
    event_id = f"{sid}:{report}" if sid else ""
    if report == "delivered":
        message_delivery_event(message, MessageStatus.DELIVERED, reason=f"Twilio {sid}", provider_event_id=event_id)
    elif report in ("undelivered", "failed"):
        raw_code = request.POST.get("ErrorCode", "").strip()
        code = int(raw_code) if raw_code.isdigit() else None
        reason = f"Twilio {report}" + (f", error {raw_code}" if raw_code else "") + (f" ({sid})" if sid else "")
        message_delivery_event(
            message,
            MessageStatus.FAILED,
            reason=reason,
            hard_bounce=code in CALLBACK_HARD_BOUNCE_CODES,
            provider_event_id=event_id,
        )
        if code == UNSUBSCRIBED and message.to:
            with org_context(message.org):
                stop_suppress(message, reason)
    return HttpResponse(status=204)


# --- inbound messages ------------------------------------------------------------------------------


def _phone(value: str) -> str:
    """The sender in E.164 (as contacts store phones); a short code or sender ID stays as sent."""
    value = value.strip()
    try:
        return normalise_phone(value)
    except ValidationError:  # not a number a contact could have
        return value


def _contacts_by_org(phone: str) -> list[tuple[Organization, list[Contact]]]:
    """The contacts with ``phone``, grouped by their org (orgs in id order)."""
    grouped: dict[int, list[Contact]] = defaultdict(list)
    orgs: dict[int, Organization] = {}
    index = phone_index(phone)  # phones are encrypted: found by their keyed hash, across orgs
    if not index:
        return []
    contacts = Contact.objects.with_scopes_disabled().using(system_alias()).filter(phone_bidx=index)
    for contact in contacts.select_related("org").order_by("pk"):
        grouped[contact.org_id].append(contact)
        orgs[contact.org_id] = contact.org
    return [(orgs[org_id], grouped[org_id]) for org_id in sorted(grouped)]


def _latest_message(phone: str, contacts: list[Contact]) -> Message | None:
    """The newest SMS sent to ``phone`` (any of these contacts): whom a reply answers. ``to`` is
    encrypted, so the newest few of these contacts' texts are read and compared here."""
    recent = (
        Message.objects.with_scopes_disabled()
        .using(system_alias())
        .filter(
            org_id__in={c.org_id for c in contacts},
            contact_id__in=[c.pk for c in contacts],
            channel=Channel.SMS,
            sent_at__isnull=False,
        )
        .select_related("org", "contact")
        .order_by("-sent_at", "-pk")[:LATEST_SCAN]
    )
    return next((message for message in recent if message.to == phone), None)


def sms_stop_record(*, phone: str, proof: dict) -> list[Organization]:
    """Someone replied STOP from ``phone``: in each org with contacts of that number, suppresses
    it (``sms_stop``) and withdraws those contacts' ``sms`` consent (unless withdrawn already).
    Returns the orgs it acted in."""
    acted = []
    for org, contacts in _contacts_by_org(phone):
        with org_context(org), transaction.atomic():
            Suppression.objects.get_or_create(
                org=org,
                channel=Channel.SMS,
                address=Suppression.address_of(phone),
                defaults={"reason": Suppression.Reason.SMS_STOP, "detail": f"replied {proof.get('body', '')!r}"},
            )
            states = consent_states(org=org, contact_ids=[c.pk for c in contacts], purpose="sms")
            for contact in contacts:
                if states.get(contact.pk) is not False:
                    consent_record(
                        org=org, contact=contact, purpose="sms", granted=False, source=CONSENT_SOURCE, proof=proof
                    )
        acted.append(org)
    logger.info("sms stop phone=%s… orgs=%s", phone[:5], [org.pk for org in acted])
    return acted


def sms_start_record(*, phone: str, proof: dict) -> list[Organization]:
    """Someone replied START from ``phone``: lifts the ``sms_stop`` suppression and records
    ``sms`` consent granted for the contacts with that number (unless granted already), in each
    org that has them. Other suppressions (a hard bounce, an erasure) stay."""
    acted = []
    for org, contacts in _contacts_by_org(phone):
        with org_context(org), transaction.atomic():
            Suppression.objects.filter(  # the keyed hash, and the number itself in rows kept before it
                org=org,
                channel=Channel.SMS,
                address__in={Suppression.address_of(phone), phone.lower()},
                reason=Suppression.Reason.SMS_STOP,
            ).delete()
            states = consent_states(org=org, contact_ids=[c.pk for c in contacts], purpose="sms")
            for contact in contacts:
                if states.get(contact.pk) is not True:
                    consent_record(
                        org=org, contact=contact, purpose="sms", granted=True, source=CONSENT_SOURCE, proof=proof
                    )
        acted.append(org)
    logger.info("sms start phone=%s… orgs=%s", phone[:5], [org.pk for org in acted])
    return acted


def sms_help_text(*, phone: str) -> str:
    """The answer to HELP: the org that last texted ``phone`` (else one with it as a contact)."""
    grouped = _contacts_by_org(phone)
    contacts = [contact for _, group in grouped for contact in group]
    latest = _latest_message(phone, contacts) if contacts else None
    org = latest.org if latest else (grouped[0][0] if grouped else None)
    if org is None:
        return "Reply STOP to unsubscribe."
    contact = f" Help: {org.from_email}." if org.from_email else ""
    return f"{org.name}:{contact} Reply STOP to unsubscribe."


def inbound_sms_claim(*, sid: str) -> bool:
    """Claims the text ``sid``: True the first time it is seen, False for a replay. Call it inside
    the transaction that acts on the text: a failure then frees the claim for Twilio's retry, and
    a concurrent delivery of the same sid waits on the unique index until this one commits, then
    finds it claimed."""
    _, created = InboundSmsReceipt.objects.get_or_create(sid=sid)
    return created


def sms_reply_record(*, phone: str, body: str, to: str, sid: str) -> list[int]:
    """Records a text from ``phone`` as an ``sms_received`` event: for the contact its latest
    SMS went to, else for every contact with that number. Returns the ids of the stored events."""
    grouped = _contacts_by_org(phone)
    contacts = [contact for _, group in grouped for contact in group]
    if not contacts:
        logger.info("sms reply from an unknown number phone=%s… sid=%s", phone[:5], sid)
        return []
    latest = _latest_message(phone, contacts)
    targets = [latest.contact] if latest else contacts
    stored = []
    for contact in targets:
        # No "from": the sender is the contact, whose phone is stored encrypted; a copy in the
        # event's properties would keep the number in clear.
        properties = {"body": body[:MAX_BODY], "to": to}
        if latest:
            properties["in_reply_to"] = latest.pk
        item = {"type": "sms_received", "contact_id": contact.pk, "properties": properties}
        if sid:
            item["message_id"] = f"sms:{sid}:{contact.pk}"
        with org_context(contact.org):
            items, errors = events_validate([item])
            [result] = events_ingest(org=contact.org, items=items, errors=errors, source="sms")
        if result.status == "error":
            logger.warning("sms reply refused contact=%s errors=%s", contact.pk, result.errors)
        elif result.status == "stored":
            stored.append(result.event_id)
    return stored


@csrf_exempt
@require_POST
def inbound(request: HttpRequest) -> HttpResponse:
    """``POST /m/sms/inbound``: a text someone sent to our Twilio number (see the module
    docstring for what each keyword does). Answers TwiML: a message for HELP, else empty."""
    if not twilio_signed(request):
        return _forbidden(request)
    if refusal := _unstorable(request):
        return refusal
    phone = _phone(request.POST.get("From", ""))
    body = request.POST.get("Body", "")
    to = request.POST.get("To", "")
    sid = request.POST.get("MessageSid", "").strip()
    if not sid or len(sid) > InboundSmsReceipt._meta.get_field("sid").max_length:
        return HttpResponseBadRequest("MessageSid is missing or too long.", content_type="text/plain")
    if not phone:
        return _twiml()
    keyword = body.strip().rstrip(".!").strip().upper()
    proof = {"from": phone, "to": to, "body": body[:200], "message_sid": sid}
    answer = ""
    with transaction.atomic():
        if not inbound_sms_claim(sid=sid):
            logger.info("sms replay ignored sid=%s phone=%s…", sid, phone[:5])
            return _twiml()
        if keyword in STOP_WORDS:
            sms_stop_record(phone=phone, proof=proof)
        elif keyword in START_WORDS:
            sms_start_record(phone=phone, proof=proof)
        elif keyword in HELP_WORDS:
            answer = sms_help_text(phone=phone)
        else:
            sms_reply_record(phone=phone, body=body, to=to, sid=sid)
    return _twiml(answer)
