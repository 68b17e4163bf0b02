"""Tracking for sites with no SDK: the page-view pixel, public forms, and the snippet's demo page.

(Routes are mounted under /t/ by marketing.urls; the snippet itself is ``static/marketing/track.js``
and sends its page views to the Segment-compatible ``/v1/page``.)

These endpoints are public: a web page calls them with the organisation's *write* key, which is
safe to embed because it can only add events. So they are CSRF-exempt (there is no session to
ride on), refuse an ``Origin`` the org has not allowed (``marketing.cors``), and are rate limited
per client IP (``marketing.client_address.client_ip``, counted from the right of X-Forwarded-For).
Everything they store goes through ``events_ingest`` and ``contact_identify``, like every other
source; see docs/tracking.md.
"""

import base64
import json
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import path
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods
from django_ratelimit.core import is_ratelimited
from redis.exceptions import RedisError

from marketing.api_keys import api_key_from_token
from marketing.client_address import client_ip
from marketing.cors import cors_headers, cors_preflight, cors_refusal
from marketing.email_addresses import normalise_email
from marketing.erased_identities import erased_field, refusal
from marketing.identity import Trust, contact_identify, ref_from
from marketing.ingestion import events_ingest, events_validate
from marketing.json_input import JsonInputError, json_parse, json_problem
from marketing.models import ApiKey, Company, Contact, Organization
from marketing.phone_numbers import normalise_phone
from marketing.services import api_key_create, contact_update
from marketing.tenancy import org_context
from marketing.tracking_consent import Signals, choices_record, gpc_signal, known_contacts, tracking_refusal

logger = logging.getLogger(__name__)

# The smallest transparent GIF (1×1, 43 bytes).
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
UTM_PARAMETERS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
MAX_URL = 2048
MAX_TITLE = 500

# Per client IP. A page view per second is more than a person reads; a person fills in one form
# a few times at most, while a bot fills it in hundreds of times.
PIXEL_RATE = "120/m"
FORM_RATE = "10/m"  # per address and form
# Per address and organisation, whatever the form: slugs are free text (any slug is accepted), so
# a limit per form alone is no limit for a bot that makes up a new slug for every post.
FORM_ORG_RATE = "20/m"
RETRY_AFTER_SECONDS = 60

CONSENT_PURPOSES = ("email_marketing", "sms", "tracking", "profiling", "sale_sharing")
TRUE_VALUES = {"on", "true", "1", "yes"}
RESERVED_FIELDS = {"_k", "_aid", "_hp", "_redirect", "consent_text"} | {f"consent_{p}" for p in CONSENT_PURPOSES}
# Contact fields a form may fill (only where the contact has none yet), with their maximum length.
PROFILE_FIELDS = {"first_name": 100, "last_name": 100, "phone": 20, "job_title": 200, "company": 200}
MAX_FIELDS_BYTES = 32 * 1024  # Segment's limit for one event, which the submission becomes
MAX_ANONYMOUS_ID = 200
MAX_CONSENT_TEXT = 2000
MAX_USER_AGENT = 500

DEMO_ORG_SLUG = "acme"
DEMO_KEY_NAME = "demo site"


# --- shared by the endpoints -------------------------------------------------------------------


def _key_from(raw: Any) -> tuple[ApiKey | None, str | None]:
    """The API key a public call carries (``?k=`` or ``_k``), or None and the reason to show."""
    if not isinstance(raw, str) or not raw.strip():
        return None, "Send the organisation's write key as ?k=mk_… (or a hidden _k form field)."
    return api_key_from_token(raw.strip())


def client_rate_key(group: str, request: HttpRequest) -> str:
    """django-ratelimit's key: the client's address as ``client_ip`` vouches for it (ratelimit's
    own ``"ip"`` key reads ``REMOTE_ADDR``, which is the proxy's, or a header the client wrote)."""
    return client_ip(request)


