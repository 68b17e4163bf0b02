"""Evaluation: datalogic-py (a Rust JsonLogic engine) behind a wrapper that owns the edges.

- Rules and data go to the engine as JSON text, so a Python ``str`` rule is the string literal
  JsonLogic says it is (the engine would parse a ``str`` as JSON).
- Custom operators get their context by rewriting: before evaluation every custom-operator node
  is replaced by the value its operator computes for ``contact`` at ``now``.
- Work is metered: a rule that would run past ``OPS_BUDGET`` operations is stopped with an error.
"""

import json
from datetime import datetime
from functools import lru_cache
from typing import Any

import datalogic_py
from django.utils import timezone

from marketing.conditions.operators import operators

OPS_BUDGET = 100_000
# What most rules answer, read without the JSON parser.
_PLAIN = {"true": True, "false": False, "null": None}
_engine = datalogic_py.Engine()


class ConditionError(Exception):
    """A rule could not be evaluated (a custom operator without a contact, a runaway rule, a type
    the rule cannot compare)."""


@lru_cache(maxsize=4096)
def _compiled(rule_json: str) -> datalogic_py.Rule:
    return _engine.compile(rule_json)


def evaluate(rule: Any, data: Any, *, contact=None, now: datetime | None = None, data_json: str | None = None) -> Any:
    """Evaluates ``rule`` against ``data`` with JsonLogic semantics; returns plain JSON values.

    Rules that use registered operators (``event_count``, ``in_segment``, …) need ``contact``.
    ``data_json`` is ``data`` already serialised, for a caller that evaluates many rules against
    the same facts (scoring: every rule of an event's type).
    """
    rule = _rewrite(rule, contact=contact, now=now)
    try:
        data_json = json.dumps(data) if data_json is None else data_json
        result, _ops = _compiled(json.dumps(rule)).evaluate_metered(data_json, OPS_BUDGET)
    except datalogic_py.DataLogicError as exc:
        if exc.operator in ("filter", "map", "reduce", "all", "some", "none") and exc.error_type == "InvalidArguments":
            # JsonLogic answers these over a non-list as over an empty list; the engine raises.
            return _over_empty_list(rule, data, contact=contact, now=now)
        raise _condition_error(exc) from exc
    return json.loads(result)


class Prepared:
    """A rule with no registered operator, compiled once, for evaluating it against many facts."""

    def __init__(self, rule: Any):
        self.rule = rule
        self._compiled = _compiled(json.dumps(_rewrite(rule, contact=None, now=None)))

    def evaluate(self, data: Any, *, data_json: str | None = None) -> Any:
        data_json = json.dumps(data) if data_json is None else data_json
        try:
            result, _ops = self._compiled.evaluate_metered(data_json, OPS_BUDGET)
        except datalogic_py.DataLogicError:
            return evaluate(self.rule, data)  # the edge cases (iterators over non-lists, errors)
        return _PLAIN[result] if result in _PLAIN else json.loads(result)


def prepare(rule: Any) -> Prepared | None:
    """``rule`` compiled for repeated evaluation, or None when it uses a registered operator
    (``event_count``, ``in_segment``, …), whose value depends on the contact: use ``evaluate``."""
    try:
        return Prepared(rule)
    except (ConditionError, datalogic_py.DataLogicError):  # needs a contact, or does not compile
        return None


def _condition_error(exc: datalogic_py.DataLogicError) -> ConditionError:
    if exc.error_type == "BudgetExceeded":
        return ConditionError(f"The rule does more than {OPS_BUDGET} operations; simplify it.")
    return ConditionError(f"{exc.error_type} in {exc.operator or 'the rule'}: {exc}")


def truthy(value: Any) -> bool:
    """JsonLogic truthiness (jsonlogic.com/truthy): false, null, 0, "", [] and {} are false;
    everything else is true."""
    if isinstance(value, bool):  # what most rules answer: no round trip through JSON
        return value
    return _engine.truthy(json.dumps(value))


def _rewrite(node: Any, *, contact, now) -> Any:
    """Replaces every registered-operator node by its value for ``contact`` at ``now``."""
    if isinstance(node, list):
        return [_rewrite(item, contact=contact, now=now) for item in node]
    if not isinstance(node, dict) or len(node) != 1:
        return node
    ((name, args),) = node.items()
    operator = operators().get(name)
    if name == "map" and isinstance(args, list) and args:
        # The engine maps a non-list as [x] (without raising); JsonLogic maps it as [].
        source = _rewrite(args[0], contact=contact, now=now)
        guarded = {"if": [{"===": [{"type": [source]}, "array"]}, source, []]}
        return {"map": [guarded, *(_rewrite(a, contact=contact, now=now) for a in args[1:])]}
    if operator is None:
        return {name: _rewrite(args, contact=contact, now=now)}
    if contact is None:
        raise ConditionError(f"The rule uses {name}, which needs a contact to evaluate against.")
    return operator.value(args if isinstance(args, list) else [args], contact=contact, now=now or timezone.now())


def _over_empty_list(rule: Any, data: Any, *, contact, now) -> Any:
    """Evaluates again with every iterating operator's source that is not a list taken as []."""
    guarded = _guard_iterators(rule)
    try:
        result, _ops = _compiled(json.dumps(guarded)).evaluate_metered(json.dumps(data), OPS_BUDGET)
    except datalogic_py.DataLogicError as exc:  # malformed still (e.g. no logic), or over budget
        raise _condition_error(exc) from exc
    return json.loads(result)


def _guard_iterators(node: Any) -> Any:
    if isinstance(node, list):
        return [_guard_iterators(item) for item in node]
    if not isinstance(node, dict) or len(node) != 1:
        return node
    ((name, args),) = node.items()
    if name in ("filter", "map", "reduce", "all", "some", "none") and isinstance(args, list) and args:
        source = _guard_iterators(args[0])
        # {"if": [{"===": [{"type": [source]}, "array"]}, source, []]}: the engine's own type test.
        guarded = {"if": [{"===": [{"type": [source]}, "array"]}, source, []]}
        return {name: [guarded, *(_guard_iterators(a) for a in args[1:])]}
    return {name: _guard_iterators(args)}
