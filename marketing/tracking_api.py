"""A Segment-compatible HTTP tracking API, so Segment's and RudderStack's SDKs and analytics.js
can point at us unchanged: ``POST /v1/track``, ``/v1/page``, ``/v1/screen``, ``/v1/identify``,
``/v1/alias``, ``/v1/group`` and ``/v1/batch`` (and analytics.js's short forms ``/v1/t`` …).

Authentication is Segment's: HTTP basic auth with the write key as the user name, or
``writeKey`` in the body. Bodies may be ``application/json`` or ``text/plain`` (analytics.js
sends the latter to avoid a CORS preflight) and may be gzip-encoded. Limits are Segment's:
500 KB per request, 32 KB per message. Mapping: ``userId`` → the contact's ``external_id``,
``anonymousId`` → an anonymous id, ``traits`` → contact fields and properties, ``messageId`` →
``message_id`` (so a resent message is stored once), ``timestamp`` → ``occurred_at``;
``track`` stores an event named by ``event``, ``page`` a ``page_view`` (with the UTM
parameters of ``context.campaign``), ``screen`` a ``screen_view``.
"""

import base64
import binascii
import json
import logging
import zlib
from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from marketing import services
from marketing.api_keys import api_key_from_token
from marketing.client_address import client_ip
from marketing.cors import cors_headers, cors_preflight, cors_refusal
from marketing.erased_identities import erased_field, refusal
from marketing.identity import Trust, contact_identify, contact_merge, identity_conflict_record, ref_from
from marketing.ingestion import MAX_PATH, events_ingest, events_validate
from marketing.json_input import JsonInputError, json_parse, json_problem
from marketing.models import AnonymousId, Company, Contact, PropertyDefinition
from marketing.properties import properties_check
from marketing.tenancy import org_context
from marketing.tracking_consent import (
    Signals,
    category_preferences,
    choices_record,
    gpc_signal,
    known_contacts,
    tracking_refusal,
)

logger = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 500 * 1024
MAX_MESSAGE_BYTES = 32 * 1024
EVENT_CALLS = {"track", "page", "screen"}
CALLS = (*sorted(EVENT_CALLS), "identify", "alias", "group")
MAX_ID = 200  # characters of userId, anonymousId, previousId and messageId: the columns' width
# Where the events API names a field, the Segment field it came from ("event" is the whole item:
# it named no contact).
SEGMENT_FIELDS = {"type": "event", "external_id": "userId", "anonymous_id": "anonymousId", "message_id": "messageId"}
TRAIT_FIELDS = {  # Segment's reserved traits (both spellings) -> contact fields
    "firstName": "first_name",
    "first_name": "first_name",
    "lastName": "last_name",
    "last_name": "last_name",
    "phone": "phone",
    "title": "job_title",
    "job_title": "job_title",
    "country": "country",
}
UTM = {
    "source": "utm_source",
    "medium": "utm_medium",
    "name": "utm_campaign",
    "term": "utm_term",
    "content": "utm_content",
}


class RequestRefusedError(Exception):
    def __init__(self, status: int, detail: str, errors: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.detail, self.errors = status, detail, errors

    def response(self) -> JsonResponse:
        body = {"success": False, "detail": self.detail, **({"errors": self.errors} if self.errors else {})}
        return JsonResponse(body, status=self.status)


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.headers.get("Content-Length") or 0)
    except ValueError:  # not a number: Django reads no body either
        return 0


