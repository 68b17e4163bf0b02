"""The audit log: who did what to which of an org's rows, and who read personal data.

``audit_record`` writes one ``AuditEntry``. It takes the actor and the source from the context
the work runs in, set by ``audit_context``: ``AuditContextMiddleware`` for requests (the console,
the API, public pages), a Celery hook for tasks; a command or a shell with no context is
recorded as the command. The same context goes to django-pghistory, so a change to a
configuration model (a workflow, a template, a scoring rule…) is stored with who made it.

An entry names fields, never values: callers pass field names (``fields=("email", "phone")``),
and a name that does not look like one (an address, a sentence) is refused. What is recorded,
and what never is, is in docs/audit.md.
"""

import logging
import re
import sys
import uuid
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta

import pghistory
from celery import signals
from django.db import DatabaseError, connection, transaction
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from marketing.models import ApiKey, AuditEntry, Organization, User
from marketing.tenancy import current_org

logger = logging.getLogger(__name__)

Source = AuditEntry.Source
Verb = AuditEntry.Verb

FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]{0,99}$")  # "email", "properties.plan"
VERB = re.compile(r"^[a-z_]{1,20}$")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,32}$")


@dataclass(frozen=True)
class AuditActor:
    """Who the current work acts as, and through what."""

    source: str
    user: User | None = None
    api_key: ApiKey | None = None
    label: str = ""
    request_id: str = ""


_actor: ContextVar[AuditActor | None] = ContextVar("audit_actor", default=None)


def current_actor() -> AuditActor:
    """The actor of the current request or task; a command (or shell) when none is set."""
    actor = _actor.get()
    if actor is not None:
        return actor
    command = sys.argv[1] if len(sys.argv) > 1 and sys.argv[0].endswith("manage.py") else ""
    return AuditActor(source=Source.COMMAND, label=f"manage.py {command}" if command else "system")


def _label(*, user: User | None, api_key: ApiKey | None, label: str) -> str:
    if label:
        return label[:150]
    if user is not None:
        return user.get_username()[:150]
    if api_key is not None:
        return f"API key {api_key.name} ({api_key.prefix})"[:150]
    return ""


@contextmanager
def audit_context(
    *, source: str, user: User | None = None, api_key: ApiKey | None = None, label: str = "", request_id: str = ""
) -> Iterator[AuditActor]:
    """Runs the block as this actor: audit entries and pghistory events written in it name them.

    Commands that change data on someone's behalf wrap their work in it
    (``audit_context(source=Source.COMMAND, label="manage.py dsar_erase")``).
    """
    actor = AuditActor(
        source=source,
        user=user,
        api_key=api_key,
        label=_label(user=user, api_key=api_key, label=label),
        request_id=request_id,
    )
    token = _actor.set(actor)
    try:
        with ExitStack() as stack:
            if connection.vendor == "postgresql":  # pghistory's context is a PostgreSQL setting
                stack.enter_context(pghistory.context(**_history_context(actor)))
            yield actor
    finally:
        _actor.reset(token)


def _history_context(actor: AuditActor) -> dict:
    """pghistory's context metadata: ids and labels, never a request's parameters."""
    metadata = {"source": actor.source, "actor": actor.label}
    if actor.user is not None:
        metadata["user"] = actor.user.pk
    if actor.api_key is not None:
        metadata["api_key"] = actor.api_key.pk
    if actor.request_id:
        metadata["request_id"] = actor.request_id
    return metadata


def audit_record(
    *,
    org=None,
    verb: str,
    target=None,
    target_type: str = "",
    target_id: str | int | None = None,
    fields: Iterable[str] = (),
    count: int | None = None,
    actor: User | ApiKey | str | None = None,
    source: str | None = None,
) -> AuditEntry:
    """Records that the current actor did ``verb`` to ``target`` (a model instance) or to
    ``target_type`` (``app_label.model``) + ``target_id``, touching ``fields`` (names only).

    ``org`` defaults to the current org; ``actor`` (a user, an API key or a label such as a task
    name) and ``source`` default to the current context's. ``count`` is for lists and exports:
    how many rows were read. Raises ``ValueError`` on a verb or a field name that is not one.
    """
    org = org if org is not None else current_org()
    if org is None:
        raise ValueError("audit_record needs an org: pass org= or run inside org_context().")
    if not VERB.match(verb or ""):
        raise ValueError(f"verb: {verb!r} is not a verb (lowercase letters and _).")
    fields = list(fields)
    for name in fields:
        if not isinstance(name, str) or not FIELD_NAME.match(name):
            raise ValueError(f"fields: {name!r} is not a field name; the audit log records names, never values.")
    if target is not None:
        target_type = target._meta.label_lower
        target_id = target.pk
    context = current_actor()
    user = api_key = None
    label = ""
    if actor is None:
        user, api_key, label = context.user, context.api_key, context.label
    elif isinstance(actor, User):
        user = actor
    elif isinstance(actor, ApiKey):
        api_key = actor
    else:
        label = str(actor)
    entry = AuditEntry(
        org_id=org.pk,
        actor_user_id=user.pk if user is not None else None,
        actor_api_key_id=api_key.pk if api_key is not None else None,
        actor_label=_label(user=user, api_key=api_key, label=label),
        source=source or context.source,
        verb=verb,
        target_type=target_type or "",
        target_id="" if target_id is None else str(target_id),
        fields=fields,
        count=count,
        request_id=context.request_id,
    )
    entry.save(force_insert=True)
    return entry


