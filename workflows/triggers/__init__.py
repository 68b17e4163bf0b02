"""The trigger registry: how contacts enter a workflow (docs/workflows.md).

A trigger is a small registered class with a ``name``, a JSON ``config_schema`` (the
definition's ``trigger`` object, checked at save) and one of:

- ``event_type(config)`` + ``matches(event, config, contact)``: event triggers, called from the
  event dispatch for each stored event of that type;
- ``due(workflow, config, now)``: schedule-like triggers, called from beat, yielding
  ``(contact_ids, trigger_key)`` batches to enrol.

Manual and inbound-webhook triggers enrol through services (an admin action, an HTTP endpoint)
and need neither. Apps above ``workflows`` (scoring) register theirs in ``<app>/triggers.py``.
"""

from collections.abc import Iterator
from datetime import datetime
from typing import ClassVar

from django.utils.module_loading import autodiscover_modules

# The definition's ``trigger.type``: the catalog leaves it out of the form (the canvas sets it).
TYPE = {"type": "string", "title": "Trigger"}


class Trigger:
    """Base class; see the module docstring. ``label``, ``description`` and ``ui`` (field to
    widget) are what the canvas shows; every property of ``config_schema`` has a ``title``."""

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    description: ClassVar[str] = ""
    config_schema: ClassVar[dict] = {"type": "object"}
    ui: ClassVar[dict[str, str]] = {}

    def check(self, config: dict, *, org) -> list[str]:
        """Errors beyond the JSON schema (an invalid filter, a segment that does not exist)."""
        return []

    def event_type(self, config: dict) -> str:
        """The event type this trigger listens for ("" when it is not event-driven)."""
        return ""

    def matches(self, event, config: dict, contact) -> bool:
        return False

    def due(self, workflow, config: dict, now: datetime) -> Iterator[tuple[list[int], str]]:
        return iter(())


_triggers: dict[str, Trigger] = {}
_discovered = False


def trigger(cls: type[Trigger]) -> type[Trigger]:
    """Registers a trigger class (one instance serves every workflow)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    _triggers[cls.name] = cls()
    return cls


def triggers() -> dict[str, Trigger]:
    """Every registered trigger, after importing each installed app's ``triggers`` module."""
    global _discovered
    if not _discovered:
        import workflows.triggers.builtin  # noqa: F401  the shipped triggers

        autodiscover_modules("triggers")
        _discovered = True
    return dict(_triggers)
