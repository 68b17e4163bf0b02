"""What changed between two definitions (workflows.diff): steps added, removed and changed by id,
fields named in words, a new position not a change; the versions and diff endpoints."""

import copy

import pytest

from marketing.tenancy import org_context
from workflows.diff import definition_diff
from workflows.services import workflow_create, workflow_publish, workflow_update

OLD = {
    "trigger": {"type": "event", "event": "signup"},
    "settings": {"reenrollment": "never"},
    "steps": [
        {"id": "tag", "type": "action", "action": "add_tag", "config": {"tags": ["a"]}, "next": "wait"},
        {"id": "wait", "type": "delay", "name": "Wait a day", "config": {"duration": "P1D"}, "next": "route"},
        {
            "id": "route",
            "type": "condition",
            "condition": {"==": [{"var": "country"}, "DE"]},
            "true_next": "log",
            "false_next": "ab",
        },
        {
            "id": "ab",
            "type": "split",
            "branches": [{"name": "A", "weight": 50, "next": "log"}, {"name": "B", "weight": 50, "next": None}],
        },
        {"id": "log", "type": "action", "action": "log", "config": {"message": "done"}},
    ],
}


def edited(**by_id) -> dict:
    """OLD with some steps replaced by {**step, **changes} (a changes value None removes the step)."""
    new = copy.deepcopy(OLD)
    steps = []
    for step in new["steps"]:
        if step["id"] in by_id and by_id[step["id"]] is None:
            continue
        steps.append({**step, **by_id.get(step["id"], {})})
    new["steps"] = steps
    return new


def test_the_same_definition_has_no_changes():
    diff = definition_diff(OLD, copy.deepcopy(OLD))
    assert diff["added"] == diff["removed"] == diff["changed"] == []
    assert not diff["trigger_changed"] and diff["settings_changed"] == [] and diff["first_step"] is None
    assert diff["summary"] == ["No changes."]


def test_a_step_only_moved_on_the_canvas_is_not_changed_nor_is_a_null_exit_left_out():
    new = edited(tag={"position": {"x": 300, "y": 40}}, log={"next": None})  # "next" was left out
    assert definition_diff(OLD, new)["changed"] == []


def test_added_removed_and_changed_steps_with_their_fields_in_words():
    new = edited(
        log=None,
        wait={"config": {"duration": "P2D"}, "next": "route", "name": "Wait two days"},
        route={"true_next": "mail"},
        tag={"config": {"tags": ["b"]}},
        ab={"branches": [{"name": "A", "weight": 70, "next": "mail"}, {"name": "B", "weight": 30, "next": None}]},
    )
    new["steps"].append(
        {"id": "mail", "type": "action", "action": "send_email", "name": "Welcome", "config": {"template": "hi"}}
    )
    diff = definition_diff(OLD, new)

    assert diff["added"] == ["mail"] and diff["removed"] == ["log"]
    changed = {c["step"]: c for c in diff["changed"]}
    assert list(changed) == ["tag", "wait", "route", "ab"]
    assert changed["tag"]["paths"] == ["config.tags"] and changed["tag"]["fields"] == ["“Tags”"]
    assert changed["wait"]["paths"] == ["name", "config.duration"]  # in the step's own order
    assert changed["wait"]["fields"] == ["its name", "“Wait for”"]
    assert changed["route"]["fields"] == ["where “Yes” leads"]
    assert changed["ab"]["paths"] == ["branches", "branches[].next"]
    assert diff["steps"]["log"] == {"name": "", "type": "action", "kind": "Log a line"}  # as it was
    assert diff["steps"]["mail"]["kind"] == "Send an email"
    assert diff["summary"][:3] == [
        "Added “Welcome” (Send an email).",
        "Removed “log” (Log a line).",
        "Changed “tag” (Add tags): “Tags”.",
    ]


def test_the_trigger_settings_and_first_step():
    new = copy.deepcopy(OLD)
    new["trigger"]["event"] = "signed_up"
    new["settings"] = {"reenrollment": "always"}
    new["steps"] = [new["steps"][1], new["steps"][0], *new["steps"][2:]]
    diff = definition_diff(OLD, new)
    assert diff["trigger_changed"] and diff["trigger_fields"] == ["“Event”"]
    assert diff["settings_changed"] == ["who may start again"]
    assert diff["first_step"] == {"from": "tag", "to": "wait"}
    assert diff["changed"] == []  # the order alone changes no step
    assert "Runs now start at “Wait a day” (Wait) instead of “tag” (Add tags)." in diff["summary"]


