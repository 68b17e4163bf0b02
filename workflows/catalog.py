"""The catalog the canvas builds its palette and forms from: every registered step type, action
and trigger, with a label, a description, the JSON schema of its form, the widget of each field
that needs more than a text box (``ui``) and the edges that leave it (docs/workflows.md,
"The catalog").

It comes from the registries alone, so it is the same for every organisation; the pickers the
``ui`` widgets name (templates, segments, destinations, …) load the org's own rows from the API.
"""

import copy

from workflows.actions import actions
from workflows.steps import step_types
from workflows.triggers import triggers

# An action runs in an ``action`` step, so the canvas gives its node that step's exits.
ACTION_EDGES = step_types()["action"].exits


def workflow_catalog() -> dict:
    """``{"steps": [...], "actions": [...], "triggers": [...]}``, each list ordered by name."""
    return {
        "steps": [
            {
                "type": name,
                "label": kind.label,
                "description": kind.description,
                "schema": as_form(kind.form_schema()),
                "ui": dict(kind.ui),
                "edges": copy.deepcopy(kind.exits),
            }
            for name, kind in sorted(step_types().items())
        ],
        "actions": [
            {
                "name": name,
                "label": action.label,
                "description": action.description,
                "schema": as_form({"title": action.label, **copy.deepcopy(action.config_schema)}),
                "ui": dict(action.ui),
                "edges": copy.deepcopy(ACTION_EDGES),
            }
            for name, action in sorted(actions().items())
        ],
        "triggers": [
            {
                "name": name,
                "label": trigger.label,
                "description": trigger.description,
                "schema": as_form(_trigger_form(trigger)),
                "ui": dict(trigger.ui),
                "edges": [],
            }
            for name, trigger in sorted(triggers().items())
        ],
    }


def as_form(schema: dict) -> dict:
    """``schema`` as a form shows it: where an object's ``oneOf`` only says which of its fields
    is required ("wait for a while" or "until a date"), each choice takes its fields along, so
    the form asks for the choice first and then shows only that choice's fields. (The registries'
    schemas say it the validator's way: every field at the top, and no field outside them.)"""
    properties = schema.get("properties", {})
    for name, field in properties.items():
        properties[name] = as_form(field)
    if isinstance(schema.get("items"), dict):
        schema["items"] = as_form(schema["items"])
    options = schema.get("oneOf", [])
    if options and properties and all("required" in option and "const" not in option for option in options):
        for option in options:
            own = {name: properties.pop(name) for name in option["required"] if name in properties}
            own.update({name: properties.pop(name, field) for name, field in option.get("properties", {}).items()})
            option["properties"] = own
        schema.pop("additionalProperties", None)
    return schema


def _trigger_form(trigger) -> dict:
    """The trigger's schema without ``type``, which the canvas sets from the item's name."""
    schema = copy.deepcopy(trigger.config_schema)
    schema["properties"].pop("type", None)
    schema["required"] = [r for r in schema.get("required", []) if r != "type"]
    return {"title": trigger.label, **schema}
