"""How the REST API authenticates, authorises, paginates and reports errors.

Two callers: an API key (``Authorization: Bearer …``), and the console's own pages, which call
the same API with the logged-in session (CSRF enforced on writes). The org of a request is
resolved once by ``CurrentOrgMiddleware`` (the key's org, or the session's current org); these
classes read that result, so the key and the session are checked in one place. Either way
``request.auth.org`` is the org a view acts for.

A server key may use the whole API of its org; a write key only tracking and forms. A session may
do what its role in the current org allows (``marketing.roles``), model by model.
"""

from dataclasses import dataclass

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions, pagination, permissions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication

from marketing.models import ApiKey, Membership, Organization

# POST actions that compute an answer and write nothing: reading the model is enough.
COMPUTING_ACTIONS = frozenset({"validate", "dry_run", "projection", "preview"})


class ApiKeyAuthentication(BaseAuthentication):
    """``Authorization: Bearer mk_<id>_<secret>``; the request then acts for the key's org."""

    def authenticate(self, request):
        django_request = request._request
        if getattr(django_request, "api_key", None) is not None:
            return (None, django_request.api_key)
        if getattr(django_request, "api_key_error", None):
            raise exceptions.AuthenticationFailed(django_request.api_key_error)
        return None

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class ApiKeySchema(OpenApiAuthenticationExtension):
    """Documents the API key as an HTTP bearer scheme in the OpenAPI schema."""

    target_class = ApiKeyAuthentication
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "mk_<id>_<secret>"}


@dataclass(frozen=True)
class ConsoleSession:
    """``request.auth`` of a console session: the org it acts in and the user's membership there
    (None for a superuser who is not a member). Views read ``request.auth.org`` as for a key."""

    org: Organization | None
    membership: Membership | None


class ConsoleSessionAuthentication(SessionAuthentication):
    """The console's logged-in session, acting in the session's current org; DRF enforces the
    CSRF token on unsafe methods (a page sends it as ``X-CSRFToken``)."""

    def authenticate(self, request):
        django_request = request._request
        if django_request.headers.get("Authorization", "").lower().startswith("bearer "):
            return None  # a key, good or bad, is the key authentication's answer
        found = super().authenticate(request)
        if found is None:
            return None
        session = ConsoleSession(getattr(django_request, "org", None), getattr(django_request, "membership", None))
        return (found[0], session)


class ConsoleSessionSchema(OpenApiAuthenticationExtension):
    """Documents the console's session (the ``sessionid`` cookie) in the OpenAPI schema."""

    target_class = ConsoleSessionAuthentication
    name = "ConsoleSession"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}


class HasServerKey(permissions.BasePermission):
    """The API's default: a server-scope key (the full API of its org; write keys may only track
    and submit forms), or a console session whose role in the current org grants the action on
    the view's model (``marketing.roles``): GET reads (view), POST creates (add; a POST on one
    object, change), PUT and PATCH change, DELETE deletes. A view names its model with ``model``
    or ``permission_model``, and overrides an action's verb with ``permission_actions``
    (``{"preview": "view"}``; a plain APIView keys it by method, ``{"post": "view"}``)."""

    message = "This endpoint needs a server API key; write keys may only send tracking calls."

    def has_permission(self, request, view) -> bool:
        auth = request.auth
        if isinstance(auth, ConsoleSession):
            return _session_may(request, view)
        if not isinstance(auth, ApiKey):
            raise exceptions.NotAuthenticated("Send an API key: Authorization: Bearer mk_<id>_<secret>.")
        return auth.scope == ApiKey.Scope.SERVER


def _session_may(request, view) -> bool:
    """Whether the session's role grants the view's model action; refuses with a sentence."""
    org = request.auth.org
    if org is None:
        raise exceptions.PermissionDenied("You are not a member of any organisation; ask an admin to invite you.")
    model = getattr(view, "permission_model", None) or getattr(view, "model", None)
    if model is None:
        raise exceptions.PermissionDenied("This endpoint takes an API key only.")
    name = getattr(view, "action", None) or request.method.lower()
    verb = getattr(view, "permission_actions", {}).get(name) or _verb(request.method, name)
    opts = model._meta
    if request.user.has_perm(f"{opts.app_label}.{verb}_{opts.model_name}"):
        return True
    membership = request.auth.membership
    role = membership.get_role_display().lower() if membership else "account"
    raise exceptions.PermissionDenied(
        f"Your role ({role}) may not {verb} {opts.verbose_name_plural} in {org.name}; ask an admin of the organisation."
    )


def _verb(method: str, action: str) -> str:
    if method in permissions.SAFE_METHODS or action in COMPUTING_ACTIONS:
        return "view"
    if method == "POST":
        return "add" if action in ("create", "post") else "change"
    if method == "DELETE" and action in ("destroy", "delete"):
        return "delete"
    return "change"  # PUT, PATCH, and DELETE of a part (a segment's members)


class HasTrackingKey(permissions.BasePermission):
    """Any key of the org: write keys exist for exactly these endpoints (tracking, forms)."""

    def has_permission(self, request, view) -> bool:
        if not isinstance(request.auth, ApiKey):
            raise exceptions.NotAuthenticated("Send an API key: Authorization: Bearer mk_<id>_<secret>.")
        return True


class Pagination(pagination.PageNumberPagination):
    """``{"count", "next", "previous", "results"}``; ``?page=`` and ``?page_size=`` (max 500)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


def exception_handler(exc, context):
    """DRF's handler, plus Django ValidationErrors from services as 400 with per-field messages."""
    from rest_framework.views import exception_handler as drf_exception_handler  # DRF imports us

    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(detail)
    return drf_exception_handler(exc, context)
