"""Anymail's ESP webhook views (``/hooks/esp/…``), each behind a guard: bad input is a 4xx.

Anymail's views trust that a request which passed their auth check carries the ESP's payload:
a JSON list where Postmark sends an object, ``"x"``, JSON nested 10,000 deep, or any post to an
ESP whose keys are not configured (anymail raises ``AnymailConfigurationError`` per request)
ended as a 500, and an ESP retries a 5xx for days. The guard answers instead:

- 404 ``{"detail": …}`` for an ESP whose keys are not configured here (the log names the setting);
- 400 ``{"detail": …}`` for a body that is not acceptable JSON (``marketing.json_input``: nesting,
  NaN, NUL, lone surrogates, naming the field) or that the ESP's parser cannot read.

Only reading the request (anymail's validators and parser) is guarded; what our receiver does
with a parsed report (``channels_app.esp_tracking``) still fails loudly, so the ESP retries it.
The URL names stay anymail's (``anymail:postmark_tracking_webhook``).
"""

import logging
from functools import wraps

from anymail import urls as anymail_urls
from anymail.exceptions import AnymailAPIError, AnymailConfigurationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern

from marketing.json_input import JsonInputError, json_parse

logger = logging.getLogger(__name__)

app_name = "anymail"

# What anymail's parsers raise on a payload of the wrong shape (an AnymailAPIError is how the
# Amazon SES views say "malformed"); anymail's own auth failures are SuspiciousOperation (a 400).
UNREADABLE = (AnymailAPIError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError)


class EspPayloadError(Exception):
    """The request is not a payload of this ESP; ``str()`` says why, for the 400."""


def _json_checked(request: HttpRequest) -> None:
    """Refuses a JSON body we could not store (checked before the ESP's parser reads it)."""
    if request.content_type.startswith("multipart/"):
        return  # inbound mail as a form upload: no JSON body to check
    if request.body.lstrip()[:1] not in (b"{", b"["):
        return  # not JSON (a form post, or junk the ESP's parser refuses)
    try:
        json_parse(request.body)
    except JsonInputError as exc:
        raise EspPayloadError(f"The body is not acceptable JSON: {exc}.") from None


def _guarded_class(view_class: type) -> type:
    """``view_class`` with its validators and parser turning unreadable input into EspPayloadError."""

    class Guarded(view_class):
        def run_validators(self, request):
            _json_checked(request)
            try:
                super().run_validators(request)
            except UNREADABLE as exc:  # a signature check that parses the body first
                raise EspPayloadError(f"The body is not a {self.esp_name} webhook payload ({exc}).") from None

        def parse_events(self, request):
            try:
                return super().parse_events(request)
            except UNREADABLE as exc:
                raise EspPayloadError(f"The body is not a {self.esp_name} webhook payload ({exc}).") from None

    Guarded.__name__ = Guarded.__qualname__ = view_class.__name__
    Guarded.__module__ = view_class.__module__
    return Guarded


def esp_webhook_guard(view_class: type):
    """The view function of anymail's ``view_class`` that answers 4xx for bad input (module docstring)."""
    view = _guarded_class(view_class).as_view()

    @wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except AnymailConfigurationError as exc:  # raised when anymail builds the view, per request
            esp = getattr(view_class, "esp_name", view_class.__name__)
            logger.warning("esp webhook not configured esp=%s path=%s error=%s", esp, request.path, exc)
            return JsonResponse({"detail": f"The {esp} webhook is not set up on this server."}, status=404)
        except EspPayloadError as exc:
            logger.info("esp webhook refused path=%s reason=%s", request.path, str(exc)[:300])
            return JsonResponse({"detail": str(exc)}, status=400)

    return guarded


urlpatterns = [
    URLPattern(pattern.pattern, esp_webhook_guard(pattern.callback.view_class), pattern.default_args, pattern.name)
    for pattern in anymail_urls.urlpatterns
]