def _rate_limited(request: HttpRequest, *, group: str, rate: str) -> bool:
    """Counts this request against the client IP's budget in ``group``; True when over it.

    django-ratelimit is used through ``is_ratelimited`` only, so it is not an installed app and
    its system check (which flags Django's own RedisCache as "not officially supported" and the
    embedded LocMem cache as not shared) does not run: Django's RedisCache increments atomically,
    and the embedded mode is a single process. A cache outage lets requests through (logged):
    losing a lead to a Redis blip is worse than a minute without a limit.
    """
    try:
        return is_ratelimited(request, group=group, key=client_rate_key, rate=rate, increment=True)
    except RedisError as exc:
        logger.warning("rate limit unavailable group=%s error=%r", group, exc)
        return False


def _origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of an absolute http(s) URL, lower-cased; None for anything else."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def allowed_url(url: Any, org: Organization) -> str | None:
    """``url`` when it is an absolute http(s) URL on one of the org's allowed origins, else None.

    This is what keeps ``_redirect`` (and the thank-you page's link back) from being an open
    redirect: only sites the org has listed are ever sent to.
    """
    if not isinstance(url, str) or not url:
        return None
    origin = _origin_of(url)
    allowed = {o.rstrip("/").lower() for o in org.allowed_origins}
    if origin is None or origin not in allowed:
        return None
    # Django's own check catches what a plain parse lets through (control characters, "\\", …).
    if not url_has_allowed_host_and_scheme(url, allowed_hosts={urlsplit(origin).netloc}, require_https=False):
        return None
    return url


# --- the pixel ------------------------------------------------------------------------------------


def page_properties(*, url: str, title: str, referrer: str) -> dict[str, str]:
    """A page view's properties: url, path, title, referrer, and the url's utm_* parameters."""
    url, title, referrer = url[:MAX_URL], title[:MAX_TITLE], referrer[:MAX_URL]
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. a broken IPv6 host: keep the raw url, parse nothing out of it
        return {"url": url, "path": "", "title": title, "referrer": referrer}
    properties = {"url": url, "path": parts.path or ("/" if parts.netloc else ""), "title": title, "referrer": referrer}
    query = parse_qs(parts.query)
    for name in UTM_PARAMETERS:
        if query.get(name):
            properties[name] = query[name][0]
    return properties


def page_view_record(*, org: Organization, anonymous_id: str, properties: dict[str, str]):
    """Stores one ``page_view`` (source "pixel") for the visitor with this anonymous id.

    Returns the item's ``ItemResult``. A malformed item is logged, not raised: the pixel answers
    the same image whatever happens, so a page never shows a broken image.
    """
    items, errors = events_validate([{"type": "page_view", "anonymous_id": anonymous_id, "properties": properties}])
    [result] = events_ingest(org=org, items=items, errors=errors, source="pixel", trust=Trust.PUBLIC)
    if result.status == "error":
        logger.warning("pixel event refused org=%s errors=%s", org.slug, json.dumps(result.errors))
    return result


def _pixel_consented(request: HttpRequest, *, org: Organization, anonymous_id: str) -> bool:
    """Whether the tracking regime lets this visitor's page view be stored (``Sec-GPC: 1`` never
    does, and is recorded as an opt-out when the visitor is a contact we know)."""
    _, by_anonymous = known_contacts(org, anonymous_ids=[anonymous_id])
    contact = by_anonymous.get(anonymous_id)
    signals = Signals(gpc=gpc_signal(request.headers))
    if contact is not None and signals.gpc:
        proof = {"ip": client_ip(request), "user_agent": request.headers.get("User-Agent", "")[:MAX_USER_AGENT]}
        choices_record(org=org, contact=contact, signals=signals, proof={**proof, "call": "pixel"})
    reason = tracking_refusal(org=org, contact=contact, signals=signals)
    if reason:
        logger.info("pixel page view %s org=%s", reason, org.slug)
    return reason is None


