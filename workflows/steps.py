"""Step types (docs/workflows.md): what each step's JSON holds, which edges leave it, and what it
does when a run reaches it.

A step type's ``run(run, step)`` returns an outcome: ``Go`` along an edge, ``Wait`` until a time
or for something (an event, a person, a delivery), ``Fork`` into parallel branches, or
``Finish`` the run. The engine (``workflows.engine``) calls it with the run's position (a
token); a waiting step is called again when its time comes or what it waits for arrives, and
finds what it waited for in ``run.token["wait"]``.
"""

import copy
import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from marketing import retries
from marketing.conditions import evaluate, rule_errors
from workflows import durations

ID = {"type": "string", "pattern": r"^[A-Za-z0-9_-]{1,100}$"}
EDGE = {"anyOf": [ID, {"type": "null"}]}
COMMON = {
    "id": ID,
    "type": {"type": "string"},
    "name": {
        "type": "string",
        "maxLength": 200,
        "title": "Name",
        "description": "What the step is called on the canvas.",
    },
    "position": {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}}},
}
# A condition (JsonLogic) is an object, or true/false; its widget is the rule builder.
RULE = {"type": ["object", "boolean"]}
WAIT_LIMIT = {
    "type": "string",
    "title": "Give up after",
    "description": "How long to wait before taking the “timed out” path (30 days if left empty).",
}
DEFAULT_WAIT_TIMEOUT = "P30D"
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MAX_LOOP = 1000


@dataclass
class Go:
    target: str | None
    output: dict = field(default_factory=dict)
    edge: str = "next"


@dataclass
class Wait:
    until: datetime | None
    wait: dict
    output: dict = field(default_factory=dict)


@dataclass
class Fork:
    targets: list[str]


@dataclass
class Finish:
    result: str
    reason: str = ""


def choice(title: str, options: dict[str, str], **extra) -> dict:
    """A pick-list field: each value with the label the form shows."""
    return {"title": title, "type": "string", "oneOf": [{"const": v, "title": t} for v, t in options.items()], **extra}


class StepError(Exception):
    """A step failed in a way its ``on_error`` edge (or a failed run) handles."""

    def __init__(self, message: str, *, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


class StepType:
    """Base class. ``schema`` validates the step's JSON (edges included); the catalog serves it to
    the canvas as a form with ``label``, ``description``, ``ui`` (field path to widget) and
    ``exits`` (the edges leaving the step and how the canvas labels them, not form fields)."""

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    description: ClassVar[str] = ""
    schema: ClassVar[dict] = {}
    required: ClassVar[list[str]] = []
    ui: ClassVar[dict[str, str]] = {}
    exits: ClassVar[list[dict]] = [{"field": "next", "label": "Next"}]
    pauses: ClassVar[bool] = False  # a cycle through this step does not spin (it waits or is bounded)

    def edges(self, step: dict) -> list[tuple[str, str | None]]:
        """(field, target) pairs; a target None ends the run there."""
        return [("next", step.get("next"))]

    def check(self, step: dict, *, org, definition: dict) -> list[str]:
        return []

    def run(self, run, step: dict):
        raise NotImplementedError

    def json_schema(self) -> dict:
        return {
            "type": "object",
            "required": ["id", "type", *self.required],
            "properties": {**COMMON, **self.schema},
            "additionalProperties": False,
        }

    def form_schema(self) -> dict:
        """The step's fields as a form: ``schema`` without the edges (the canvas draws those) and
        without what the canvas keeps itself (id, type, name, position)."""
        edges = {e["field"] for e in self.exits if "array" not in e}
        properties = {k: copy.deepcopy(v) for k, v in self.schema.items() if k not in edges}
        for exit in self.exits:
            if "array" not in exit:
                continue
            if exit["field"] is None:  # the array holds the targets themselves
                properties.pop(exit["array"], None)
                continue
            items = properties[exit["array"]]["items"]
            items["properties"].pop(exit["field"], None)
            items["required"] = [r for r in items.get("required", []) if r != exit["field"]]
        return {
            "type": "object",
            "title": self.label,
            "required": [r for r in self.required if r in properties],
            "properties": properties,
        }


_step_types: dict[str, StepType] = {}


def step_type(cls):
    _step_types[cls.name] = cls()
    return cls


def step_types() -> dict[str, StepType]:
    return dict(_step_types)


def _rule_check(rule, where: str, org) -> list[str]:
    return [f"{where}: {e}" for e in rule_errors(rule, "contact", org=org)]


def _timeout_check(value, where: str) -> list[str]:
    problem = durations.duration_problem(value) if value is not None else None
    return [f"{where}: {problem}"] if problem else []


@step_type
class ActionStep(StepType):
    name = "action"
    label = "Do something"
    description = "Sends a message, tags the contact, calls a URL… (pick the action, then fill in its settings)."
    schema = {
        "action": {"type": "string", "title": "Action", "description": "What this step does."},
        "config": {"type": "object", "title": "Settings", "description": "The settings of the chosen action."},
        "next": EDGE,
        "on_error": EDGE,
        "retry": {
            "type": "object",
            "title": "If it fails",
            "additionalProperties": False,
            "properties": {
                "max_attempts": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 20,
                    "title": "Attempts",
                    "description": "How many times to try before giving up (3 if left empty).",
                },
                "backoff": {
                    "type": "string",
                    "title": "First retry after",
                    "description": "How long before trying again; each later wait doubles (30 seconds if left empty).",
                },
            },
        },
    }
    required = ["action"]
    ui = {"retry.backoff": "duration"}
    exits = [{"field": "next", "label": "Next"}, {"field": "on_error", "label": "If it fails"}]

    def form_schema(self):
        from workflows.actions import actions

        schema = super().form_schema()
        schema["properties"]["action"]["oneOf"] = [
            {"const": name, "title": action.label} for name, action in sorted(actions().items())
        ]
        return schema

    def edges(self, step):
        edges = [("next", step.get("next"))]
        if "on_error" in step:
            edges.append(("on_error", step["on_error"]))
        return edges

    def check(self, step, *, org, definition):
        from workflows.actions import actions
        from workflows.definitions import schema_problems

        action = actions().get(step.get("action"))
        if action is None:
            return [f"action: unknown action “{step.get('action')}”; known: {', '.join(sorted(actions()))}."]
        config = step.get("config", {})
        errors = [f"{p.path}: {p.message}" for p in schema_problems(action.config_schema, config, where="config")]
        if not errors:
            errors += [f"config.{e}" for e in action.check(config, org=org)]
        backoff = step.get("retry", {}).get("backoff")
        if backoff is not None:
            errors += _timeout_check(backoff, "retry.backoff")
        return errors

    def run(self, run, step):
        return run.run_action(step)


