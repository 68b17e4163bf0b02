"""CORS for the public endpoints (tracking, forms): each org lists the web origins it allows.

CORS alone does not stop a browser from *sending* a simple request (a form post, a text/plain
beacon), so a request whose ``Origin`` the org has not allowed is refused outright (403), not
merely left unreadable. Requests without an ``Origin`` (servers, SDKs, image pixels) pass.
"""

from django.http import HttpRequest, HttpResponse, JsonResponse

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


def cors_preflight(request: HttpRequest) -> HttpResponse:
    """Answers an OPTIONS preflight. The org is not known before the real request (which carries
    the key), so the real request is where the origin is checked."""
    response = HttpResponse(status=204)
    response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    response["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
    response["Access-Control-Max-Age"] = "86400"
    return cors_headers(response, request)