@require_GET
def pixel(request: HttpRequest) -> HttpResponse:
    """``GET /t/p.gif?k=&aid=&url=&title=&ref=``: a page view, answered with a transparent GIF.

    Without ``aid`` nothing is stored (there is no one to store it for), nor when the tracking
    regime does not allow it (``marketing.tracking_consent``). Without ``url`` the ``Referer``
    header (the page that shows the image) stands in for it.
    """
    key, problem = _key_from(request.GET.get("k"))
    if key is None:
        return JsonResponse({"detail": problem}, status=401)
    org = key.org
    with org_context(org):
        refusal = cors_refusal(request, org)
        if refusal is not None:
            return refusal
        if _rate_limited(request, group="web_tracking.pixel", rate=PIXEL_RATE):
            response = JsonResponse(
                {"detail": f"Too many page views from this address (limit {PIXEL_RATE})."}, status=429
            )
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return cors_headers(response, request)
        anonymous_id = request.GET.get("aid", "").strip()
        if anonymous_id and _pixel_consented(request, org=org, anonymous_id=anonymous_id):
            properties = page_properties(
                url=request.GET.get("url") or request.headers.get("Referer", ""),
                title=request.GET.get("title", ""),
                referrer=request.GET.get("ref", ""),
            )
            page_view_record(org=org, anonymous_id=anonymous_id, properties=properties)
    response = HttpResponse(PIXEL_GIF, content_type="image/gif")
    response["Cache-Control"] = "no-store"
    return cors_headers(response, request)


# --- forms ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FormSubmission:
    """A public form's submission, checked: who sent it, what they typed, what they agreed to."""

    form: str
    email: str
    anonymous_id: str | None
    profile: dict[str, str]  # contact fields given (non-empty, normalised)
    fields: dict[str, Any]  # every non-reserved field, as submitted
    consent: dict[str, Any]  # ticked (or explicitly refused) purposes, the wording, ip, agent, time


def _single(value: Any) -> Any:
    """A field sent several times (a checkbox group) counts by its last value where one is needed."""
    return value[-1] if isinstance(value, list) and value else value


def _consent_given(value: Any) -> bool:
    """A consent checkbox's value: "on"/"true"/"1"/"yes" (or JSON true) is consent.

    Several values count as consent when any of them is, so the common pattern of a hidden
    ``value="false"`` before the checkbox records an explicit "no" when it is left unticked.
    """
    values = value if isinstance(value, list) else [value]
    return any(v is True or (isinstance(v, str) and v.strip().lower() in TRUE_VALUES) for v in values)


def form_submission_clean(
    *, form: str, data: dict[str, Any], org: Organization, ip: str, user_agent: str
) -> FormSubmission:
    """Checks a submission; raises ValidationError naming each bad field (``email`` first)."""
    errors: dict[str, str] = {}
    email = _single(data.get("email"))
    if not isinstance(email, str) or not email.strip():
        errors["email"] = "Enter your email address."
    else:
        try:
            email = normalise_email(email)
        except ValidationError as exc:
            errors["email"] = " ".join(exc.messages)

    profile = {}
    for name, max_length in PROFILE_FIELDS.items():
        value = _single(data.get(name))
        if value is None:
            continue
        if not isinstance(value, str):
            errors[name] = "Must be text."
            continue
        value = value.strip()
        if not value:
            continue
        if name == "phone":
            try:
                value = normalise_phone(value, default_country=org.default_country)
            except ValidationError as exc:
                errors[name] = " ".join(exc.messages)
                continue
        if len(value) > max_length:
            errors[name] = f"At most {max_length} characters."
            continue
        profile[name] = value

    fields = {name: value for name, value in data.items() if name not in RESERVED_FIELDS}
    if len(json.dumps(fields)) > MAX_FIELDS_BYTES:
        errors["fields"] = f"The form sent more than {MAX_FIELDS_BYTES // 1024} KB of fields."

    consent: dict[str, Any] = {
        p: _consent_given(data[f"consent_{p}"]) for p in CONSENT_PURPOSES if f"consent_{p}" in data
    }
    if consent:
        text = _single(data.get("consent_text"))
        consent.update(
            text=text[:MAX_CONSENT_TEXT] if isinstance(text, str) else None,
            ip=ip,
            user_agent=user_agent[:MAX_USER_AGENT],
            at=timezone.now().isoformat(),
        )

    anonymous_id = _single(data.get("_aid"))
    if not isinstance(anonymous_id, str) or not anonymous_id.strip() or len(anonymous_id) > MAX_ANONYMOUS_ID:
        # Set by track.js; a missing or mangled one only means the visit history is not joined.
        anonymous_id = None

    if errors:
        raise ValidationError(errors)
    return FormSubmission(
        form=form,
        email=email,
        anonymous_id=anonymous_id.strip() if anonymous_id else None,
        profile=profile,
        fields=fields,
        consent=consent,
    )


