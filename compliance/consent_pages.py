"""The page a double opt-in email's link opens (``/privacy/consent/confirm/<token>/``), no login.

GET shows what is to be confirmed and a button; only the POST confirms: mail scanners and link
previews follow GET links and must not give consent on the person's behalf.
"""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from compliance.double_opt_in import (
    ConsentLinkError,
    pending_consent_confirm,
    pending_consent_for_token,
    purposes_text,
)
from marketing.client_address import client_ip

TEMPLATE = "compliance/consent_confirm.html"


@never_cache
@require_http_methods(["GET", "POST"])
def consent_confirm_page(request: HttpRequest, token: str) -> HttpResponse:
    """GET: what the person agreed to and a Confirm button; POST: the grants are recorded."""
    try:
        if request.method == "POST":
            pending = pending_consent_confirm(
                token=token, ip=client_ip(request), user_agent=request.headers.get("User-Agent", "")
            )
        else:
            pending = pending_consent_for_token(token)
    except ConsentLinkError as exc:
        return render(request, TEMPLATE, {"error": exc.reason}, status=400)
    context = {
        "org": pending.org,
        "email": pending.contact.email,
        "purposes": purposes_text(pending.purposes),
        "confirmed": pending.confirmed_at is not None,
    }
    return render(request, TEMPLATE, context)
