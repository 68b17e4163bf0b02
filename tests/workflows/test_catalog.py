"""The catalog the canvas builds its palette and forms from: every registered step type, action
and trigger, each with a complete form schema (a title on every field, no schema that accepts
anything unsaid), widgets only for fields the form has, and edges that are not form fields."""

import re

import jsonschema
import pytest
from django.test import Client

from channels_app.models import Channel
from marketing.services import api_key_create
from marketing.tenancy import org_context
from workflows.actions import actions
from workflows.steps import step_types
from workflows.triggers import triggers

CATALOG = "/api/v1/workflows/catalog/"
WIDGETS = {
    "rule:contact",
    "rule:event",
    "duration",
    "local_time",
    "weekdays",
    "ref:segment",
    "ref:workflow",
    "ref:list",
    "ref:user",
    "ref:tag",
    "contact_field",
    "event_type",
}
CHANNEL_WIDGET = re.compile(r"^ref:(message_template|destination):(?P<channel>\w+)$")


@pytest.fixture
def catalog(api):
    response = api.get(CATALOG)
    assert response.status_code == 200
    return response.json()


def items(catalog):
    for kind in ("steps", "actions", "triggers"):
        for item in catalog[kind]:
            yield f"{kind}:{item.get('type') or item.get('name')}", item


def schema_faults(schema, where) -> list[str]:
    """Every sub-schema that is bare ({}) or a field without a title, named by its path."""
    if not isinstance(schema, dict):
        return [f"{where}: not a schema"]
    if schema == {}:
        return [f"{where}: bare {{}}"]
    faults = []
    for name, field in schema.get("properties", {}).items():
        if not isinstance(field, dict) or not field.get("title"):
            faults.append(f"{where}.{name}: no title")
        faults += schema_faults(field, f"{where}.{name}")
    if isinstance(schema.get("items"), dict):
        faults += schema_faults(schema["items"], f"{where}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        faults += schema_faults(schema["additionalProperties"], f"{where}.*")
    for keyword in ("oneOf", "anyOf"):
        for index, option in enumerate(schema.get(keyword, [])):
            if not option.get("title"):
                faults.append(f"{where}.{keyword}[{index}]: a choice without a title")
            faults += schema_faults(option, f"{where}.{keyword}[{index}]")
    return faults


def field_at(schema, path):
    """The sub-schema of a ui key ("config.duration", "cases[].when"), or None; a field may be
    one of an object's choices (``oneOf``)."""
    for part in path.split("."):
        is_list = part.endswith("[]")
        places = [schema, *schema.get("oneOf", [])]
        found = [
            p["properties"][part.removesuffix("[]")]
            for p in places
            if part.removesuffix("[]") in p.get("properties", {})
        ]
        if not found:
            return None
        schema = found[0]
        if is_list:
            schema = schema.get("items")
    return schema


def test_every_registered_step_type_action_and_trigger_is_in_the_catalog(catalog):
    assert sorted(item["type"] for item in catalog["steps"]) == sorted(step_types())
    assert sorted(item["name"] for item in catalog["actions"]) == sorted(actions())
    assert sorted(item["name"] for item in catalog["triggers"]) == sorted(triggers())
    for where, item in items(catalog):
        assert set(item) == {
            "type" if where.startswith("steps") else "name",
            "label",
            "description",
            "schema",
            "ui",
            "edges",
        }
        assert item["label"] and item["description"], where


def test_every_schema_is_valid_titled_and_never_bare(catalog):
    faults = []
    for where, item in items(catalog):
        jsonschema.Draft202012Validator.check_schema(item["schema"])
        assert item["schema"].get("type") == "object", where
        faults += schema_faults(item["schema"], where)
    assert faults == []


def test_edges_are_not_form_fields(catalog):
    for where, item in items(catalog):
        fields = item["schema"].get("properties", {})
        for edge in item["edges"]:
            if "array" not in edge:
                assert edge["label"] and edge["field"] not in fields, (where, edge)
            elif edge["field"] is None:  # the array holds the targets: no form field at all
                assert edge["array"] not in fields, (where, edge)
            else:
                entry = fields[edge["array"]]["items"]
                assert edge["field"] not in entry["properties"], (where, edge)
                assert edge["field"] not in entry.get("required", []), (where, edge)
                assert edge["label_from"] in entry["properties"], (where, edge)
        if where.startswith("steps"):  # what the canvas keeps itself
            assert not {"type", "id", "name", "position"} & set(fields), where


def test_ui_names_fields_of_the_schema_with_known_widgets(catalog):
    for where, item in items(catalog):
        for path, widget in item["ui"].items():
            assert field_at(item["schema"], path) is not None, (where, path)
            channel = CHANNEL_WIDGET.match(widget)
            assert widget in WIDGETS or (channel and channel["channel"] in Channel.values), (where, widget)


def test_the_exits_the_canvas_labels(catalog):
    steps = {item["type"]: item for item in catalog["steps"]}
    labels = {t: [(e.get("array"), e["field"], e.get("label")) for e in s["edges"]] for t, s in steps.items()}
    assert labels["condition"] == [(None, "true_next", "Yes"), (None, "false_next", "No")]
    assert labels["switch"] == [("cases", "next", "Path"), (None, "default_next", "Otherwise")]
    assert steps["switch"]["edges"][0]["label_from"] == "name"
    assert labels["wait_for_event"] == [(None, "next", "Arrived"), (None, "timeout_next", "Timed out")]
    assert [e["field"] for e in steps["approval"]["edges"]] == ["approved_next", "rejected_next", "timeout_next"]
    assert [e["field"] for e in steps["loop"]["edges"]] == ["body_next", "next"]
    assert steps["stop"]["edges"] == []
    send_email = next(a for a in catalog["actions"] if a["name"] == "send_email")
    assert [e["field"] for e in send_email["edges"]] == ["next", "on_error"]
    assert send_email["ui"] == {"template": "ref:message_template:email"}
    slack = next(a for a in catalog["actions"] if a["name"] == "notify_slack")
    assert slack["ui"] == {"template": "ref:message_template:slack", "destination": "ref:destination:slack"}


def test_a_choice_of_fields_shows_only_the_chosen_ones(catalog):
    """A delay is "for a while", "until a date" or "until a time of day" (with its weekdays):
    the form asks which, then shows that choice's fields alone."""
    delay = next(s for s in catalog["steps"] if s["type"] == "delay")["schema"]["properties"]["config"]
    assert delay.get("properties", {}) == {}
    assert [(o["title"], list(o["properties"])) for o in delay["oneOf"]] == [
        ("Wait a while", ["duration"]),
        ("Wait until a date", ["until"]),
        ("Wait until a time of day", ["until_local_time", "weekdays"]),
    ]
    schedule = next(t for t in catalog["triggers"] if t["name"] == "schedule")["schema"]
    assert set(schedule["properties"]) == {"segment", "time_zone"}
    jsonschema.validate({"segment": "all", "every": "P1D"}, schedule)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"segment": "all"}, schedule)


