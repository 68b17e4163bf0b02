# The official JsonLogic conformance cases, data/jsonlogic_tests.json, are tests.json as served at
# https://jsonlogic.com/tests.json, vendored verbatim from the public repository jwadhams/json-logic
# (https://github.com/jwadhams/json-logic, MIT licence, Copyright (c) 2015 Jeremy Wadhams).
"""``marketing.conditions.evaluate``: pure JsonLogic as jsonlogic.com specifies it, plus the
wrapper's own promises (bounded work, custom operators need a contact, no way into Python)."""

import json
from pathlib import Path

import pytest

from marketing.conditions import ConditionError, evaluate, operators, prepare, reads_contact, truthy
from marketing.conditions.engine import OPS_BUDGET

OFFICIAL = json.loads((Path(__file__).parent / "data" / "jsonlogic_tests.json").read_text())
# Entries are comment strings or [rule, data, expected]; the position is the entry's in the file.
CASES = [(position, entry) for position, entry in enumerate(OFFICIAL) if isinstance(entry, list)]


def json_equal(left, right) -> bool:
    """Equality of JSON values: 1 == 1.0 (one number type), but true is not 1 and [] is not {}."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(json_equal(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    return type(left) is type(right) and left == right


def _case_id(position: int, rule) -> str:
    text = json.dumps(rule, separators=(",", ":"))
    return f"{position}:{text if len(text) <= 40 else text[:39] + '…'}"


def test_the_vendored_suite_is_whole():
    # 267 cases between the first comment and the closing "EOF" marker: a truncated copy fails here.
    assert OFFICIAL[0] == "# Non-rules get passed through"
    assert OFFICIAL[-1] == "EOF"
    assert len(CASES) == 267
    assert all(len(entry) == 3 for _, entry in CASES)


@pytest.mark.parametrize(("rule", "data", "expected"), [e for _, e in CASES], ids=[_case_id(p, e[0]) for p, e in CASES])
def test_official_jsonlogic_case(rule, data, expected):
    result = evaluate(rule, data)

    assert json_equal(result, expected), f"{json.dumps(rule)} on {json.dumps(data)}: {result!r} != {expected!r}"


@pytest.mark.parametrize(("rule", "data", "expected"), [e for _, e in CASES], ids=[_case_id(p, e[0]) for p, e in CASES])
def test_a_prepared_rule_answers_as_evaluate_does(rule, data, expected):
    prepared = prepare(rule)  # compiled once, as scoring does for each rule of a batch
    assert prepared is not None

    result = prepared.evaluate(data, data_json=json.dumps(data))

    assert json_equal(result, expected), f"{json.dumps(rule)} on {json.dumps(data)}: {result!r} != {expected!r}"


def test_a_rule_with_a_registered_operator_is_not_prepared():
    assert prepare({">": [{"event_count": ["page_view", 30]}, 2]}) is None


def test_json_equal_keeps_json_types_apart():
    assert json_equal(1, 1.0)
    assert json_equal([1, {"a": 2.0}], [1.0, {"a": 2}])
    assert not json_equal(True, 1)
    assert not json_equal(0, False)
    assert not json_equal(None, [])
    assert not json_equal("1", 1)


# -- iterators over something that is not a list ----------------------------------------------


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"filter": [{"var": "x"}, True]}, []),
        ({"filter": [{"var": "x"}, {">": [{"var": ""}, 1]}]}, []),
        ({"reduce": [{"var": "x"}, {"+": [{"var": "current"}, {"var": "accumulator"}]}, 0]}, 0),
        ({"all": [{"var": "x"}, True]}, False),
        ({"some": [{"var": "x"}, True]}, False),
        ({"none": [{"var": "x"}, True]}, True),
        # the source of a nested iterator is guarded too
        ({"map": [{"var": "xs"}, {"filter": [{"var": ""}, True]}]}, [[], [1]]),
        ({"!": [{"filter": [{"var": "x"}, True]}]}, True),
    ],
)
def test_iterating_a_non_list_is_iterating_an_empty_list(rule, expected):
    assert json_equal(evaluate(rule, {"x": 5, "xs": ["abc", [1]]}), expected)


@pytest.mark.parametrize("source", [5, "abc", {"a": 1}])
def test_mapping_a_non_list_is_an_empty_list(source):
    assert evaluate({"map": [{"var": "x"}, 1]}, {"x": source}) == []


def test_a_malformed_iterator_is_a_condition_error_not_an_engine_error():
    # The retry over [] still cannot run an iterator without its logic; the error is ours, named.
    with pytest.raises(ConditionError, match="filter"):
        evaluate({"filter": 5}, {})


# -- bounded work ------------------------------------------------------------------------------


def test_a_rule_over_the_operation_budget_is_stopped_with_a_readable_error():
    items = list(range(400))  # 400 × 400 inner evaluations is well past the budget
    runaway = {"map": [items, {"map": [items, {"+": [{"var": ""}, 1]}]}]}

    with pytest.raises(ConditionError) as caught:
        evaluate(runaway, {})

    assert str(caught.value) == f"The rule does more than {OPS_BUDGET} operations; simplify it."


def test_a_runaway_rule_over_data_is_stopped_too():
    data = {"xs": list(range(1000))}
    runaway = {"map": [{"var": "xs"}, {"some": [[0] * 200, {"==": [{"var": ""}, 1]}]}]}  # 1000 × 200

    with pytest.raises(ConditionError, match="operations; simplify it"):
        evaluate(runaway, data)


def test_a_rule_within_the_budget_runs():
    items = list(range(20))

    result = evaluate({"map": [items, {"map": [items, 1]}]}, {})

    assert len(result) == 20
    assert all(row == [1] * 20 for row in result)


# -- custom operators need a contact ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("event_count", {">=": [{"event_count": ["page_view", None, 30]}, 3]}),
        ("in_segment", {"in_segment": "vips"}),
        ("has_tag", {"and": [True, {"or": [False, {"has_tag": "vip"}]}]}),
        ("in_list", {"!": {"in_list": "newsletter"}}),
        ("days_since", {"<": [{"days_since": "last_activity_at"}, 7]}),
    ],
)
def test_a_custom_operator_without_a_contact_raises_naming_it(name, rule):
    assert name in operators()

    with pytest.raises(ConditionError) as caught:
        evaluate(rule, {"email": "ana@example.com"})

    assert name in str(caught.value)
    assert "contact" in str(caught.value)


def test_an_unknown_operator_is_a_condition_error_naming_it():
    with pytest.raises(ConditionError, match="no_such_op"):
        evaluate({"no_such_op": [1]}, {})


# -- truthiness -------------------------------------------------------------------------------

# jsonlogic.com/truthy.html, "backed up by the shared unit tests".
FALSY = [False, None, 0, 0.0, "", [], {}]
TRUTHY = [True, 1, -1, 0.5, "0", "false", " ", [0], [[]], [None], {"foo": "bar"}]


@pytest.mark.parametrize(("value", "expected"), [(v, False) for v in FALSY] + [(v, True) for v in TRUTHY], ids=repr)
def test_truthy_follows_jsonlogic(value, expected):
    assert truthy(value) is expected
    # … and agrees with the engine's own !! over the same value
    assert evaluate({"!!": [{"var": "v"}]}, {"v": value}) is expected
    assert json_equal(evaluate({"if": [{"var": "v"}, "yes", "no"]}, {"v": value}), "yes" if expected else "no")


# -- no way into Python -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "__class__",
        "__globals__",
        "__dict__",
        "__builtins__",
        "__class__.__init__.__globals__",
        "name.__class__",
        "name.upper",
        "score.real",
        "tags.append",
        "tags.__len__",
        "constructor",
        "__proto__",
    ],
)
def test_a_var_path_cannot_reach_python_internals(path):
    data = {"name": "Ana", "score": 3, "tags": ["vip"]}

    assert evaluate({"var": path}, data) is None
    assert evaluate({"var": [path, "fallback"]}, data) == "fallback"


def test_only_json_crosses_into_the_engine():
    class Secret:
        token = "s3cret"

    with pytest.raises((TypeError, ConditionError)):
        evaluate({"var": "x.token"}, {"x": Secret()})


def test_a_python_str_rule_is_the_string_literal_not_json_text():
    # datalogic-py would parse a str rule as JSON; the wrapper passes JSON text, so it stays a string.
    assert evaluate('{"var": "a"}', {"a": 1}) == '{"var": "a"}'
    assert evaluate("1", {}) == "1"


@pytest.mark.parametrize(
    ("rule", "reads"),
    [
        ({"==": [{"var": "event.properties.path"}, "/pricing"]}, False),
        ({"in": ["/pricing", {"var": ["event.properties.path", ""]}]}, False),
        ({"missing": ["event.properties.form"]}, False),
        ({"some": [{"var": "event.properties.items"}, {"==": [{"var": "sku"}, "a"]}]}, False),  # sku: the item's
        (True, False),
        ({"==": [{"var": "job_title"}, "VP"]}, True),
        ({"and": [{"var": "event.type"}, {"var": "company.industry"}]}, True),
        ({"missing_some": [1, ["event.properties.a", "email"]]}, True),
        ({"some": [{"var": "tags"}, {"==": [{"var": ""}, "vip"]}]}, True),  # the list itself is the contact's
        ({"var": ""}, True),  # the whole document
        ({">=": [{"event_count": ["page_view", None, 30]}, 3]}, True),  # a registered operator reads the contact
        ({"==": [1, 1], "!=": [1, 2]}, True),  # not an operation: counted as reading, to be safe
    ],
)
def test_reads_contact_tells_event_only_rules_apart(rule, reads):
    assert reads_contact(rule) is reads