def _read_body(request: HttpRequest, *, lenient: bool) -> tuple[dict, bool]:
    """The body as a JSON object, and whether its values passed ``json_parse``'s checks.

    ``lenient`` (a batch): a body with a bad value is read again without those checks, which then
    run message by message, so that one bad message is that message's error. Most bodies are clean
    and one walk checks them whole."""
    if _declared_length(request) > MAX_REQUEST_BYTES:
        raise RequestRefusedError(413, f"Request body over {MAX_REQUEST_BYTES // 1024} KB.")
    body = request.body
    if request.headers.get("Content-Encoding", "").lower() == "gzip":
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            body = inflater.decompress(body, MAX_REQUEST_BYTES + 1)
        except zlib.error as exc:
            raise RequestRefusedError(400, "Body is not valid gzip.") from exc
    if len(body) > MAX_REQUEST_BYTES:
        raise RequestRefusedError(413, f"Request body over {MAX_REQUEST_BYTES // 1024} KB.")
    try:
        data, checked = json_parse(body or b"{}"), True
    except JsonInputError as exc:
        if not lenient:
            raise _unreadable(exc) from None
        try:
            data, checked = json_parse(body, check=False), False
        except JsonInputError as again:  # not JSON, or nested too deeply to read at all
            raise _unreadable(again) from None
    if not isinstance(data, dict):
        raise RequestRefusedError(400, "Body must be a JSON object.", {"body": "must be a JSON object"})
    return data, checked


def _unreadable(exc: JsonInputError) -> RequestRefusedError:
    return RequestRefusedError(400, f"Body is not acceptable JSON: {exc}.", {exc.path or "body": exc.reason})


def _write_key(request: HttpRequest, data: dict) -> str:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header.split(None, 1)[1], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError, IndexError) as exc:
            raise RequestRefusedError(401, "Malformed basic authorization header.") from exc
        key = decoded.split(":", 1)[0]
    elif header.lower().startswith("bearer "):
        key = header[len("bearer ") :].strip()
    elif data.get("writeKey"):
        key = data["writeKey"]
    else:
        raise RequestRefusedError(401, "Send the write key as the basic-auth user name or as writeKey in the body.")
    # Keys are printable ASCII; anything else (a NUL, a list) would only reach the key lookup to fail there.
    if not isinstance(key, str) or not (key.isascii() and key.isprintable()):
        raise RequestRefusedError(401, "Malformed write key: expected mk_<id>_<secret>.")
    return key


def _is_text(value: Any) -> bool:
    """A value that reads as text: a string or a number, or nothing at all."""
    return value is None or (isinstance(value, str | int | float) and not isinstance(value, bool))


