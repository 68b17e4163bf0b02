"""The inbound webhook trigger: ``POST /hooks/workflows/<id>/`` enrols one contact.

A sender (a CRM, a form tool, another system) posts JSON::

    {"id": "evt_123", "contact": {"email": "ana@example.com"}, "data": {"plan": "pro"}}

signed with the workflow's ``webhook_secret``: ``X-Signature: t=<unix time>,v1=<hex>``, where
``v1`` is HMAC-SHA256 over ``"<t>.<raw body>"`` (``workflows.outbound_http.signature``, the
scheme the outbound webhooks use). A signature older or newer than five minutes is refused, so
a captured request cannot be replayed later; within the window the delivery ``id`` is the
enrolment's trigger key, so a repeated delivery enrols the contact once.

The contact is named by ``email``, ``external_id`` or ``contact_id`` (an existing contact's id),
resolved (and created when new) by ``marketing.identity``; ``data`` becomes the run's trigger
data (``workflow.trigger.*`` in its conditions). Answers: 202 ``{"enrolled": 0|1}``; 400 with
per-field messages; 401 for a missing, wrong or stale signature; 404 for a workflow that does
not exist, is not active or is not webhook-triggered; 413 over 256 KB; 429 over the rate limit.
See docs/workflows.md, "Inbound webhooks".
"""

import logging

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from django_ratelimit.core import is_ratelimited
from redis.exceptions import RedisError
from rest_framework import serializers

from marketing.database_roles import system_alias
from marketing.identity import Trust, contact_identify, ref_from
from marketing.json_input import JsonInputError, json_parse
from marketing.models import Contact
from marketing.tenancy import org_context
from marketing.web_tracking import client_rate_key
from workflows.models import Workflow
from workflows.outbound_http import signature_valid
from workflows.services import workflow_enrol

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Signature"
REPLAY_WINDOW_S = 300
MAX_BODY_BYTES = 256 * 1024
# Per client IP and workflow: a busy CRM sends bursts, a flood of forged calls is cut off
# before each costs an HMAC and a lookup.
WEBHOOK_RATE = "300/m"
RETRY_AFTER_SECONDS = 60


class ContactInput(serializers.Serializer):
    email = serializers.CharField(max_length=254, required=False)
    external_id = serializers.CharField(max_length=200, required=False)
    contact_id = serializers.IntegerField(min_value=1, required=False)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("Name the contact by email, external_id or contact_id.")
        return attrs


class WebhookInput(serializers.Serializer):
    id = serializers.CharField(max_length=150, help_text="The delivery's id: a repeat with the same id enrols once.")
    contact = ContactInput()
    data = serializers.DictField(required=False, default=dict, help_text="The run's trigger data.")


def _answer(status: int, body: dict, **headers) -> JsonResponse:
    response = JsonResponse(body, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _rate_limited(request: HttpRequest, workflow_id: int) -> bool:
    """Counts the call against its IP's budget for this workflow; a cache outage lets it through."""
    try:
        return is_ratelimited(
            request, group=f"workflow-webhook:{workflow_id}", key=client_rate_key, rate=WEBHOOK_RATE, increment=True
        )
    except RedisError as exc:
        logger.warning("rate limit unavailable group=workflow-webhook error=%r", exc)
        return False


@csrf_exempt
@require_POST
def workflow_webhook(request: HttpRequest, workflow_id: int) -> JsonResponse:
    """Enrols the contact a signed delivery names in the workflow (see the module docstring)."""
    if _rate_limited(request, workflow_id):
        return _answer(429, {"detail": "Too many calls; slow down."}, Retry_After=str(RETRY_AFTER_SECONDS))
    workflow = (
        Workflow.objects.with_scopes_disabled()
        .using(system_alias())
        .select_related("org")
        .filter(pk=workflow_id, status=Workflow.Status.ACTIVE, trigger_type="webhook")
        .first()
    )
    if workflow is None:
        return _answer(404, {"detail": "No active webhook-triggered workflow has this id."})
    if int(request.headers.get("Content-Length") or 0) > MAX_BODY_BYTES:
        return _answer(413, {"detail": f"The body is over {MAX_BODY_BYTES // 1024} KB."})
    body = request.body
    header = request.headers.get(SIGNATURE_HEADER, "")
    if not header or not signature_valid(workflow.webhook_secret, body, header, window_s=REPLAY_WINDOW_S):
        logger.info("workflow webhook refused workflow=%s reason=signature", workflow.pk)
        return _answer(
            401,
            {
                "detail": f"Missing or invalid {SIGNATURE_HEADER}: send t=<unix time>,v1=<HMAC-SHA256 hex of "
                "“<t>.<body>” with the workflow's webhook secret>, made less than five minutes ago."
            },
        )
    try:
        payload = json_parse(body)
    except JsonInputError as exc:
        return _answer(400, _input_problem(exc))
    serializer = WebhookInput(data=payload) if isinstance(payload, dict) else None
    if serializer is None:
        return _answer(400, {"body": ["Send a JSON object."]})
    if not serializer.is_valid():
        return _answer(400, serializer.errors)
    delivery = serializer.validated_data
    with org_context(workflow.org):
        try:
            enrolled = _enrol(workflow, delivery)
        except ContactNamingError as exc:
            return _answer(400, {"contact": exc.errors})
        except ValidationError as exc:
            detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
            return _answer(400, detail)
    logger.info("workflow webhook workflow=%s delivery=%s enrolled=%s", workflow.pk, delivery["id"], enrolled)
    return _answer(202, {"enrolled": enrolled})


def _input_problem(exc: JsonInputError) -> dict[str, list[str]]:
    """The 400's body for a body that is not JSON we can store, on the field the problem is in."""
    if not exc.path:  # the body as a whole: not JSON, not UTF-8, nested too deeply
        return {"body": [f"Send a JSON object: this body is {exc.reason}."]}
    return {exc.path: [exc.reason[:1].upper() + exc.reason[1:] + "."]}


class ContactNamingError(Exception):
    """The delivery names no usable contact; ``errors`` per field of ``contact``."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(errors)
        self.errors = errors


def _enrol(workflow: Workflow, delivery: dict) -> int:
    named = delivery["contact"]
    contact_id = named.get("contact_id")
    if contact_id is not None and not Contact.objects.filter(org=workflow.org, pk=contact_id).exists():
        raise ContactNamingError({"contact_id": [f"No contact with id {contact_id}."]})
    try:
        ref = ref_from(contact_id=contact_id, external_id=named.get("external_id"), email=named.get("email"))
    except ValidationError as exc:
        raise ContactNamingError(exc.message_dict) from exc
    with transaction.atomic():
        # Signed with the workflow's secret: a server-side sender.
        contact = contact_identify(org=workflow.org, ref=ref, reason="webhook", trust=Trust.SERVER)
        return workflow_enrol(
            workflow=workflow,
            contact_ids=[contact.pk],
            trigger_type="webhook",
            trigger_key=f"webhook:{delivery['id']}",
            trigger_data=delivery["data"],
        )
