"""How the REST API authenticates, authorises, paginates and reports errors.

The org of an API request is its key's org, resolved once by ``CurrentOrgMiddleware``; these
classes read that result, so the key is parsed and checked in one place.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions, pagination, permissions
from rest_framework.authentication import BaseAuthentication

from marketing.models import ApiKey


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


class HasServerKey(permissions.BasePermission):
    """A server-scope key: the full API of its org. Write keys may only track and submit forms."""

    message = "This endpoint needs a server API key; write keys may only send tracking calls."

    def has_permission(self, request, view) -> bool:
        key = request.auth
        if not isinstance(key, ApiKey):
            raise exceptions.NotAuthenticated("Send an API key: Authorization: Bearer mk_<id>_<secret>.")
        return key.scope == ApiKey.Scope.SERVER


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