def _id_problem(value: Any) -> str | None:
    """Why an id (userId, anonymousId, messageId, previousId) cannot be used; None when it can."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        return "must be a string or a number"
    if len(str(value)) > MAX_ID:
        return f"at most {MAX_ID} characters"
    return None


def _context_errors(context: Any) -> dict[str, str]:
    """What makes a message's (or a batch's) ``context`` unusable, by field; empty when it is fine."""
    if context is None:
        return {}
    if not isinstance(context, dict):
        return {"context": "must be an object"}
    errors: dict[str, str] = {}
    campaign = context.get("campaign")
    if campaign is not None and not isinstance(campaign, dict):
        errors["context.campaign"] = "must be an object"
    elif campaign:
        errors |= {f"context.campaign.{key}": "must be a string" for key in UTM if not _is_text(campaign.get(key))}
    if context.get("traits") is not None and not isinstance(context["traits"], dict):
        errors["context.traits"] = "must be an object"
    return errors


def _message_errors(message: dict, *, checked: bool) -> dict[str, str]:
    """What makes a message unusable, by Segment's field names; empty when it is fine.

    ``checked``: its values went through ``json_parse``'s checks already (a single call).
    """
    if not checked:
        problem = json_problem(message)
        if problem:
            where = problem.path if problem.path not in ("", "body") else "message"  # "body": a top-level key
            return {where[:MAX_PATH]: problem.reason}
    call = message.get("type")
    if call not in CALLS:
        return {"type": f"must be one of {', '.join(CALLS)}"}
    errors = _context_errors(message.get("context"))
    for name in ("userId", "anonymousId", "messageId", *(("previousId",) if call == "alias" else ())):
        problem = _id_problem(message.get(name))
        if problem:
            errors[name] = problem
    if call in EVENT_CALLS:
        if message.get("properties") is not None and not isinstance(message["properties"], dict):
            errors["properties"] = "must be an object"
        if call != "track" and not _is_text(message.get("name")):
            errors["name"] = "must be a string"
    elif call == "identify" and message.get("traits") is not None and not isinstance(message["traits"], dict):
        errors["traits"] = "must be an object"
    return errors


def _event_item(message: dict, call: str) -> dict:
    """A checked message as an item for ``events_validate``."""
    properties = dict(message.get("properties") or {})
    if call == "track":
        event_type = message.get("event")
    else:
        event_type = "page_view" if call == "page" else "screen_view"
        if message.get("name") not in (None, ""):
            properties.setdefault("name", str(message["name"]))
    if call == "page":
        campaign = (message.get("context") or {}).get("campaign") or {}
        for key, target in UTM.items():
            if campaign.get(key) not in (None, ""):
                properties.setdefault(target, str(campaign[key]))
    user_id, anonymous_id, message_id = message.get("userId"), message.get("anonymousId"), message.get("messageId")
    return {
        "type": event_type,
        "external_id": str(user_id) if user_id not in (None, "") else None,
        "anonymous_id": str(anonymous_id) if anonymous_id not in (None, "") else None,
        "properties": properties,
        "occurred_at": message.get("timestamp") or message.get("originalTimestamp"),
        "message_id": str(message_id) if message_id not in (None, "") else None,
    }


def _segment_errors(errors: dict[str, str], message: dict) -> dict[str, str]:
    """An event item's errors under the names the message used (``external_id`` -> ``userId``)."""
    names = {**SEGMENT_FIELDS, "occurred_at": "timestamp" if message.get("timestamp") else "originalTimestamp"}
    renamed = {}
    for where, reason in errors.items():
        if where == "event":  # the item as a whole: it named no contact
            renamed["userId"] = "needs a userId or an anonymousId"
            continue
        head, dot, rest = where.partition(".")
        renamed[names.get(head, head) + dot + rest] = reason
    return renamed


def _traits_split(traits: dict) -> tuple[dict[str, Any], dict[str, Any], dict[str, str], dict[str, str]]:
    """Segment traits as contact fields (the company by name), custom properties, the trait each
    field came from (to name it in errors), and errors by trait."""
    fields: dict[str, Any] = {}
    properties, trait_of, errors = {}, {}, {}
    for key, value in traits.items():
        if key in TRAIT_FIELDS:
            if value in (None, ""):
                continue
            name = TRAIT_FIELDS[key]
            limit = Contact._meta.get_field(name).max_length
            if not _is_text(value):
                errors[f"traits.{key}"] = "must be a string"
            elif name != "phone" and len(str(value)) > limit:  # a phone is normalised before its length counts
                errors[f"traits.{key}"] = f"at most {limit} characters"
            else:
                fields[name], trait_of[name] = str(value), key
        elif key == "name" and isinstance(value, str) and " " in value.strip():
            first, last = value.strip().split(" ", 1)
            for name, part in (("first_name", first), ("last_name", last)):
                if name not in fields:
                    fields[name], trait_of[name] = part, "name"
        elif key == "company":
            name = value.get("name") if isinstance(value, dict) else value
            if not isinstance(value, dict | str | None):
                errors["traits.company"] = "must be an object or a string"
            elif not _is_text(name):
                errors["traits.company.name"] = "must be a string"
            elif name not in (None, ""):
                fields["company"], trait_of["company"] = str(name)[:200], "company"
        elif key not in ("email", "id", "createdAt", "created_at", "address", "avatar"):
            properties[key] = value
    return fields, properties, trait_of, errors


