"""The action registry: what an ``action`` step does (docs/workflows.md).

An action is a small registered class with a ``name``, a JSON ``config_schema`` checked when a
workflow is saved, and ``run(ctx) -> dict``. ``run`` is called inside the engine's transaction,
so an action that only writes to our database is exactly-once by construction: its writes commit
with the step run, or not at all. An action that leaves the system (``external = True``) must
not call out from ``run``: it returns ``ctx.deliver(request)``, which records a ``Delivery``
under the step's idempotency key in that same transaction; ``deliver(request, key)`` is then
called by the delivery sender, outside any transaction, and the run waits for its outcome.

Apps above ``workflows`` (channels, scoring) register theirs in ``<app>/actions.py``; that
module is imported when the registry is first read.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from django.utils.module_loading import autodiscover_modules


class RetryableError(Exception):
    """A transient failure: the step is tried again after a backoff (its retry policy)."""


class PermanentError(Exception):
    """A failure that retrying cannot fix: the step takes its ``on_error`` edge, or the run fails."""


@dataclass
class Deferred:
    """What an external action's ``run`` returns: the request its ``deliver`` will get."""

    request: dict
    max_attempts: int = 5


@dataclass
class ActionContext:
    """What an action sees. ``idempotency_key`` is (instance, step, visit): the same on every
    retry of this visit, different on the next visit of a loop."""

    org: Any
    contact: Any
    instance: Any
    step_id: str
    idempotency_key: str
    config: dict
    now: datetime
    dry_run: bool = False
    facts: dict = field(default_factory=dict)

    def deliver(self, request: dict, *, max_attempts: int = 5) -> Deferred:
        return Deferred(request=request, max_attempts=max_attempts)


class Action:
    """Base class. Subclasses set ``name``, ``label``, ``description``, ``config_schema`` (every
    property with a ``title``), ``ui`` (field to widget, for the canvas's form) and implement
    ``run``. The catalog (``workflows.catalog``) serves all of it."""

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    description: ClassVar[str] = ""
    config_schema: ClassVar[dict] = {"type": "object"}
    ui: ClassVar[dict[str, str]] = {}
    external: ClassVar[bool] = False
    writes_database: ClassVar[bool] = True  # False: run() only computes (no savepoint needed)

    def check(self, config: dict, *, org) -> list[str]:
        """Errors beyond the JSON schema (a template or workflow that does not exist), named."""
        return []

    def run(self, ctx: ActionContext) -> dict | Deferred:
        raise NotImplementedError

    def preview(self, ctx: ActionContext) -> dict:
        """What ``run`` would do, for a dry run: no writes, no calls."""
        return {"would": self.name, "config": ctx.config}

    def deliver(self, request: dict, key: str) -> dict:
        """External actions: make the call (outside any transaction); raise RetryableError or
        PermanentError; return what later steps may read as the step's result."""
        raise NotImplementedError

    # -- what a dry run and a projection ask a sending action (docs/workflows.md, "Sending actions")

    def dry_run_verdict(self, *, org, contact, config: dict, at: datetime, earlier: list) -> dict | None:
        """For a dry run: whether this step would send to ``contact`` at ``at``, as
        ``{"verdict": "send" | "block" | "hold", "kind", "reason", "until"}``; None when the step
        sends nothing (not a sending action, or nothing to send). ``earlier`` is the run's list of
        what earlier steps sent: the action reads it (a frequency cap counts them) and appends
        what it sends, in a form of its own."""
        return None

    def projection_send(self, *, org, config: dict) -> dict | None:
        """For a projection: ``{"channel", "purpose", "destination"}`` of the message this step
        would send (the same for every member), or None when it sends nothing."""
        return None

    def projection_guards(self, *, org, members, sends: tuple, counted: tuple, memo: dict) -> dict:
        """For a projection (PostgreSQL): for each of ``counted`` (the last of a route's
        ``sends``, each with ``index``, ``channel``, ``purpose``, ``at``, ``destination``), how
        many of ``members`` (a contact queryset) it would send, block or hold, as
        ``{send.index: Counter({"send" | guard kind: n})}``. ``memo`` lives as long as the
        projection, for what is read once. Called on the action of the route's last send."""
        raise NotImplementedError


_actions: dict[str, Action] = {}
_discovered = False


def action(cls: type[Action]) -> type[Action]:
    """Registers an action class (one instance serves every run)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    _actions[cls.name] = cls()
    return cls


def actions() -> dict[str, Action]:
    """Every registered action, after importing each installed app's ``actions`` module."""
    global _discovered
    if not _discovered:
        import workflows.actions.builtin  # noqa: F401  the shipped actions

        autodiscover_modules("actions")
        _discovered = True
    return dict(_actions)
