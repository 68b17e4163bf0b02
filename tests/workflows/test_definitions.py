"""Validation at save: every problem named by step and field, nothing found wrong at run time."""

import pytest
from django.core.exceptions import ValidationError

from tests.factories import ContactListFactory
from workflows.definitions import Problem, definition_errors, definition_problems, problems_for
from workflows.models import Workflow
from workflows.services import workflow_create


def steps(*items, trigger=None, settings=None):
    return {
        "trigger": trigger or {"type": "manual"},
        "steps": list(items),
        **({"settings": settings} if settings else {}),
    }


def log(step_id, next_step=None):
    return {"id": step_id, "type": "action", "action": "log", "config": {"message": step_id}, "next": next_step}


def errors(org, definition):
    return definition_errors(definition, org=org)


def test_a_valid_definition_has_no_errors(org):
    ContactListFactory(org=org, slug="newsletter")
    definition = steps(
        {
            "id": "c",
            "type": "condition",
            "condition": {">": [{"var": "score"}, 10]},
            "true_next": "add",
            "false_next": "wait",
        },
        {"id": "add", "type": "action", "action": "add_to_list", "config": {"list": "newsletter"}, "next": None},
        {"id": "wait", "type": "delay", "config": {"duration": "P1D"}, "next": "c"},
        trigger={
            "type": "event",
            "event": "form_submitted",
            "filter": {"==": [{"var": "event.properties.form"}, "demo"]},
        },
        settings={"reenrollment": "after_exit", "goal": {">=": [{"var": "score"}, 500]}},
    )
    assert errors(org, definition) == []


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        (steps({"id": "x", "type": "teleport"}), "steps[x].type: unknown step type “teleport”"),
        (steps({"id": "x", "type": "action", "action": "fax", "next": None}), "steps[x].action: unknown action “fax”"),
        (
            steps({"id": "x", "type": "action", "action": "add_tag", "config": {"tags": "vip"}, "next": None}),
            "steps[x].config.tags: 'vip' is not of type 'array'",
        ),
        (
            steps({"id": "x", "type": "action", "action": "add_to_list", "config": {"list": "nope"}, "next": None}),
            "steps[x].config.list: no list with slug “nope”",
        ),
        (steps(log("a", "ghost")), "steps[a].next: no step with id “ghost”"),
        (
            steps({"id": "c", "type": "condition", "condition": True, "true_next": None}),
            "steps[c].false_next: 'false_next' is a required property",
        ),
        (steps(log("a"), log("b")), "steps[b]: unreachable from the first step, “a”"),
        (steps(log("a", "b"), log("b", "a")), "steps[a]: the cycle a → b → a has no delay, wait or loop step"),
        (
            steps(
                {
                    "id": "c",
                    "type": "condition",
                    "condition": {"==": [{"var": "shoe_size"}, 42]},
                    "true_next": None,
                    "false_next": None,
                }
            ),
            "steps[c].condition: Unknown field “shoe_size”",
        ),
        (
            steps(
                {
                    "id": "c",
                    "type": "condition",
                    "condition": {"frobnicate": [1]},
                    "true_next": None,
                    "false_next": None,
                }
            ),
            "steps[c].condition: Unknown operator “frobnicate”",
        ),
        (
            steps({"id": "d", "type": "delay", "config": {"duration": "two days"}, "next": None}),
            "steps[d].config.duration: “two days” is not an ISO-8601 duration",
        ),
        (
            steps({"id": "d", "type": "delay", "config": {"until_local_time": "25:00"}, "next": None}),
            "steps[d].config.until_local_time: “25:00” is not a time of day",
        ),
        (steps(log("a", "a2"), log("a2"), {"id": "a", "type": "stop"}), "steps[a].id: another step has this id"),
        (steps(log("a"), trigger={"type": "moon_phase"}), "trigger.type: unknown trigger “moon_phase”"),
        (steps(log("a"), trigger={"type": "event"}), "trigger.event: 'event' is a required property"),
        (
            steps(log("a"), trigger={"type": "schedule", "segment": "x", "cron": "99 * * * *"}),
            "trigger.segment: no segment",
        ),
        (
            steps(log("a"), settings={"reenrollment": "sometimes"}),
            "definition.settings.reenrollment: 'sometimes' is not one of",
        ),
        (
            steps({"id": "p", "type": "parallel", "branches": ["a", "b"]}, log("a"), log("b")),
            "steps[p].branches: every branch must end at the same merge step",
        ),
        (
            steps({"id": "h", "type": "action", "action": "webhook", "config": {"url": "ftp://x"}, "next": None}),
            "steps[h].config.url: Use an http:// or https:// URL.",
        ),
    ],
)
def test_each_problem_is_named_by_step_and_field(org, definition, expected):
    found = errors(org, definition)
    assert any(expected in e for e in found), found


def test_a_cycle_through_a_delay_or_a_loop_is_allowed(org):
    assert (
        errors(org, steps(log("a", "d"), {"id": "d", "type": "delay", "config": {"duration": "P1D"}, "next": "a"}))
        == []
    )


