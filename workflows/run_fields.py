"""The ``workflow.*`` paths a run of one workflow carries, for the rule builder's field list
(``marketing.conditions`` asks for them by namespace: ``workflows.apps`` registers the provider,
so ``marketing`` never reads a workflow itself)."""

from workflows.models import Workflow

GROUP = "Workflow"


def _field(path: str, label: str, type_: str) -> dict:
    return {"path": path, "label": label, "group": GROUP, "type": type_}


def workflow_fields(*, org, ref: int, event_types: list[dict]) -> list[dict]:
    """The ``workflow.*`` paths a run of the workflow ``ref`` (its id) carries: its trigger event
    (with the keys seen on that event type, from ``event_types``), each step's result and each
    loop's variable. An unknown id adds only the trigger's own paths (the rule builder still
    works without the rest)."""
    workflow = Workflow.objects.filter(org=org, pk=ref).only("draft_definition").first()
    definition = workflow.draft_definition if workflow and isinstance(workflow.draft_definition, dict) else {}
    fields = [
        _field("workflow.trigger.type", "Trigger event type", "string"),
        _field("workflow.trigger.occurred_at", "Trigger event time", "datetime"),
    ]
    trigger = definition.get("trigger") if isinstance(definition.get("trigger"), dict) else {}
    keys = next((t["properties"] for t in event_types if t["type"] == trigger.get("event")), [])
    fields += [_field(f"workflow.trigger.properties.{k}", f"Trigger {k}", "string") for k in keys]
    steps = definition.get("steps") if isinstance(definition.get("steps"), list) else []
    for step in steps:
        if not isinstance(step, dict) or not isinstance(step.get("id"), str):
            continue
        name = step.get("name") or step["id"]
        fields.append(_field(f"workflow.steps.{step['id']}.result", f"Result of “{name}”", "object"))
        if step.get("type") == "loop" and isinstance(step.get("as"), str) and step["as"]:
            fields.append(_field(f"workflow.vars.{step['as']}", f"Loop item “{step['as']}”", "object"))
    return fields