@step_type
class ConditionStep(StepType):
    name = "condition"
    label = "Yes/no branch"
    description = "Checks something about the contact and goes down the Yes or the No path."
    schema = {
        "condition": {**RULE, "title": "Condition", "description": "What must be true to take the Yes path."},
        "true_next": EDGE,
        "false_next": EDGE,
    }
    required = ["condition", "true_next", "false_next"]
    ui = {"condition": "rule:contact"}
    exits = [{"field": "true_next", "label": "Yes"}, {"field": "false_next", "label": "No"}]

    def edges(self, step):
        return [("true_next", step.get("true_next")), ("false_next", step.get("false_next"))]

    def check(self, step, *, org, definition):
        return _rule_check(step.get("condition"), "condition", org)

    def run(self, run, step):
        holds = run.holds(step["condition"])
        return Go(
            step["true_next" if holds else "false_next"], {"result": holds}, "true_next" if holds else "false_next"
        )


@step_type
class SwitchStep(StepType):
    name = "switch"
    label = "Several branches"
    description = "Goes down the first path whose condition the contact meets, or the “Otherwise” path."
    schema = {
        "cases": {
            "type": "array",
            "title": "Paths",
            "description": "Checked in order; the first that matches wins.",
            "minItems": 1,
            "maxItems": 50,
            "items": {
                "type": "object",
                "title": "Path",
                "required": ["when", "next"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "title": "Name", "description": "The label of this path on the canvas."},
                    "when": {**RULE, "title": "When", "description": "What must be true to take this path."},
                    "next": EDGE,
                },
            },
        },
        "default_next": EDGE,
    }
    required = ["cases", "default_next"]
    ui = {"cases[].when": "rule:contact"}
    exits = [
        {"array": "cases", "field": "next", "label_from": "name", "label": "Path"},
        {"field": "default_next", "label": "Otherwise"},
    ]

    def edges(self, step):
        return [
            *((f"cases[{i}].next", c.get("next")) for i, c in enumerate(step.get("cases", []))),
            ("default_next", step.get("default_next")),
        ]

    def check(self, step, *, org, definition):
        return [
            e
            for i, case in enumerate(step.get("cases", []))
            for e in _rule_check(case.get("when"), f"cases[{i}].when", org)
        ]

    def run(self, run, step):
        for index, case in enumerate(step["cases"]):
            if run.holds(case["when"]):
                return Go(case["next"], {"case": case.get("name", index)}, f"cases[{index}]")
        return Go(step["default_next"], {"case": "default"}, "default_next")