def audit_field_names(names: Iterable[str]) -> list[str]:
    """Form or column names as the audit log stores them (a typed property input named
    ``prop-plan`` becomes ``prop_plan``), in order, each once."""
    cleaned = (re.sub(r"[^A-Za-z0-9_.]", "_", str(name))[:100] for name in names)
    return list(dict.fromkeys(name if name[:1].isalpha() or name[:1] == "_" else f"_{name}" for name in cleaned))


def audit_changed_fields(form, formsets=()) -> list[str]:
    """The names of what a console form changed: its changed fields, and for each inline
    ``<model>`` (a row added or removed) or ``<model>.<field>`` (a row changed)."""
    names = list(form.changed_data)
    for formset in formsets or ():
        model = formset.model._meta.model_name
        if formset.new_objects or formset.deleted_objects:
            names.append(model)
        for _obj, changed in formset.changed_objects:
            names += [f"{model}.{field}" for field in changed]
    return audit_field_names(names)


def request_source(request: HttpRequest) -> str:
    """Where a request comes from: the API (a key), the console (a signed-in user, on the admin
    or on the API its pages call) or a public page (forms, tracking, preference centre)."""
    if getattr(request, "api_key", None) is not None:
        return Source.API
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return Source.CONSOLE
    return Source.PUBLIC


class AuditContextMiddleware:
    """Runs each request inside ``audit_context``: the signed-in user or the API key, the
    source, and a request id (the caller's ``X-Request-ID`` when it is a plain token, else a new
    one, sent back in the response's ``X-Request-ID``)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get("X-Request-ID", "")
        request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        user = getattr(request, "user", None)
        api_key = getattr(request, "api_key", None)
        with audit_context(
            source=request_source(request),
            user=user if user is not None and user.is_authenticated and api_key is None else None,
            api_key=api_key,
            request_id=request_id,
        ):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


# Tasks: a task run by a worker acts as itself. One run eagerly inside a request (the embedded
# mode, tests) keeps the request's actor: the user caused it.
_task_contexts: dict[str, ExitStack] = {}


@signals.task_prerun.connect
def _task_started(task_id=None, task=None, **kwargs) -> None:
    if _actor.get() is not None or task_id is None:
        return
    stack = ExitStack()
    stack.enter_context(audit_context(source=Source.TASK, label=getattr(task, "name", "task")))
    _task_contexts[task_id] = stack


@signals.task_postrun.connect
def _task_ended(task_id=None, **kwargs) -> None:
    stack = _task_contexts.pop(task_id, None)
    if stack is not None:
        stack.close()


class AuditPurgeRefusedError(Exception):
    """The database refused to delete audit entries: the role is not the table's owner."""


def audit_entries_purge(*, older_than: timedelta, batch: int = 10_000, dry_run: bool = False) -> dict[int, int]:
    """Deletes the audit entries of every org older than ``older_than``, ``batch`` rows per
    statement, and records one ``purged`` entry per org with the count. Returns {org id: rows}.

    Only the table's owner may delete (the append-only trigger refuses anyone else): run it with
    the owner's ``DATABASE_URL``. Raises ``AuditPurgeRefusedError`` otherwise. ``dry_run`` counts.
    """
    cutoff = timezone.now() - older_than
    old = AuditEntry.objects.with_scopes_disabled().filter(at__lt=cutoff)
    if dry_run:
        return dict(old.values_list("org_id").annotate(rows=Count("id")).values_list("org_id", "rows"))
    purged: dict[int, int] = {}
    table = AuditEntry._meta.db_table
    while True:
        ids = list(old.order_by("id").values_list("id", flat=True)[:batch])
        if not ids:
            break
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                # A table name of ours and a list of ids: nothing from the user.
                cursor.execute(f"DELETE FROM {table} WHERE id = ANY(%s) RETURNING org_id", [ids])  # noqa: S608
                for (org_id,) in cursor.fetchall():
                    purged[org_id] = purged.get(org_id, 0) + 1
        except DatabaseError as exc:
            if "append-only" in str(exc):
                raise AuditPurgeRefusedError(
                    f"the database refused: only the owner of {table} may delete audit entries"
                ) from exc
            raise
    for org in Organization.objects.filter(pk__in=purged):
        audit_record(org=org, verb=Verb.PURGED, target_type="marketing.auditentry", count=purged[org.pk])
    logger.info("audit_purge older_than_days=%s rows=%s orgs=%s", older_than.days, sum(purged.values()), len(purged))
    return purged