def test_a_type_change_and_nothing_before():
    new = edited(log={"type": "stop", "reason": "done", "action": None, "config": None})
    changed = definition_diff(OLD, new)["changed"]
    assert changed[0]["step"] == "log" and changed[0]["fields"][0] == "its type (was Log a line)"
    everything = definition_diff(None, OLD)
    assert everything["added"] == ["tag", "wait", "route", "ab", "log"] and everything["removed"] == []


# -- the API ------------------------------------------------------------------------------------

WORKFLOWS = "/api/v1/workflows/"


@pytest.fixture
def two_versions(org, marketer):
    workflow = workflow_create(org=org, name="Welcome", slug="welcome", definition=OLD)
    workflow_publish(workflow=workflow, by=marketer)
    workflow_update(workflow=workflow, draft_definition=edited(log={"config": {"message": "v2"}}))
    workflow_publish(workflow=workflow)
    ab = {"branches": [{"name": "A", "weight": 50, "next": None}, {"name": "B", "weight": 50, "next": None}]}
    workflow_update(workflow=workflow, draft_definition=edited(log=None, route={"true_next": None}, ab=ab))
    workflow.refresh_from_db()
    return workflow


def test_versions_list_newest_first_with_who_and_the_definition(api, two_versions):
    answer = api.get(f"{WORKFLOWS}{two_versions.pk}/versions/")
    assert answer.status_code == 200
    rows = answer.json()["results"]
    assert [(r["number"], r["published_by"]) for r in rows] == [(2, None), (1, "mara")]
    assert rows[1]["definition"] == OLD and rows[0]["published_at"]


def test_diff_defaults_to_live_against_the_draft_and_takes_version_numbers(api, console, two_versions):
    url = f"{WORKFLOWS}{two_versions.pk}/diff/"
    default = api.get(url).json()
    assert default["from"] == {"version": 2, "label": "version 2"}
    assert default["to"] == {"version": None, "label": "the draft"}
    assert default["removed"] == ["log"] and [c["step"] for c in default["changed"]] == ["route", "ab"]
    assert default["changed"][1]["fields"] == ["where its paths lead"]

    between = console.get(url, {"from": "1", "to": "2"}).json()  # the console session reads it too
    assert between["changed"] == [{"step": "log", "fields": ["“Message”"], "paths": ["config.message"]}]
    assert between["removed"] == [] and between["to"]["label"] == "version 2"


@pytest.mark.parametrize("wanted", ["7", "v1", "99999999999999999999", "²"])
def test_an_unknown_version_is_a_400_on_its_field(api, two_versions, wanted):
    answer = api.get(f"{WORKFLOWS}{two_versions.pk}/diff/", {"to": wanted})
    assert answer.status_code == 400
    assert answer.json()["to"] == [
        f"No version “{wanted}” of this workflow (it has versions 1 to 2); give a number, live or draft."
    ]


def test_nothing_published_yet_compares_with_nothing(api, org):
    workflow = workflow_create(org=org, name="New", slug="new", definition=OLD)
    answer = api.get(f"{WORKFLOWS}{workflow.pk}/diff/").json()
    assert answer["from"]["label"] == "nothing published yet" and len(answer["added"]) == 5
    refused = api.get(f"{WORKFLOWS}{workflow.pk}/diff/", {"from": "1"})
    assert "it has no version yet" in refused.json()["from"][0]


def test_another_orgs_workflow_is_404(api, other_org):
    with org_context(other_org):
        theirs = workflow_create(org=other_org, name="Theirs", slug="theirs", definition=OLD)
        workflow_publish(workflow=theirs)
    assert api.get(f"{WORKFLOWS}{theirs.pk}/versions/").status_code == 404
    assert api.get(f"{WORKFLOWS}{theirs.pk}/diff/").status_code == 404


def test_the_detail_counts_the_running_runs(api, org, contact, publish):
    from workflows.services import workflow_enrol_manually

    workflow = publish([{"id": "wait", "type": "delay", "config": {"duration": "P1D"}, "next": None}])
    assert api.get(f"{WORKFLOWS}{workflow.pk}/").json()["running_runs"] == 0
    workflow_enrol_manually(workflow=workflow, contact_ids=[contact.pk], by=None)
    assert api.get(f"{WORKFLOWS}{workflow.pk}/").json()["running_runs"] == 1