@step_type
class SplitStep(StepType):
    name = "split"
    label = "A/B split"
    description = "Sends each contact down one of several paths at random, in the proportions you set."
    schema = {
        "branches": {
            "type": "array",
            "title": "Paths",
            "minItems": 2,
            "maxItems": 20,
            "items": {
                "type": "object",
                "title": "Path",
                "required": ["name", "weight", "next"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 50, "title": "Name"},
                    "weight": {
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "title": "Share",
                        "description": "Its share of contacts, relative to the others (50 and 50 is half each).",
                    },
                    "next": EDGE,
                },
            },
        }
    }
    required = ["branches"]
    exits = [{"array": "branches", "field": "next", "label_from": "name", "label": "Path"}]

    def edges(self, step):
        return [(f"branches[{i}].next", b.get("next")) for i, b in enumerate(step.get("branches", []))]

    def check(self, step, *, org, definition):
        names = [b.get("name") for b in step.get("branches", [])]
        return ["branches: names must differ."] if len(set(names)) != len(names) else []

    def run(self, run, step):
        # Deterministic per (workflow, step, contact): a contact re-enrolled lands in the same arm.
        digest = hashlib.sha256(f"{run.instance.workflow_id}:{step['id']}:{run.contact.pk}".encode()).digest()
        point = int.from_bytes(digest[:8], "big") / 2**64 * sum(b["weight"] for b in step["branches"])
        for branch in step["branches"]:
            point -= branch["weight"]
            if point < 0:
                break
        return Go(branch["next"], {"branch": branch["name"]}, f"branch {branch['name']}")


@step_type
class DelayStep(StepType):
    name = "delay"
    label = "Wait"
    description = "Waits a while (e.g. 2 days), until a date, or until a time of day in the contact's time zone."
    pauses = True
    schema = {
        "config": {
            "type": "object",
            "title": "Wait",
            "additionalProperties": False,
            "properties": {
                "duration": {"type": "string", "title": "For", "description": "How long to wait, e.g. 2 days."},
                "until": {"type": "string", "format": "date-time", "title": "Until", "description": "A date and time."},
                "until_local_time": {
                    "type": "string",
                    "title": "Until the time of day",
                    "description": "The next time it is this time where the contact lives, e.g. 09:00.",
                },
                "weekdays": {
                    "type": "array",
                    "title": "On days",
                    "description": "Only on these days of the week (any day if left empty).",
                    "items": choice("Day", dict(zip(durations.WEEKDAYS, WEEKDAY_NAMES, strict=True))),
                    "uniqueItems": True,
                },
            },
            "oneOf": [
                {"title": "Wait a while", "required": ["duration"]},
                {"title": "Wait until a date", "required": ["until"]},
                # weekdays go with a time of day (the form shows them with it)
                {
                    "title": "Wait until a time of day",
                    "required": ["until_local_time"],
                    "properties": {"weekdays": {"type": "array"}},
                },
            ],
        },
        "next": EDGE,
    }
    required = ["config"]
    ui = {"config.duration": "duration", "config.until_local_time": "local_time", "config.weekdays": "weekdays"}

    def check(self, step, *, org, definition):
        config = step.get("config", {})
        if "duration" in config:
            return _timeout_check(config["duration"], "config.duration")
        if "until" in config:
            try:
                datetime.fromisoformat(config["until"])
            except (TypeError, ValueError):
                return [f"config.until: “{config['until']}” is not an ISO-8601 datetime."]
        if "until_local_time" in config:
            problem = durations.local_time_problem(config["until_local_time"], config.get("weekdays"))
            return [f"config.until_local_time: {problem}"] if problem else []
        return []

    def run(self, run, step):
        wait = run.token.get("wait")
        if wait is None:
            until = self._until(run, step["config"])
            if until <= run.now:
                return Go(step.get("next"), {"until": run.iso(until)})
            return Wait(until, {"kind": "delay", "until": run.iso(until)})
        if run.now >= datetime.fromisoformat(wait["until"]):
            return Go(step.get("next"), {"until": wait["until"], "woke": run.iso(run.now)})
        return Wait(datetime.fromisoformat(wait["until"]), wait)

    def _until(self, run, config) -> datetime:
        if "duration" in config:
            return durations.after(run.now, config["duration"])
        if "until" in config:
            until = datetime.fromisoformat(config["until"])
            return until if until.tzinfo else until.replace(tzinfo=run.now.tzinfo)
        return durations.next_local_time(
            run.now, config["until_local_time"], weekdays=config.get("weekdays"), time_zone=run.time_zone
        )


