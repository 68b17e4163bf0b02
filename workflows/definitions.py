"""Workflow definitions: the JSON format (docs/workflows.md) and its validation at save.

``definition_errors`` lists every problem as "where: what", naming the step and the field
(``steps[wait].config.duration: …``), so the console and the API can show them next to it:
unknown step types, actions and triggers, configs that do not match their schema, dangling or
missing edges, unreachable steps, cycles that never wait, invalid conditions.
"""

from typing import Any

import jsonschema

from workflows.steps import step_types
from workflows.triggers import triggers

SETTINGS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "reenrollment": {"enum": ["never", "after_exit", "always"]},
        "max_active_per_contact": {"type": "integer", "minimum": 1, "maximum": 1000},
        "goal": {},
        "exit": {},
    },
}
DEFINITION_SCHEMA = {
    "type": "object",
    "required": ["trigger", "steps"],
    "additionalProperties": False,
    "properties": {
        "trigger": {"type": "object", "required": ["type"], "properties": {"type": {"type": "string"}}},
        "settings": SETTINGS_SCHEMA,
        "steps": {
            "type": "array",
            "minItems": 1,
            "maxItems": 500,
            "items": {"type": "object", "required": ["id", "type"]},
        },
    },
}


def _schema_errors(schema: dict, value: Any, where: str) -> list[str]:
    errors = []
    for error in sorted(jsonschema.Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.path)):
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        errors.append(f"{where}{path}: {error.message}")
    return errors


def settings_of(definition: dict) -> dict:
    """The run settings with their defaults filled in."""
    settings = {"reenrollment": "never", "max_active_per_contact": None, "goal": None, "exit": None}
    settings.update(definition.get("settings") or {})
    if settings["max_active_per_contact"] is None and settings["reenrollment"] != "always":
        settings["max_active_per_contact"] = 1
    return settings


def edges_of(step: dict) -> list[tuple[str, str | None]]:
    kind = step_types().get(step.get("type"))
    return kind.edges(step) if kind else []


def merge_of(definition: dict, start: str) -> str | None:
    """The merge step a parallel branch starting at ``start`` ends at (None if none or several)."""
    steps = {s.get("id"): s for s in definition.get("steps", [])}
    seen, todo, merges = set(), [start], set()
    while todo:
        current = todo.pop()
        if current in seen or current not in steps:
            continue
        seen.add(current)
        if steps[current].get("type") == "merge":
            merges.add(current)
            continue
        todo += [target for _, target in edges_of(steps[current]) if target]
    return merges.pop() if len(merges) == 1 else None


def definition_errors(definition: Any, *, org) -> list[str]:
    """Every problem of ``definition`` as "where: what" (empty when it can be published)."""
    from marketing.conditions import rule_errors

    errors = _schema_errors(DEFINITION_SCHEMA, definition, "definition")
    if errors:
        return errors
    errors += _trigger_errors(definition["trigger"], org)
    settings = definition.get("settings") or {}
    for name in ("goal", "exit"):
        if settings.get(name) is not None:
            errors += [f"settings.{name}: {e}" for e in rule_errors(settings[name], "contact", org=org)]
    steps: dict[str, dict] = {}
    for index, step in enumerate(definition["steps"]):
        where = f"steps[{step.get('id', index)}]"
        if step.get("id") in steps:
            errors.append(f"{where}.id: another step has this id.")
            continue
        kind = step_types().get(step.get("type"))
        if kind is None:
            errors.append(
                f"{where}.type: unknown step type “{step.get('type')}”; known: {', '.join(sorted(step_types()))}."
            )
            continue
        problems = _schema_errors(kind.json_schema(), step, where)
        if not problems:
            problems = [f"{where}.{e}" for e in kind.check(step, org=org, definition=definition)]
        errors += problems
        steps[step["id"]] = step
    if errors:
        return errors
    return _graph_errors(definition["steps"], steps)


def _trigger_errors(config: dict, org) -> list[str]:
    kind = triggers().get(config.get("type"))
    if kind is None:
        return [f"trigger.type: unknown trigger “{config.get('type')}”; known: {', '.join(sorted(triggers()))}."]
    return _schema_errors(kind.config_schema, config, "trigger") or [
        f"trigger.{e}" for e in kind.check(config, org=org)
    ]


def _graph_errors(ordered: list[dict], steps: dict[str, dict]) -> list[str]:
    errors = []
    for step in ordered:
        for edge, target in edges_of(step):
            if target is not None and target not in steps:
                errors.append(f"steps[{step['id']}].{edge}: no step with id “{target}”.")
    if errors:
        return errors
    reached, todo = set(), [ordered[0]["id"]]
    while todo:
        current = todo.pop()
        if current not in reached:
            reached.add(current)
            todo += [t for _, t in edges_of(steps[current]) if t]
    for step in ordered:
        if step["id"] not in reached:
            errors.append(f"steps[{step['id']}]: unreachable from the first step, “{ordered[0]['id']}”.")
    cycle = _spinning_cycle(steps)
    if cycle:
        errors.append(
            f"steps[{cycle[0]}]: the cycle {' → '.join([*cycle, cycle[0]])} has no delay, wait or loop step, "
            "so a run would spin in it."
        )
    return errors


def _spinning_cycle(steps: dict[str, dict]) -> list[str] | None:
    """A cycle made only of steps that neither wait nor are bounded, if there is one."""
    kinds = step_types()
    spinning = {sid for sid, step in steps.items() if not kinds[step["type"]].pauses}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for _, target in edges_of(steps[node]):
            if target not in spinning:
                continue
            if state.get(target) == 1:
                return path[path.index(target) :]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(spinning):
        if node not in state and (found := visit(node)):
            return found
    return None