def test_a_form_filled_from_the_catalog_validates_as_a_step(org, api, catalog):
    """What the canvas sends back (form data plus the edges) is a definition the server accepts."""
    delay = next(s for s in catalog["steps"] if s["type"] == "delay")
    assert field_at(delay["schema"], "config.duration")["title"]
    send_tag = next(a for a in catalog["actions"] if a["name"] == "add_tag")
    jsonschema.validate({"tags": ["vip"]}, send_tag["schema"])
    event = next(t for t in catalog["triggers"] if t["name"] == "event")
    jsonschema.validate({"event": "form_submitted"}, event["schema"])
    definition = {
        "trigger": {"type": "event", "event": "form_submitted"},
        "steps": [
            {"id": "tag", "type": "action", "action": "add_tag", "config": {"tags": ["vip"]}, "next": "wait"},
            {"id": "wait", "type": "delay", "config": {"duration": "P2D", "weekdays": ["mon"]}, "next": None},
        ],
    }
    answer = api.post("/api/v1/workflows/validate/", {"definition": definition}, content_type="application/json")
    assert answer.json() == {"valid": True, "errors": []}


def test_the_catalog_is_the_same_for_every_org_and_needs_a_key(org, other_org, catalog):
    with org_context(other_org):
        key = api_key_create(org=other_org, name="b")[1]
    other = Client(headers={"Authorization": f"Bearer {key}"})
    assert other.get(CATALOG).json() == catalog
    assert Client().get(CATALOG).status_code in (401, 403)


def test_the_catalog_is_in_the_api_schema(api):
    schema = api.get("/api/schema/?format=json").json()
    assert "get" in schema["paths"][CATALOG]
