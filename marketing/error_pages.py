"""What the site answers when a URL matches nothing or a view fails: JSON for the machine-facing
routes (the REST API, the tracking API, inbound webhooks), pages for people: in the console, with
its navigation (templates/403.html, 404.html); elsewhere, the plain public page. The 500 page is
static (templates/500.html): it must render when the database or the request is what failed.

A client of ``/api/v1/`` that mistypes an id in a path gets ``{"detail": "Not found."}`` like
every other API error, not an HTML page it cannot parse.
"""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views import defaults

MACHINE_PREFIXES = ("/api/", "/v1/", "/hooks/", "/metrics")


def _for_machines(request: HttpRequest) -> bool:
    return request.path.startswith(MACHINE_PREFIXES)


def _console_page(request: HttpRequest, template: str, status: int) -> HttpResponse | None:
    """The error page inside the console's layout, for a signed-in member on a console path; None
    elsewhere (the public page is Django's default view with the same template)."""
    site = admin.site
    if not request.path.startswith(reverse(f"{site.name}:index")) or not site.has_permission(request):
        return None
    context = {
        **site.each_context(request),
        "error_base": "admin/base_site.html",
        "title": "Page not found" if status == 404 else "Not allowed",
        "request_path": request.path,
        "membership": getattr(request, "membership", None),
    }
    return render(request, template, context, status=status)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _for_machines(request):
        return JsonResponse({"detail": "Bad request."}, status=400)
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _for_machines(request):
        return JsonResponse({"detail": "You do not have permission to do this."}, status=403)
    return _console_page(request, "403.html", 403) or defaults.permission_denied(request, exception)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _for_machines(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return _console_page(request, "404.html", 404) or defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _for_machines(request):
        return JsonResponse({"detail": "Server error: the failure was logged; retry later."}, status=500)
    return defaults.server_error(request)