def _identify(org, message: dict, trust: Trust) -> dict:
    """Everything is checked before the first write: a bad trait stores nothing."""
    traits = message.get("traits") or {}
    context_traits = (message.get("context") or {}).get("traits") or {}
    email, email_field = traits.get("email"), "traits.email"
    if not email and context_traits.get("email"):
        email, email_field = context_traits["email"], "context.traits.email"
    if email is not None and not isinstance(email, str):
        return {"status": "error", "errors": {email_field: "must be a string"}}
    fields, properties, trait_of, errors = _traits_split(traits)
    if errors:
        return {"status": "error", "errors": errors}
    try:
        ref = ref_from(external_id=message.get("userId"), email=email, anonymous_id=message.get("anonymousId"))
    except ValidationError as exc:
        return {"status": "error", "errors": {email_field: "; ".join(exc.message_dict.get("email", exc.messages))}}
    if not (ref.external_id or ref.email or ref.anonymous_id):
        return {"status": "error", "errors": {"userId": "identify needs a userId, an anonymousId or traits.email"}}
    problems = properties_check(org=org, subject=PropertyDefinition.Subject.CONTACT, items=[properties])[0]
    if problems:
        return {"status": "error", "errors": {f"traits.{k.split('.', 1)[1]}": v for k, v in problems.items()}}
    erased = erased_field(org=org, email=ref.email, phone=fields.get("phone"), user_id=ref.external_id)
    if erased:
        where = {"email": email_field, "user_id": "userId"}.get(erased, f"traits.{trait_of.get('phone', 'phone')}")
        return {"status": "error", "errors": {where: refusal(public=trust is Trust.PUBLIC)}}
    summary = {"call": "identify", "traits": sorted(str(key) for key in traits)[:50]}  # names, never values
    contact = contact_identify(org=org, ref=ref, reason="identify", trust=trust, summary=summary)
    if "company" in fields:
        # By name, which is not unique: the oldest of that name.
        name = fields["company"]
        fields["company"] = Company.objects.filter(org=org, name=name).order_by("pk").first() or (
            Company.objects.create(org=org, name=name)
        )
    if properties:
        fields["properties"] = {**contact.properties, **properties}
    try:
        services.contact_update(contact=contact, **fields)
    except ValidationError as exc:
        return {
            "status": "error",
            "contact_id": contact.pk,
            "errors": {f"traits.{trait_of.get(k, k)}": "; ".join(v) for k, v in exc.message_dict.items()},
        }
    return {"status": "identified", "contact_id": contact.pk}


def _alias(org, message: dict, trust: Trust) -> dict:
    previous, user_id = message.get("previousId"), message.get("userId")
    if previous in (None, "") or user_id in (None, ""):
        return {"status": "error", "errors": {"previousId": "alias needs previousId and userId"}}
    ref = ref_from(external_id=user_id)
    target_existed = Contact.objects.filter(org=org, external_id=ref.external_id).exists()
    target = contact_identify(org=org, ref=ref, reason="alias", trust=trust)
    earlier = (
        Contact.objects.filter(org=org, external_id=str(previous)).first()
        or Contact.objects.filter(
            org=org, pk__in=AnonymousId.objects.filter(org=org, value=str(previous)).values("contact_id")
        ).first()
    )
    earlier_known = earlier is not None and bool(earlier.email or earlier.external_id)
    if earlier is None:
        AnonymousId.objects.get_or_create(org=org, value=str(previous), defaults={"contact": target})
    elif earlier.pk != target.pk and trust is Trust.PUBLIC and target_existed and earlier_known:
        # Two known contacts: a public key may not merge them (see marketing.identity).
        identifiers = {
            "external_id": {"value": ref.external_id, "contact": target.pk},
            "previous_id": {"value": str(previous), "contact": earlier.pk},
        }
        identity_conflict_record(
            org=org, contact=target, other=earlier, identifiers=identifiers, source="alias", summary={"call": "alias"}
        )
    elif earlier.pk != target.pk:
        contact_merge(org=org, kept=target, gone=earlier, reason="alias")
    return {"status": "aliased", "contact_id": target.pk}


