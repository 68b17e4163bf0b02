"""Workflow definitions: the JSON format (docs/workflows.md) and its validation at save.

``definition_problems`` lists every problem as a ``Problem``: the step it is on (its id), the
field's path within the step (``config.duration``, ``cases[0].when``) and what is wrong, so the
canvas can show it on that node and field: unknown step types, actions and triggers, configs
that do not match their schema, dangling or missing edges, unreachable steps, cycles that never
wait, invalid conditions. ``definition_errors`` gives the same problems as sentences, "where:
what" (``steps[wait].config.duration: …``), for the API's ``errors`` and the console's messages.
"""

import re
from dataclasses import asdict, dataclass
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


REQUIRED = re.compile(r"^'(?P<name>[^']+)' is a required property$")
STEP_SENTENCE = re.compile(r"^steps\[(?P<step>[A-Za-z0-9_-]+)\]\.?(?P<path>[^:\s]*): (?P<message>.*)$", re.DOTALL)
SENTENCE = re.compile(r"^(?P<path>[\w.\[\]]+): (?P<message>.*)$", re.DOTALL)


@dataclass(frozen=True)
class Problem:
    """One problem of a definition. ``step`` is the id of the step it is on (None: the trigger,
    the settings or the definition as a whole); ``path`` is the field, from the step (or from
    the definition's top for the rest: ``trigger.segment``, ``settings.goal``); "" for the step
    as a whole."""

    step: str | None
    path: str
    message: str

    @property
    def sentence(self) -> str:
        """ "where: what", e.g. "steps[wait].config.duration: “two days” is not …"."""
        if self.step is None:
            return f"{self.path}: {self.message}"
        where = f"steps[{self.step}]"
        if self.path:
            where += self.path if self.path.startswith("[") else f".{self.path}"
        return f"{where}: {self.message}"

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_sentence(cls, sentence: str) -> "Problem":
        """The problem a "where: what" sentence names (for sentences made elsewhere, e.g. the
        checks only publishing makes)."""
        if found := STEP_SENTENCE.match(sentence):
            return cls(found["step"], found["path"], found["message"])
        if found := SENTENCE.match(sentence):
            return cls(None, found["path"], found["message"])
        return cls(None, "", sentence)


def problems_for(sentences: list[str], *, definition: Any, org) -> list["Problem"]:
    """The structured form of the sentences a service refused ``definition`` with, in their
    order: ``definition_problems``' own where it made them, else read from the sentence."""
    known = {p.sentence: p for p in definition_problems(definition, org=org)} if definition is not None else {}
    return [known.get(sentence) or Problem.from_sentence(sentence) for sentence in sentences]


def _join(*parts) -> str:
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part != "":
            path += f".{part}" if path else str(part)
    return path


def schema_problems(schema: dict, value: Any, *, step: str | None = None, where: str = "") -> list[Problem]:
    """What ``value`` breaks of ``schema``, each at its field under ``where``."""
    problems = []
    for error in sorted(jsonschema.Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.path)):
        path = [where, *error.absolute_path]
        message = error.message
        # A missing field is a problem of that field (the canvas marks the field, or the exit).
        if error.validator == "required" and (missing := REQUIRED.match(message)):
            path.append(missing["name"])
        elif error.validator == "oneOf" and all("const" in o for o in error.validator_value):
            message = f"{error.instance!r} is not one of {', '.join(repr(o['const']) for o in error.validator_value)}"
        problems.append(Problem(step, _join(*path), message))
    return problems


def _checked(texts: list[str], *, step: str | None = None, where: str = "") -> list[Problem]:
    """Problems from a ``check`` method's "field: what" lines (step types, actions, triggers)."""
    problems = []
    for text in texts:
        field, sep, message = text.partition(": ")
        if not sep:
            field, message = "", text
        problems.append(Problem(step, _join(where, field), message))
    return problems


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
    return [problem.sentence for problem in definition_problems(definition, org=org)]


def definition_problems(definition: Any, *, org) -> list[Problem]:
    """Every problem of ``definition``, each naming its step and field (empty when it can be
    published)."""
    from marketing.conditions import rule_errors

    problems = schema_problems(DEFINITION_SCHEMA, definition, where="definition")
    if problems:
        return problems
    problems += _trigger_problems(definition["trigger"], org)
    settings = definition.get("settings") or {}
    for name in ("goal", "exit"):
        if settings.get(name) is not None:
            problems += [Problem(None, f"settings.{name}", e) for e in rule_errors(settings[name], "contact", org=org)]
    steps: dict[str, dict] = {}
    for index, step in enumerate(definition["steps"]):
        step_id = step.get("id")
        # A step without a usable id is named by its place in the list.
        named = isinstance(step_id, str)
        at = {"step": step_id, "where": ""} if named else {"step": None, "where": f"steps[{index}]"}
        if named and step_id in steps:
            problems.append(Problem(step_id, "id", "another step has this id."))
            continue
        kind = step_types().get(step.get("type"))
        if kind is None:
            known = ", ".join(sorted(step_types()))
            problems.append(
                Problem(
                    at["step"], _join(at["where"], "type"), f"unknown step type “{step.get('type')}”; known: {known}."
                )
            )
            continue
        found = schema_problems(kind.json_schema(), step, **at)
        if not found:
            found = _checked(kind.check(step, org=org, definition=definition), **at)
        problems += found
        steps[step_id] = step
    if problems:
        return problems
    return _graph_problems(definition["steps"], steps)


def _trigger_problems(config: dict, org) -> list[Problem]:
    kind = triggers().get(config.get("type"))
    if kind is None:
        known = ", ".join(sorted(triggers()))
        return [Problem(None, "trigger.type", f"unknown trigger “{config.get('type')}”; known: {known}.")]
    return schema_problems(kind.config_schema, config, where="trigger") or _checked(
        kind.check(config, org=org), where="trigger"
    )


def _graph_problems(ordered: list[dict], steps: dict[str, dict]) -> list[Problem]:
    problems = []
    for step in ordered:
        for edge, target in edges_of(step):
            if target is not None and target not in steps:
                problems.append(Problem(step["id"], edge, f"no step with id “{target}”."))
    if problems:
        return problems
    reached, todo = set(), [ordered[0]["id"]]
    while todo:
        current = todo.pop()
        if current not in reached:
            reached.add(current)
            todo += [t for _, t in edges_of(steps[current]) if t]
    for step in ordered:
        if step["id"] not in reached:
            problems.append(Problem(step["id"], "", f"unreachable from the first step, “{ordered[0]['id']}”."))
    cycle = _spinning_cycle(steps)
    if cycle:
        problems.append(
            Problem(
                cycle[0],
                "",
                f"the cycle {' → '.join([*cycle, cycle[0]])} has no delay, wait or loop step, "
                "so a run would spin in it.",
            )
        )
    return problems


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