@step_type
class WaitForEventStep(StepType):
    name = "wait_for_event"
    label = "Wait for an event"
    description = "Waits until the contact does something (opens an email, submits a form…), or gives up after a while."
    pauses = True
    schema = {
        "event": {
            "type": "string",
            "minLength": 1,
            "maxLength": 100,
            "title": "Event",
            "description": "What to wait for.",
        },
        "filter": {
            "type": ["object", "boolean", "null"],
            "title": "Only if",
            "description": "Only an event that matches this counts (any event of the type if left empty).",
        },
        "timeout": WAIT_LIMIT,
        "next": EDGE,
        "timeout_next": EDGE,
    }
    required = ["event", "timeout_next"]
    ui = {"event": "event_type", "filter": "rule:event", "timeout": "duration"}
    exits = [{"field": "next", "label": "Arrived"}, {"field": "timeout_next", "label": "Timed out"}]

    def edges(self, step):
        return [("next", step.get("next")), ("timeout_next", step.get("timeout_next"))]

    def check(self, step, *, org, definition):
        errors = _timeout_check(step.get("timeout"), "timeout")
        if step.get("filter") not in (None, {}):
            errors += _rule_check(step["filter"], "filter", org)
        return errors

    def run(self, run, step):
        wait = run.token.get("wait")
        if wait is None:
            deadline = durations.after(run.now, step.get("timeout", DEFAULT_WAIT_TIMEOUT))
            return Wait(
                deadline,
                {"kind": "event", "event": step["event"], "filter": step.get("filter"), "deadline": run.iso(deadline)},
            )
        if wait.get("arrived"):
            return Go(step.get("next"), {"event": wait["arrived"]}, "next")
        deadline = datetime.fromisoformat(wait["deadline"])
        if run.now >= deadline:
            return Go(step.get("timeout_next"), {"timed_out": True}, "timeout_next")
        return Wait(deadline, wait)


@step_type
class ApprovalStep(StepType):
    name = "approval"
    label = "Ask for approval"
    description = "Waits until a teammate approves or rejects (they see it under Approvals), or gives up after a while."
    pauses = True
    schema = {
        "approvers": {
            "type": "object",
            "title": "Who approves",
            "description": "Anyone with this role, or one of these people.",
            "additionalProperties": False,
            "properties": {
                "role": choice(
                    "Role",
                    {
                        "admin": "Admins",
                        "marketer": "Marketers",
                        "sales": "Sales",
                        "analyst": "Analysts",
                        "compliance": "Compliance",
                    },
                ),
                "users": {
                    "type": "array",
                    "title": "People",
                    "items": {"type": "integer", "title": "Person"},
                    "minItems": 1,
                },
            },
            "minProperties": 1,
        },
        "timeout": {**WAIT_LIMIT, "description": "How long to wait for a decision (7 days if left empty)."},
        "approved_next": EDGE,
        "rejected_next": EDGE,
        "timeout_next": EDGE,
    }
    required = ["approvers", "approved_next", "rejected_next", "timeout_next"]
    ui = {"approvers.users": "ref:user", "timeout": "duration"}
    exits = [
        {"field": "approved_next", "label": "Approved"},
        {"field": "rejected_next", "label": "Rejected"},
        {"field": "timeout_next", "label": "Timed out"},
    ]

    def edges(self, step):
        return [(name, step.get(name)) for name in ("approved_next", "rejected_next", "timeout_next")]

    def check(self, step, *, org, definition):
        return _timeout_check(step.get("timeout"), "timeout")

    def run(self, run, step):
        wait = run.token.get("wait")
        if wait is None:
            due = durations.after(run.now, step.get("timeout", "P7D"))
            approval_id = run.approval_request(step, due)
            return Wait(due, {"kind": "approval", "approval": approval_id, "deadline": run.iso(due)})
        decision = wait.get("decision") or run.approval_decision(wait.get("approval"))
        if decision in ("approved", "rejected"):
            return Go(step[f"{decision}_next"], {"decision": decision, **wait.get("by", {})}, f"{decision}_next")
        deadline = datetime.fromisoformat(wait["deadline"])
        if run.now >= deadline:
            run.approval_expire(wait.get("approval"))
            return Go(step.get("timeout_next"), {"decision": "timeout"}, "timeout_next")
        return Wait(deadline, wait)