def messages_handle(
    org,
    messages: list[Any],
    *,
    batch_context: dict | None = None,
    checked: bool = False,
    trust: Trust = Trust.PUBLIC,
    gpc: bool = False,
    proof: dict | None = None,
) -> list[dict]:
    """Handles Segment messages in order of kind: events as one stored batch, then identify/alias.

    Each message is checked on its own (``checked``: its values passed ``json_parse`` already), so
    a bad one is an error at its index, named by field, and the others are handled. Consent
    (``marketing.tracking_consent``): ``gpc`` (the request's ``Sec-GPC: 1``) and each message's
    ``context.consent.categoryPreferences`` record choices for a contact we know; an event the
    tracking regime does not allow is ``dropped`` (with the reason), not stored.
    """
    results: list[dict | None] = [None] * len(messages)
    event_positions, raw_events = [], []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            results[index] = {"status": "error", "errors": {"message": "must be a JSON object"}}
            continue
        if batch_context:
            own = message.get("context")
            if own is None:
                message["context"] = batch_context
            elif isinstance(own, dict):
                message["context"] = {**batch_context, **own}
        if len(json.dumps(message, default=str)) > MAX_MESSAGE_BYTES:
            results[index] = {"status": "error", "errors": {"message": f"over {MAX_MESSAGE_BYTES // 1024} KB"}}
            continue
        errors = _message_errors(message, checked=checked)
        if errors:
            results[index] = {"status": "error", "errors": errors}
            continue
        if message["type"] in EVENT_CALLS:
            event_positions.append(index)
    dropped = _consent_gate(org, messages, event_positions, gpc=gpc, proof=proof or {})
    results = [dropped.get(index) if result is None else result for index, result in enumerate(results)]
    event_positions = [index for index in event_positions if index not in dropped]
    raw_events = [_event_item(messages[index], messages[index]["type"]) for index in event_positions]
    if raw_events:
        items, errors = events_validate(raw_events, checked=True)  # their values came from checked messages
        stored = events_ingest(org=org, items=items, errors=errors, source="segment", trust=trust)
        for index, result in zip(event_positions, stored, strict=True):
            results[index] = result.as_dict()
            if result.status == "error":
                results[index]["errors"] = _segment_errors(result.errors, messages[index])
    for index, message in enumerate(messages):
        if results[index] is not None:
            continue
        if message["type"] == "identify":
            results[index] = _identify(org, message, trust)
            _identify_choices(org, message, results[index], gpc=gpc, proof=proof or {})
        elif message["type"] == "alias":
            results[index] = _alias(org, message, trust)
        else:
            results[index] = {"status": "ignored", "reason": "group calls are not supported yet"}
    return [{**r, "index": i} for i, r in enumerate(results)]


def _consent_gate(org, messages: list, positions: list[int], *, gpc: bool, proof: dict) -> dict[int, dict]:
    """The results of the event messages (at ``positions``) that consent stops: the calls'
    choices recorded for a contact we know, the event itself not stored; and identify calls naming no
    one but an anonymous id while GPC is on (nothing is stored for an anonymous visitor then)."""
    dropped: dict[int, dict] = {}
    if gpc:
        for index, message in enumerate(messages):
            if isinstance(message, dict) and message.get("type") == "identify" and not _names_someone(message):
                dropped[index] = {
                    "status": "dropped",
                    "reason": "not stored: Global Privacy Control on an anonymous call",
                }
    if not positions:
        return dropped
    by_user, by_anonymous = known_contacts(
        org,
        user_ids=[messages[i].get("userId") for i in positions],
        anonymous_ids=[messages[i].get("anonymousId") for i in positions],
    )
    for index in positions:
        message = messages[index]
        signals = Signals(gpc=gpc, preferences=category_preferences(message.get("context")))
        user_id, anonymous_id = message.get("userId"), message.get("anonymousId")
        contact = by_user.get(str(user_id)) if user_id not in (None, "") else None
        contact = contact or (by_anonymous.get(str(anonymous_id)) if anonymous_id not in (None, "") else None)
        if contact is not None and signals.choices():
            choices_record(org=org, contact=contact, signals=signals, proof={**proof, "call": message["type"]})
        reason = tracking_refusal(org=org, contact=contact, signals=signals)
        if reason:
            dropped[index] = {"status": "dropped", "reason": reason}
    return dropped