def _empty_fields_filled(org: Organization, contact: Contact, profile: dict[str, str]) -> dict[str, Any]:
    """The profile values for fields the contact has no value in yet.

    A public form must not overwrite what is known: anyone can type anyone's email into it.
    ``company`` links an existing company of that name; a form never creates companies (the
    name stays in the event's fields for a person to act on).
    """
    changes: dict[str, Any] = {}
    for name, value in profile.items():
        if name == "company":
            if contact.company_id is None:
                company = Company.objects.filter(org=org, name__iexact=value).order_by("pk").first()
                if company is not None:
                    changes["company"] = company
        elif not getattr(contact, name):
            changes[name] = value
    return changes


def form_submission_record(*, org: Organization, submission: FormSubmission) -> Contact:
    """Stores a submission: the contact (found, created or merged), its empty fields, one event.

    With an anonymous id (from track.js) the visitor's history joins the contact: when the id
    belongs to an anonymous contact, ``contact_identify`` merges it into the known one. When it
    belongs to another known contact nothing merges (anyone can type any email): the submission
    goes to the typed email's contact and an ``IdentityConflict`` is recorded for review.
    """
    with transaction.atomic():
        ref = ref_from(email=submission.email, anonymous_id=submission.anonymous_id)
        erased = erased_field(org=org, email=ref.email, phone=submission.profile.get("phone"))
        if erased:
            # The visitor is told only that it was not stored, not that the address was erased.
            raise ValidationError({erased: refusal(public=True)})
        summary = {"call": "form", "form": submission.form, "fields": sorted(submission.fields)[:50]}  # no values
        contact = contact_identify(org=org, ref=ref, reason="form", trust=Trust.PUBLIC, summary=summary)
        contact = Contact.objects.select_for_update().get(org=org, pk=contact.pk)
        changes = _empty_fields_filled(org, contact, submission.profile)
        if changes:
            try:
                contact = contact_update(contact=contact, **changes)
            except ValidationError as exc:
                # Something already stored on the contact fails validation; the submission (and
                # its consent) must still be kept, so the fields stay unfilled and we say so.
                logger.warning(
                    "form could not fill contact fields org=%s form=%s contact=%s errors=%s",
                    org.slug,
                    submission.form,
                    contact.pk,
                    json.dumps(exc.message_dict if hasattr(exc, "error_dict") else exc.messages),
                )
                contact.refresh_from_db()
        properties = {"form": submission.form, "fields": submission.fields, "consent": submission.consent}
        items, errors = events_validate(
            [
                {
                    "type": "form_submitted",
                    "contact_id": contact.pk,
                    "properties": properties,
                    "message_id": str(uuid.uuid4()),  # forms are not retried by clients
                }
            ]
        )
        [result] = events_ingest(org=org, items=items, errors=errors, source="form", trust=Trust.PUBLIC)
        if result.status == "error":
            # E.g. an event property of the same name typed otherwise by another source. Roll the
            # contact back too: a half-stored submission would lose its consent evidence.
            logger.error(
                "form event refused org=%s form=%s errors=%s", org.slug, submission.form, json.dumps(result.errors)
            )
            raise ValidationError(result.errors)
    return contact