@step_type
class ParallelStep(StepType):
    name = "parallel"
    label = "Do several things at once"
    description = "Starts several paths at the same time; they meet again at a “Join” step."
    schema = {"branches": {"type": "array", "minItems": 2, "maxItems": 10, "items": ID}}
    required = ["branches"]
    exits = [{"array": "branches", "field": None, "label_from": None, "label": "Branch"}]

    def edges(self, step):
        return [(f"branches[{i}]", target) for i, target in enumerate(step.get("branches", []))]

    def check(self, step, *, org, definition):
        from workflows.definitions import merge_of

        merges = {merge_of(definition, target) for target in step.get("branches", [])}
        if len(merges) != 1 or None in merges:
            return ["branches: every branch must end at the same merge step."]
        return []

    def run(self, run, step):
        return Fork(list(step["branches"]))


@step_type
class MergeStep(StepType):
    name = "merge"
    label = "Join"
    description = "Where paths started together meet again: go on when all of them, or the first one, arrive."
    schema = {
        "mode": choice("Go on when", {"all": "All paths have arrived", "any": "The first path arrives"}),
        "next": EDGE,
    }
    required = ["mode"]

    def run(self, run, step):
        return run.merge(step)


@step_type
class LoopStep(StepType):
    name = "loop"
    label = "Repeat for each item"
    description = "Runs the steps of the “For each” path once per item of a list (e.g. each product in a cart)."
    pauses = True  # bounded by ``max``
    schema = {
        "over": {
            "type": "string",
            "minLength": 1,
            "title": "List",
            "description": "Where the list is, e.g. workflow.trigger.properties.items.",
        },
        "as": {
            "type": "string",
            "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$",
            "title": "Call each item",
            "description": "The name later steps use for the current item (letters, digits and _).",
        },
        "max": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_LOOP,
            "title": "At most",
            "description": f"Stop after this many items ({MAX_LOOP} at most).",
        },
        "body_next": ID,
        "next": EDGE,
    }
    required = ["over", "as", "body_next"]
    exits = [{"field": "body_next", "label": "For each"}, {"field": "next", "label": "Done"}]

    def edges(self, step):
        return [("body_next", step.get("body_next")), ("next", step.get("next"))]

    def check(self, step, *, org, definition):
        return _rule_check({"var": step.get("over")}, "over", org)

    def run(self, run, step):
        loops = run.instance.context.setdefault("loops", {})
        state = loops.get(step["id"])
        if state is None:
            items = evaluate({"var": step["over"]}, run.facts())
            items = items if isinstance(items, list) else []
            state = loops[step["id"]] = {"items": items[: step.get("max", MAX_LOOP)], "index": 0}
        if state["index"] >= len(state["items"]):
            del loops[step["id"]]
            run.instance.context.setdefault("vars", {}).pop(step["as"], None)
            return Go(step.get("next"), {"iterations": state["index"]}, "next")
        item = state["items"][state["index"]]
        state["index"] += 1
        run.instance.context.setdefault("vars", {})[step["as"]] = item
        return Go(step["body_next"], {"index": state["index"] - 1}, "body_next")


@step_type
class GoalStep(StepType):
    name = "goal"
    label = "Goal check"
    description = "Ends the run as a success if the contact has reached the goal; otherwise goes on."
    schema = {
        "condition": {
            **RULE,
            "title": "Goal",
            "description": "What counts as success (the workflow's goal if left empty).",
        },
        "next": EDGE,
    }
    ui = {"condition": "rule:contact"}
    exits = [{"field": "next", "label": "Not reached"}]

    def check(self, step, *, org, definition):
        rule = step.get("condition", definition.get("settings", {}).get("goal"))
        if rule is None:
            return ["condition: give one, or set the workflow's settings.goal."]
        return _rule_check(rule, "condition", org)

    def run(self, run, step):
        rule = step.get("condition", run.definition.get("settings", {}).get("goal"))
        if run.holds(rule):
            return Finish("goal_reached")
        return Go(step.get("next"), {"goal": False})


@step_type
class StopStep(StepType):
    name = "stop"
    label = "End"
    description = "Ends the run here."
    schema = {
        "reason": {
            "type": "string",
            "maxLength": 200,
            "title": "Reason",
            "description": "Shown in the run's history.",
        }
    }
    exits = []

    def edges(self, step):
        return []

    def run(self, run, step):
        return Finish("stopped", step.get("reason", ""))


def backoff(step: dict, attempt: int) -> timedelta:
    """The wait before the step's next attempt: its retry policy's base (default 30 s), doubled
    each attempt, with jitter."""
    return retries.backoff(durations.seconds(step.get("retry", {}).get("backoff", "PT30S")), attempt)


def max_attempts(step: dict) -> int:
    return step.get("retry", {}).get("max_attempts", 3)


def step_of(definition: dict, step_id: str) -> dict[str, Any] | None:
    for step in definition.get("steps", []):
        if step.get("id") == step_id:
            return step
    return None
