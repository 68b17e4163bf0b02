"""Typed custom properties: every value written is checked against its ``PropertyDefinition``.

A key seen for the first time (a tracking call, an import) gets an ``auto`` definition with the
type its value suggests; a later value of another type is an error for that one item, never a
crash and never a silent change of type.
"""

import re
from datetime import datetime
from typing import Any

from marketing.models import PropertyDefinition

Type = PropertyDefinition.Type
ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")
KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,99}$")


def infer_type(value: Any) -> str | None:
    """The type a first value suggests, or None when it suggests none (null, nested objects)."""
    if isinstance(value, bool):
        return Type.BOOLEAN
    if isinstance(value, int | float):
        return Type.NUMBER
    if isinstance(value, list):
        return Type.LIST
    if isinstance(value, str):
        # "2026-13-45" has the shape of a date but is none: a key it defined would refuse it.
        return Type.DATETIME if ISO_DATETIME.match(value) and _parses_as_datetime(value) else Type.STRING
    return None


def value_error(definition_type: str, options: list, value: Any) -> str | None:
    """Why ``value`` does not fit the type, or None when it does. Null always fits."""
    if value is None:
        return None
    if definition_type == Type.NUMBER:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif definition_type == Type.BOOLEAN:
        ok = isinstance(value, bool)
    elif definition_type == Type.LIST:
        ok = isinstance(value, list)
    elif definition_type == Type.DATETIME:
        ok = isinstance(value, str) and _parses_as_datetime(value)
    elif definition_type == Type.ENUM:
        if value not in options:
            return f"must be one of {', '.join(map(str, options))}"
        ok = True
    else:
        ok = isinstance(value, str)
    return None if ok else f"expected {definition_type}, got {_json_type(value)}"


def _parses_as_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object" if isinstance(value, dict) else type(value).__name__


def properties_check(*, org, subject: str, items: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Checks the properties of many items against the org's definitions for ``subject``.

    Returns, per item, its errors keyed ``properties.<key>`` (empty when it is fine). Keys never
    seen before get ``auto`` definitions typed by their first non-null value in this batch.
    """
    keys = {key for item in items for key in item if KEY.match(key)}  # a bad key is an error below, not a lookup
    known = {d.key: d for d in PropertyDefinition.objects.filter(org=org, subject=subject, key__in=keys)}
    new = {}
    for item in items:
        for key, value in item.items():
            if key not in known and key not in new and KEY.match(key):
                inferred = infer_type(value)
                if inferred:
                    new[key] = PropertyDefinition(
                        org=org,
                        subject=subject,
                        key=key,
                        label=key,
                        type=inferred,
                        source=PropertyDefinition.Source.AUTO,
                    )
    if new:
        PropertyDefinition.objects.bulk_create(new.values(), ignore_conflicts=True)
        # Another batch may have defined some of them first: its types stand.
        known.update({d.key: d for d in PropertyDefinition.objects.filter(org=org, subject=subject, key__in=new)})
    errors = []
    for item in items:
        item_errors = {}
        for key, value in item.items():
            if not KEY.match(key):
                item_errors[f"properties.{key[:100]}"] = "keys are letters, digits, _ and -, up to 100 characters"
                continue
            definition = known.get(key)
            if definition is not None:
                problem = value_error(definition.type, definition.options, value)
                if problem:
                    item_errors[f"properties.{key}"] = problem
        errors.append(item_errors)
    return errors