def test_saving_an_invalid_definition_raises_with_every_error(org):
    with pytest.raises(ValidationError) as caught:
        workflow_create(org=org, name="x", slug="x", definition=steps(log("a", "ghost"), log("b")))
    assert caught.value.message_dict["definition"] == ["steps[a].next: no step with id “ghost”."]


# -- the same problems, structured for the canvas ------------------------------------------------


@pytest.mark.parametrize(
    ("definition", "step", "path", "says"),
    [
        (steps({"id": "x", "type": "action", "action": "fax", "next": None}), "x", "action", "unknown action “fax”"),
        (
            steps({"id": "x", "type": "action", "action": "add_tag", "config": {"tags": "vip"}, "next": None}),
            "x",
            "config.tags",
            "is not of type 'array'",
        ),
        (
            steps({"id": "x", "type": "action", "action": "send_email", "config": {}, "next": None}),
            "x",
            "config.template",
            "'template' is a required property",
        ),
        (steps(log("a", "ghost")), "a", "next", "no step with id “ghost”"),
        (
            steps({"id": "c", "type": "condition", "condition": True, "true_next": None}),
            "c",
            "false_next",
            "'false_next' is a required property",
        ),
        (
            steps(
                {
                    "id": "s",
                    "type": "switch",
                    "cases": [{"when": True, "next": None}, {"when": {"frobnicate": [1]}, "next": "nowhere"}],
                    "default_next": None,
                }
            ),
            "s",
            "cases[1].when",
            "Unknown operator “frobnicate”",
        ),
        (
            steps(
                {
                    "id": "c",
                    "type": "condition",
                    "condition": {"==": [{"var": "shoe_size"}, 42]},
                    "true_next": None,
                    "false_next": None,
                }
            ),
            "c",
            "condition",
            "Unknown field “shoe_size”",
        ),
        (
            steps({"id": "d", "type": "delay", "config": {"duration": "two days"}, "next": None}),
            "d",
            "config.duration",
            "is not an ISO-8601 duration",
        ),
        (
            steps({"id": "m", "type": "merge", "mode": "some"}),
            "m",
            "mode",
            "'some' is not one of 'all', 'any'",
        ),
        (steps(log("a"), log("b")), "b", "", "unreachable from the first step"),
        (steps(log("a"), trigger={"type": "event"}), None, "trigger.event", "'event' is a required property"),
        (steps(log("a"), settings={"goal": {"frobnicate": [1]}}), None, "settings.goal", "Unknown operator"),
    ],
)
def test_each_problem_names_its_step_and_field_for_the_canvas(org, definition, step, path, says):
    problems = definition_problems(definition, org=org)
    assert any(p.step == step and p.path == path and says in p.message for p in problems), problems
    # One source: the sentences are the same problems, in the same order.
    assert [p.sentence for p in problems] == definition_errors(definition, org=org)


def test_a_step_without_an_id_is_named_by_its_place(org):
    (problem,) = definition_problems(steps(log("a"), {"type": "stop"}), org=org)
    assert (problem.step, problem.path) == (None, "definition.steps[1].id")
    assert problem.sentence == "definition.steps[1].id: 'id' is a required property"


def test_validate_answers_the_problems_structured_and_as_sentences(api):
    definition = steps(
        {"id": "c", "type": "condition", "condition": True, "true_next": "ghost"},
        {"id": "x", "type": "action", "action": "fax", "next": None},
    )
    answer = api.post("/api/v1/workflows/validate/", {"definition": definition}, content_type="application/json")
    assert answer.status_code == 400
    body = answer.json()
    assert body["problems"] == [
        {"step": "c", "path": "false_next", "message": "'false_next' is a required property"},
        {"step": "x", "path": "action", "message": body["problems"][1]["message"]},
    ]
    assert body["errors"] == [
        "steps[c].false_next: 'false_next' is a required property",
        f"steps[x].action: {body['problems'][1]['message']}",
    ]


def test_publish_and_save_refuse_with_the_problems_structured(org, api):
    workflow = Workflow.objects.create(org=org, name="broken", slug="broken", draft_definition=steps(log("a", "ghost")))
    published = api.post(f"/api/v1/workflows/{workflow.pk}/publish/", {}, content_type="application/json")
    assert published.status_code == 400
    assert published.json()["definition"] == ["steps[a].next: no step with id “ghost”."]
    assert published.json()["problems"] == [{"step": "a", "path": "next", "message": "no step with id “ghost”."}]

    saved = api.patch(
        f"/api/v1/workflows/{workflow.pk}/",
        {"definition": steps({"id": "w", "type": "delay", "config": {"duration": "soon"}, "next": None})},
        content_type="application/json",
    )
    assert saved.status_code == 400
    assert [(p["step"], p["path"]) for p in saved.json()["problems"]] == [("w", "config.duration")]


def test_sentences_made_elsewhere_are_structured_too(org):
    definition = steps(log("a", "ghost"))
    found = problems_for(
        ["steps[a].next: no step with id “ghost”.", "steps[a].config.template: “x” is not published."],
        definition=definition,
        org=org,
    )
    assert found == [
        Problem("a", "next", "no step with id “ghost”."),
        Problem("a", "config.template", "“x” is not published."),
    ]
