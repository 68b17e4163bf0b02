"""Public pages of data-subject requests, reached from signed links in the person's email (no login).

The confirmation page verifies only on POST: mail scanners and link previews follow GET links,
and must not confirm a request on the person's behalf.
"""

from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from compliance.data_subject_requests import (
    RequestLinkError,
    request_archive_open,
    request_for_download_token,
    request_for_verify_token,
    request_verify,
)
from compliance.models import RequestStatus

TEMPLATE = "compliance/request_page.html"


@require_http_methods(["GET", "POST"])
def request_verify_page(request: HttpRequest, token: str) -> HttpResponse:
    """``/privacy/requests/confirm/<token>/``: GET shows the request and a Confirm button; POST confirms it."""
    try:
        dsar = request_for_verify_token(token) if request.method == "GET" else request_verify(token=token)
    except RequestLinkError as exc:
        return render(request, TEMPLATE, {"page": "verify", "error": exc.reason}, status=400)
    context = {"page": "verify", "dsar": dsar, "org": dsar.org}
    context["confirmed"] = dsar.status != RequestStatus.UNVERIFIED
    return render(request, TEMPLATE, context)


@require_http_methods(["GET"])
def request_download_page(request: HttpRequest, token: str) -> HttpResponse:
    """``/privacy/requests/download/<token>/``: the archive of a completed access or portability request."""
    try:
        dsar = request_for_download_token(token)
        archive = request_archive_open(request=dsar)
    except RequestLinkError as exc:
        return render(request, TEMPLATE, {"page": "download", "error": exc.reason}, status=400)
    return FileResponse(archive, as_attachment=True, filename=f"personal-data-{dsar.pk}.zip")
