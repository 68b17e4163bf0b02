"""What the site answers when a URL matches nothing or a view fails: JSON for the machine-facing
routes (the REST API, the tracking API, inbound webhooks), Django's pages for people.

A client of ``/api/v1/`` that mistypes an id in a path gets ``{"detail": "Not found."}`` like
every other API error, not an HTML page it cannot parse.
"""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

MACHINE_PREFIXES = ("/api/", "/v1/", "/hooks/", "/metrics")


def _for_machines(request: HttpRequest) -> bool:
    return request.path.startswith(MACHINE_PREFIXES)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _for_machines(request):
        return JsonResponse({"detail": "Bad request."}, status=400)
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _for_machines(request):
        return JsonResponse({"detail": "You do not have permission to do this."}, status=403)
    return defaults.permission_denied(request, exception)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _for_machines(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _for_machines(request):
        return JsonResponse({"detail": "Server error: the failure was logged; retry later."}, status=500)
    return defaults.server_error(request)
