"""CORS for the public endpoints (tracking, forms): each org lists the web origins it allows.

CORS alone does not stop a browser from *sending* a simple request (a form post, a text/plain
beacon), so a request whose ``Origin`` the org has not allowed is refused outright (403), not
merely left unreadable. Requests without an ``Origin`` (servers, SDKs, image pixels) pass. A
preflight (no key, so no org) is granted only to an origin some organisation allows.
"""

from django.db import connection
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse

from marketing.models import Organization

ALLOWED_HEADERS = "Content-Type, Authorization, Content-Encoding"


def origin_allowed(request: HttpRequest, org) -> bool:
    """True when the request has no Origin, or its Origin is on the org's allowed list."""
    origin = request.headers.get("Origin")
    return origin is None or normalise_origin(origin) in {normalise_origin(o) for o in org.allowed_origins}


def normalise_origin(value: str) -> str:
    """Origins compare case-insensitively and without a trailing slash."""
    return value.strip().rstrip("/").lower()


def cors_refusal(request: HttpRequest, org) -> HttpResponse | None:
    """A 403 to return when the org does not allow the request's Origin, else None."""
    if origin_allowed(request, org):
        return None
    return JsonResponse(
        {
            "detail": f"Origin {request.headers['Origin']} is not allowed for this organisation; "
            "add it to the organisation's allowed origins."
        },
        status=403,
    )


def cors_headers(response: HttpResponse, request: HttpRequest) -> HttpResponse:
    """Adds the headers that let the (already allowed) calling page read the response."""
    origin = request.headers.get("Origin")
    if origin:
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Credentials"] = "true"
    response["Vary"] = "Origin"
    return response


def origin_allowed_anywhere(origin: str) -> bool:
    """True when some organisation lists ``origin`` among its allowed origins (one query)."""
    wanted = normalise_origin(origin)
    if connection.vendor == "postgresql":
        # jsonb containment: the lists are stored normalised (Organization.clean); the origin as
        # sent covers a list written around clean().
        as_sent = Q(allowed_origins__contains=[origin.strip()]) if origin.strip() != wanted else Q()
        return Organization.objects.filter(Q(allowed_origins__contains=[wanted]) | as_sent).exists()
    # SQLite (the embedded mode) has no JSON containment; it holds a handful of organisations.
    lists = Organization.objects.values_list("allowed_origins", flat=True)
    return any(wanted in {normalise_origin(o) for o in origins if isinstance(o, str)} for origins in lists)


def cors_preflight(request: HttpRequest) -> HttpResponse:
    """Answers an OPTIONS preflight. It carries no key, so the org is not known: the origin is
    granted (with credentials) only when some organisation allows it, and the real request is
    checked against its own org. Any other origin gets no ``Access-Control-Allow-Origin``, so the
    browser never sends the real request."""
    response = HttpResponse(status=204)
    response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    response["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
    response["Access-Control-Max-Age"] = "86400"
    origin = request.headers.get("Origin")
    if origin and not origin_allowed_anywhere(origin):
        response["Vary"] = "Origin"
        return response
    return cors_headers(response, request)
