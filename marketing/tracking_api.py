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
from marketing.cors import cors_headers, cors_preflight, cors_refusal
from marketing.identity import Trust, contact_identify, contact_merge, identity_conflict_record, ref_from
from marketing.ingestion import events_ingest, events_validate
from marketing.models import AnonymousId, Company, Contact, PropertyDefinition
from marketing.properties import properties_check
from marketing.tenancy import org_context

logger = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 500 * 1024
MAX_MESSAGE_BYTES = 32 * 1024
EVENT_CALLS = {"track", "page", "screen"}
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
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


def _read_body(request: HttpRequest) -> dict:
    length = int(request.headers.get("Content-Length") or 0)
    if length > MAX_REQUEST_BYTES:
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
        data = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestRefusedError(400, f"Body is not JSON: {exc}.") from exc
    if not isinstance(data, dict):
        raise RequestRefusedError(400, "Body must be a JSON object.")
    return data


def _write_key(request: HttpRequest, data: dict) -> str:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header.split(None, 1)[1], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError, IndexError) as exc:
            raise RequestRefusedError(401, "Malformed basic authorization header.") from exc
        return decoded.split(":", 1)[0]
    if header.lower().startswith("bearer "):
        return header.split(None, 1)[1].strip()
    if data.get("writeKey"):
        return str(data["writeKey"])
    raise RequestRefusedError(401, "Send the write key as the basic-auth user name or as writeKey in the body.")


def _event_item(message: dict, call: str) -> dict:
    properties = dict(message.get("properties") or {}) if isinstance(message.get("properties"), dict) else {}
    if call == "track":
        event_type = message.get("event")
    elif call == "page":
        event_type = "page_view"
        if message.get("name"):
            properties.setdefault("name", message["name"])
        campaign = (message.get("context") or {}).get("campaign") or {}
        for key, target in UTM.items():
            if isinstance(campaign, dict) and campaign.get(key):
                properties.setdefault(target, campaign[key])
    else:
        event_type = "screen_view"
        if message.get("name"):
            properties.setdefault("name", message["name"])
    user_id, anonymous_id = message.get("userId"), message.get("anonymousId")
    return {
        "type": event_type,
        "external_id": str(user_id) if user_id not in (None, "") else None,
        "anonymous_id": str(anonymous_id) if anonymous_id not in (None, "") else None,
        "properties": properties,
        "occurred_at": message.get("timestamp") or message.get("originalTimestamp"),
        "message_id": str(message["messageId"]) if message.get("messageId") else None,
    }


def _identify(org, message: dict, trust: Trust) -> dict:
    traits = message.get("traits") if isinstance(message.get("traits"), dict) else {}
    context_traits = (message.get("context") or {}).get("traits") or {}
    email = traits.get("email") or (context_traits.get("email") if isinstance(context_traits, dict) else None)
    try:
        ref = ref_from(external_id=message.get("userId"), email=email, anonymous_id=message.get("anonymousId"))
    except ValidationError as exc:
        return {"status": "error", "errors": {f"traits.{k}": "; ".join(v) for k, v in exc.message_dict.items()}}
    if not (ref.external_id or ref.email or ref.anonymous_id):
        return {"status": "error", "errors": {"userId": "identify needs a userId, an anonymousId or traits.email"}}
    summary = {"call": "identify", "traits": sorted(str(key) for key in traits)[:50]}  # names, never values
    contact = contact_identify(org=org, ref=ref, reason="identify", trust=trust, summary=summary)
    fields: dict[str, Any] = {}
    properties = {}
    for key, value in traits.items():
        if key in TRAIT_FIELDS:
            if value not in (None, ""):
                fields[TRAIT_FIELDS[key]] = str(value)
        elif key == "name" and isinstance(value, str) and " " in value.strip():
            first, last = value.strip().split(" ", 1)
            fields.setdefault("first_name", first)
            fields.setdefault("last_name", last)
        elif key == "company" and isinstance(value, dict | str):
            name = value.get("name") if isinstance(value, dict) else value
            if name:
                fields["company"] = Company.objects.get_or_create(org=org, name=str(name)[:200])[0]
        elif key not in ("email", "id", "createdAt", "created_at", "address", "avatar"):
            properties[key] = value
    problems = properties_check(org=org, subject=PropertyDefinition.Subject.CONTACT, items=[properties])[0]
    if problems:
        return {
            "status": "error",
            "contact_id": contact.pk,
            "errors": {f"traits.{k.split('.', 1)[1]}": v for k, v in problems.items()},
        }
    if properties:
        fields["properties"] = {**contact.properties, **properties}
    try:
        services.contact_update(contact=contact, **fields)
    except ValidationError as exc:
        return {
            "status": "error",
            "contact_id": contact.pk,
            "errors": {f"traits.{k}": "; ".join(v) for k, v in exc.message_dict.items()},
        }
    return {"status": "identified", "contact_id": contact.pk}