def _input_error(exc: JsonInputError) -> ValidationError:
    """A ValidationError on the field the problem is in (``body`` for the whole body or a key)."""
    return ValidationError({exc.path or "body": exc.reason[:1].upper() + exc.reason[1:] + "."})


def json_object(body: bytes, *, expected: str) -> dict[str, Any]:
    """A request body parsed as a JSON object, or a ValidationError naming where it is bad: not
    JSON, nested too deeply, or holding what cannot be stored (NUL, lone surrogates, NaN);
    ``expected`` says what to send instead of something that is not an object."""
    try:
        data = json_parse(body or b"{}")
    except JsonInputError as exc:
        raise _input_error(exc) from None
    if not isinstance(data, dict):
        raise ValidationError({"body": expected})
    return data


def _submitted(request: HttpRequest) -> dict[str, Any]:
    """The submitted fields: a JSON object, or a form (several values of one name become a list)."""
    if request.content_type == "application/json":
        return json_object(request.body, expected="Send a JSON object of field names and values.")
    data = {name: values if len(values) > 1 else values[0] for name, values in request.POST.lists()}
    problem = json_problem(data)  # a NUL typed into a field: PostgreSQL cannot store it
    if problem is not None:
        raise _input_error(problem)
    return data


def _wants_json(request: HttpRequest) -> bool:
    return request.content_type == "application/json" or "application/json" in request.headers.get("Accept", "")


def _form_problem(
    request: HttpRequest,
    *,
    status: int,
    errors: dict[str, str] | None = None,
    message: str = "",
    org: Organization | None = None,
) -> HttpResponse:
    """A 4xx for a form: JSON for scripts, a small page for a person whose browser posted."""
    if _wants_json(request):
        return JsonResponse({"errors": errors} if errors else {"detail": message}, status=status)
    back = allowed_url(request.headers.get("Referer"), org) if org is not None else None
    return render(
        request,
        "marketing/form_error.html",
        {"errors": errors or {}, "message": message, "back_url": back},
        status=status,
    )


def _form_success(
    request: HttpRequest, *, org: Organization, data: dict[str, Any], contact_id: int | None
) -> HttpResponse:
    """JSON for scripts; for a browser, a 303 to an allowed ``_redirect`` or the thank-you page."""
    if _wants_json(request):
        return JsonResponse({"ok": True, "contact_id": contact_id})
    redirect = _single(data.get("_redirect"))
    target = allowed_url(redirect, org)
    if target is not None:
        response = HttpResponseRedirect(target)
        response.status_code = 303  # "see other": the browser GETs the page, never re-POSTs
        return response
    if redirect:
        logger.info(
            "form redirect ignored org=%s reason=origin-not-allowed origin=%s", org.slug, _origin_of(str(redirect))
        )
    back = allowed_url(request.headers.get("Referer"), org)
    return render(request, "marketing/form_thanks.html", {"org": org, "back_url": back})


def _form_limited(request: HttpRequest, *, org: Organization, form: str) -> bool:
    """Counts a submission per address and form and per address and organisation; True when
    over either (both are counted, so a burst on one form also spends the organisation's)."""
    per_form = _rate_limited(request, group=f"web_tracking.form:{org.pk}:{form}", rate=FORM_RATE)
    per_org = _rate_limited(request, group=f"web_tracking.form-org:{org.pk}", rate=FORM_ORG_RATE)
    return per_form or per_org