def _names_someone(message: dict) -> bool:
    traits = message.get("traits") if isinstance(message.get("traits"), dict) else {}
    return message.get("userId") not in (None, "") or bool(traits.get("email"))


def _identify_choices(org, message: dict, result: dict, *, gpc: bool, proof: dict) -> None:
    """An identify call's GPC or consent-banner answers are recorded for the contact it identified."""
    signals = Signals(gpc=gpc, preferences=category_preferences(message.get("context")))
    if result.get("status") != "identified" or not signals.choices():
        return
    contact = Contact.objects.filter(org=org, pk=result["contact_id"]).first()
    if contact is not None:
        choices_record(org=org, contact=contact, signals=signals, proof={**proof, "call": "identify"})


def _request_proof(request: HttpRequest) -> dict:
    """Where a recorded choice came from: the caller's address and browser."""
    return {"ip": client_ip(request), "user_agent": request.headers.get("User-Agent", "")[:500]}


def _tracking_view(call: str | None):
    @csrf_exempt
    def view(request: HttpRequest) -> HttpResponse:
        if request.method == "OPTIONS":
            return cors_preflight(request)
        if request.method != "POST":
            return cors_headers(JsonResponse({"detail": "Use POST."}, status=405), request)
        try:
            data, checked = _read_body(request, lenient=call is None)
            if call is None and not checked:
                # A batch's messages are checked one by one below; the rest of its body here.
                problem = json_problem({k: v for k, v in data.items() if k != "batch"})
                if problem:
                    raise RequestRefusedError(400, f"{problem}.", {problem.path or "body": problem.reason})
            key, problem = api_key_from_token(_write_key(request, data))
            if key is None:
                raise RequestRefusedError(401, problem)
        except RequestRefusedError as refused:
            return cors_headers(refused.response(), request)
        refusal = cors_refusal(request, key.org)
        if refusal:
            return refusal
        with org_context(key.org):
            if call is None:
                batch = data.get("batch")
                errors = {"batch": "must be a list of messages"} if not isinstance(batch, list) else {}
                errors |= _context_errors(data.get("context"))
                if errors:
                    refused = RequestRefusedError(400, "; ".join(f"{k}: {v}" for k, v in errors.items()), errors)
                    return cors_headers(refused.response(), request)
                results = messages_handle(
                    key.org,
                    batch,
                    batch_context=data.get("context"),
                    checked=checked,
                    trust=Trust.of_key(key),
                    gpc=gpc_signal(request.headers),
                    proof=_request_proof(request),
                )
                return cors_headers(JsonResponse({"success": True, "results": results}), request)
            data.setdefault("type", call)
            result = messages_handle(
                key.org,
                [data],
                checked=True,
                trust=Trust.of_key(key),
                gpc=gpc_signal(request.headers),
                proof=_request_proof(request),
            )[0]
            ok = result["status"] != "error"
            return cors_headers(JsonResponse({"success": ok, **result}, status=200 if ok else 400), request)

    return view


urlpatterns = [
    path("batch", _tracking_view(None), name="segment-batch"),
    path("import", _tracking_view(None), name="segment-import"),
    *[
        path(name, _tracking_view(call), name=f"segment-{name}")
        for call in ("track", "page", "screen", "identify", "alias", "group")
        for name in (call, call[0])
    ],
]