def _alias(org, message: dict, trust: Trust) -> dict:
    previous, user_id = message.get("previousId"), message.get("userId")
    if not previous or not user_id:
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
    org, messages: list[Any], *, batch_context: dict | None = None, trust: Trust = Trust.PUBLIC
) -> list[dict]:
    """Handles Segment messages in order of kind: events as one stored batch, then identify/alias."""
    results: list[dict | None] = [None] * len(messages)
    event_positions, raw_events = [], []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            results[index] = {"status": "error", "errors": {"message": "must be a JSON object"}}
            continue
        if batch_context and isinstance(message.get("context"), dict):
            message["context"] = {**batch_context, **message["context"]}
        if len(json.dumps(message, default=str)) > MAX_MESSAGE_BYTES:
            results[index] = {"status": "error", "errors": {"message": f"over {MAX_MESSAGE_BYTES // 1024} KB"}}
            continue
        call = message.get("type")
        if call in EVENT_CALLS:
            event_positions.append(index)
            raw_events.append(_event_item(message, call))
        elif call not in ("identify", "alias", "group"):
            results[index] = {"status": "error", "errors": {"type": f"unknown call type {call!r}"}}
    if raw_events:
        items, errors = events_validate(raw_events)
        stored = events_ingest(org=org, items=items, errors=errors, source="segment", trust=trust)
        for index, result in zip(event_positions, stored, strict=True):
            results[index] = result.as_dict()
    for index, message in enumerate(messages):
        if results[index] is not None:
            continue
        if message["type"] == "identify":
            results[index] = _identify(org, message, trust)
        elif message["type"] == "alias":
            results[index] = _alias(org, message, trust)
        else:
            results[index] = {"status": "ignored", "reason": "group calls are not supported yet"}
    return [{"index": i, **r} for i, r in enumerate(results)]


def _tracking_view(call: str | None):
    @csrf_exempt
    def view(request: HttpRequest) -> HttpResponse:
        if request.method == "OPTIONS":
            return cors_preflight(request)
        if request.method != "POST":
            return cors_headers(JsonResponse({"detail": "Use POST."}, status=405), request)
        try:
            data = _read_body(request)
            key, problem = api_key_from_token(_write_key(request, data))
            if key is None:
                raise RequestRefusedError(401, problem)
        except RequestRefusedError as refused:
            return cors_headers(
                JsonResponse({"success": False, "detail": refused.detail}, status=refused.status), request
            )
        refusal = cors_refusal(request, key.org)
        if refusal:
            return refusal
        with org_context(key.org):
            if call is None:
                batch = data.get("batch")
                if not isinstance(batch, list):
                    response = JsonResponse(
                        {"success": False, "detail": "batch must be a list of messages"}, status=400
                    )
                    return cors_headers(response, request)
                context = data.get("context") if isinstance(data.get("context"), dict) else None
                results = messages_handle(key.org, batch, batch_context=context, trust=Trust.of_key(key))
                return cors_headers(JsonResponse({"success": True, "results": results}), request)
            data.setdefault("type", call)
            result = messages_handle(key.org, [data], trust=Trust.of_key(key))[0]
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