def _form_handle(request: HttpRequest, *, org: Organization, form: str, data: dict[str, Any]) -> HttpResponse:
    if _form_limited(request, org=org, form=form):
        response = _form_problem(
            request,
            status=429,
            message="Too many submissions of this form from your network. Please wait a minute and try again.",
        )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    if _single(data.get("_hp")):
        # The honeypot field is hidden from people; only bots fill it in. They get the same
        # answer as anyone, so they learn nothing, and nothing is stored.
        logger.info("form honeypot filled org=%s form=%s ip=%s", org.slug, form, client_ip(request))
        return _form_success(request, org=org, data=data, contact_id=None)
    try:
        submission = form_submission_clean(
            form=form, data=data, org=org, ip=client_ip(request), user_agent=request.headers.get("User-Agent", "")
        )
        contact = form_submission_record(org=org, submission=submission)
    except ValidationError as exc:
        errors = {k: " ".join(v) for k, v in exc.message_dict.items()}
        return _form_problem(request, status=400, errors=errors, org=org)
    signals = Signals(gpc=gpc_signal(request.headers))
    if signals.gpc:
        # Global Privacy Control sent with the form: the person opts out of tracking and of
        # sale or sharing, recorded as for a tracked call; what the form granted still stands.
        proof = {"ip": client_ip(request), "user_agent": request.headers.get("User-Agent", "")[:MAX_USER_AGENT]}
        choices_record(org=org, contact=contact, signals=signals, proof={**proof, "call": "form"})
    return _form_success(request, org=org, data=data, contact_id=contact.pk)


@csrf_exempt  # public, authenticated by the org's write key (no session to forge); Origin checked per org
@require_http_methods(["POST", "OPTIONS"])
def form_submit(request: HttpRequest, form_slug: str) -> HttpResponse:
    """``POST /t/forms/<slug>/``: a plain HTML form (or JSON) becomes a contact and an event."""
    if request.method == "OPTIONS":
        return cors_preflight(request)
    try:
        data = _submitted(request)
    except ValidationError as exc:
        return JsonResponse({"errors": {k: " ".join(v) for k, v in exc.message_dict.items()}}, status=400)
    key, problem = _key_from(request.GET.get("k") or _single(data.get("_k")))
    if key is None:
        return JsonResponse({"detail": problem}, status=401)
    org = key.org
    with org_context(org):
        refusal = cors_refusal(request, org)
        if refusal is not None:
            return refusal
        response = _form_handle(request, org=org, form=form_slug, data=data)
    return cors_headers(response, request)


# --- the demo page ------------------------------------------------------------------------------


def demo_write_key(org: Organization) -> str:
    """The raw "demo site" write key of the demo org, created on first use.

    Only a hash of a key is stored, so the raw key is kept in ``var/demo_write_key`` (like the
    development SECRET_KEY) and reused while it still works.
    """
    key_file = Path(settings.VAR_DIR) / "demo_write_key"
    if key_file.exists():
        raw = key_file.read_text().strip()
        key, _ = api_key_from_token(raw)
        if key is not None and key.org_id == org.pk and key.scope == ApiKey.Scope.WRITE:
            return raw
    _, raw = api_key_create(org=org, name=DEMO_KEY_NAME, scope=ApiKey.Scope.WRITE)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_text(raw)
    key_file.chmod(0o600)
    return raw


@require_GET
def demo(request: HttpRequest) -> HttpResponse:
    """``/t/demo/`` (DEBUG only): a page with track.js and a newsletter form, to watch it work."""
    if not settings.DEBUG:
        raise Http404("The tracking demo is only served with DEBUG on.")
    org = Organization.objects.filter(slug=DEMO_ORG_SLUG).first()
    if org is None:
        raise Http404("No demo organisation 'acme': run `python manage.py seed_demo` first.")
    with org_context(org):
        write_key = demo_write_key(org)
    host = f"{request.scheme}://{request.get_host()}"
    context = {
        "org": org,
        "write_key": write_key,
        "host": host,
        "origin_allowed": host.lower() in {o.rstrip("/").lower() for o in org.allowed_origins},
        "thanks": "thanks" in request.GET,
    }
    return render(request, "marketing/tracking_demo.html", context)


urlpatterns = [
    path("p.gif", pixel, name="tracking-pixel"),
    path("forms/<slug:form_slug>/", form_submit, name="tracking-form"),
    path("demo/", demo, name="tracking-demo"),
]
