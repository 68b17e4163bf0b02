"""Which organisation a request, task or command acts for, and the scoping that follows from it.

Tenant models use django-scopes' manager: inside ``org_context(org)`` their querysets are
filtered to that org; outside any context they raise ``ScopeError`` rather than return every
tenant's rows. The request's org comes from its API key, or for the console from the session
(the org switcher), defaulting to the user's first membership.

On PostgreSQL, ``org_context`` also names the org to the database: it writes the session
setting ``app.org_id``, which the row-level security policies compare each row's ``org_id``
with (docs/tenancy.md, "Row-level security"). It is the only writer of that setting.
"""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from django_scopes import scope

from marketing.database_roles import system_alias

SESSION_KEY = "org_id"


@dataclass(frozen=True)
class OrgContext:
    org: "Organization | None"  # noqa: F821
    membership: "Membership | None"  # noqa: F821


_current: ContextVar[OrgContext | None] = ContextVar("org_context", default=None)
_NONE = OrgContext(None, None)


def _org_setting() -> str:
    """The value ``app.org_id`` should have now: the current org's id, or '' (no org)."""
    org = (_current.get() or _NONE).org
    return str(org.pk) if org is not None else ""


def org_setting_write(connection=None) -> None:
    """Writes the current org into the PostgreSQL session setting ``app.org_id``.

    Skipped where there is nothing to write to: another database, a connection not yet open
    (``org_setting_on_connect`` writes it when it opens), a transaction already failed (its
    rollback undoes what it wrote), or an event loop's thread (Django's async code reaches the
    database from worker threads, which enter their own context).
    """
    if connection is None:
        from django.db import connection
    if connection.vendor != "postgresql" or connection.connection is None or connection.needs_rollback:
        return
    from psycopg.pq import TransactionStatus

    if connection.connection.info.transaction_status == TransactionStatus.INERROR:
        return
    try:
        asyncio.get_running_loop()
        return
    except RuntimeError:
        pass
    # On the driver's connection, not through Django's cursor: this is connection state, not one
    # of the app's queries (query-count assertions and logs keep counting only those).
    connection.connection.execute("SELECT set_config('app.org_id', %s, false)", [_org_setting()])


def org_setting_on_connect(sender, connection, **kwargs) -> None:
    """``connection_created``: a connection opened inside ``org_context`` gets the org too."""
    if connection.alias == "default" and _org_setting():
        org_setting_write(connection)


def org_setting_reset(**kwargs) -> None:
    """``request_started`` and Celery's ``task_postrun``: a reused connection starts with no
    org, whatever the previous request or task left (its ``org_context`` restores the setting
    on exit, unless the transaction had failed by then)."""
    from django.db import connection

    if _current.get() is None:
        org_setting_write(connection)


@contextmanager
def org_context(org, *, membership=None) -> Iterator[None]:
    """Runs the block as ``org``: tenant querysets see only its rows (and on PostgreSQL, the
    row-level security policies only its rows); the previous org is back after the block."""
    token = _current.set(OrgContext(org, membership))
    try:
        org_setting_write()
        with scope(org=org.pk):
            yield
    finally:
        _current.reset(token)
        org_setting_write()


@contextmanager
def no_org() -> Iterator[None]:
    """Runs the block with no org: tenant querysets are empty (not unscoped)."""
    token = _current.set(_NONE)
    try:
        org_setting_write()
        with scope(org=[]):
            yield
    finally:
        _current.reset(token)
        org_setting_write()


def current_org():
    """The organisation the current request, task or command acts for, or None."""
    return (_current.get() or _NONE).org


def current_membership():
    """The current user's membership in the current org (None for API keys and superusers)."""
    return (_current.get() or _NONE).membership


def orgs_for_user(user):
    """The organisations a user may switch to: all for superusers, else their memberships'."""
    from marketing.models import Membership, Organization

    if not user.is_authenticated:
        return Organization.objects.none()
    if user.is_superuser:
        return Organization.objects.all()
    # A list, not a subquery: memberships are read as system (before an org is chosen).
    member_of = list(
        Membership.objects.with_scopes_disabled()
        .using(system_alias())
        .filter(user=user)
        .values_list("org_id", flat=True)
    )
    return Organization.objects.filter(pk__in=member_of)


def _resolve(request: HttpRequest):
    """Returns (org, membership) for the request: by API key, else by session and membership."""
    from marketing.api_keys import api_key_from_header
    from marketing.models import Membership

    request.api_key = None
    request.api_key_error = None
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        request.api_key, request.api_key_error = api_key_from_header(header)
        return (request.api_key.org, None) if request.api_key else (None, None)

    user = request.user
    if not user.is_authenticated:
        return None, None
    memberships = {
        m.org_id: m
        for m in Membership.objects.with_scopes_disabled()
        .using(system_alias())
        .filter(user=user)
        .select_related("org")
        .order_by("org__name")
    }
    wanted = request.session.get(SESSION_KEY)
    if wanted in memberships:
        return memberships[wanted].org, memberships[wanted]
    if user.is_superuser:
        org = orgs_for_user(user).filter(pk=wanted).first() if wanted else None
        if org:
            return org, None
    if memberships:
        membership = next(iter(memberships.values()))
        return membership.org, membership
    if user.is_superuser:
        return orgs_for_user(user).first(), None
    return None, None


class CurrentOrgMiddleware:
    """Resolves ``request.org`` and runs the rest of the request inside its org context."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        org, membership = _resolve(request)
        request.org, request.membership = org, membership
        context = org_context(org, membership=membership) if org else no_org()
        with context:
            return self.get_response(request)


def current_org_context(request: HttpRequest) -> dict:
    """Template context: the current org and, for the switcher, the orgs the user may pick."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "current_org": getattr(request, "org", None),
        "switchable_orgs": lambda: list(orgs_for_user(user).only("pk", "name")),
    }


@require_POST
@login_required
def org_switch(request: HttpRequest) -> HttpResponse:
    """The console's org switcher: remembers the chosen org in the session."""
    try:
        org_id = int(request.POST.get("org", ""))
    except ValueError:
        return HttpResponseBadRequest("Choose an organisation.")
    if not orgs_for_user(request.user).filter(pk=org_id).exists():
        return HttpResponseBadRequest("You are not a member of that organisation.")
    request.session[SESSION_KEY] = org_id
    target = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    if not safe:
        target = reverse("admin:index")
    return HttpResponseRedirect(target)
