"""Dry run: one contact through a workflow on a simulated clock, sending and writing nothing.

The engine's own step logic runs (``workflows.engine.Run`` with ``dry_run=True``) on an unsaved
``WorkflowInstance`` held in memory: conditions, switches and splits decide as they would for
real (they read the contact's real facts at the simulated time), delays and timeouts move the
simulated clock instead of waiting, and actions return their ``preview`` — what they would
have done — instead of running. Nothing is written: no instance, step run, delivery, approval,
tag or event, and no HTTP call is made. The whole simulation also runs inside a transaction
that is always rolled back, as a safety net against an action preview that writes by mistake.

What is simulated, and how:

- ``events``: ``{"type", "after" (an ISO-8601 duration from the start), "properties"}``. A
  ``wait_for_event`` step whose event (type and filter) comes before its timeout is woken at
  that moment the way ``workflows.consumers`` wakes a real run; otherwise its timeout branch is
  taken. Simulated events are not stored, so rules that count stored events (``event_count``)
  do not see them.
- ``approve``: ``True`` (every approval step is approved at once), ``False`` (rejected at once)
  or ``{step_id: "approved" | "rejected" | "timeout"}`` (unlisted steps are approved).
- Actions change nothing, so a later condition sees the contact as it is now (a tag an earlier
  ``add_tag`` step would add is not there); ``set_variable`` is the exception, since it only
  changes the run's own variables.
- A send step's preview carries ``guard``: what the outbox's guards (the one function sending
  asks) would say at that simulated time — ``send``, ``block`` or ``hold`` with the guard's
  ``kind`` and reason — counting the stored messages plus this run's earlier sends that the
  guards let through. A projection (``workflows.projection``) adds these up over a segment.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import isodate
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from marketing.conditions import event_facts
from marketing.models import Contact, Event
from workflows.definitions import definition_errors, settings_of
from workflows.engine import MAX_STEPS, Batch, Run, iso
from workflows.models import InstanceStatus, Workflow, WorkflowInstance
from workflows.triggers.builtin import filter_matches

DEFAULT_MAX_STEPS = 200
DEFAULT_HORIZON = timedelta(days=730)
MAX_EVENTS = 100
DECISIONS = ("approved", "rejected", "timeout")


class SimulatedEvent:
    """An event of the simulation: never stored, seen only by wait-for-event steps."""

    def __init__(self, *, index: int, type: str, at: datetime, properties: dict, org, contact):
        self.index, self.type, self.at, self.properties = index, type, at, properties
        # An unsaved Event, so filters see exactly what they see for a stored one.
        self.event = Event(org=org, contact=contact, type=type, properties=properties, occurred_at=at)
        self.used_by: list[str] = []


def _duration(value: Any, where: str) -> timedelta:
    if not isinstance(value, str):
        raise ValidationError({"events": [f"{where}: give an ISO-8601 duration as text, e.g. PT2H or P1D."]})
    try:
        parsed = isodate.parse_duration(value)
    except (isodate.ISO8601Error, ValueError) as exc:
        raise ValidationError(
            {"events": [f"{where}: “{value}” is not an ISO-8601 duration, e.g. PT2H or P1D."]}
        ) from exc
    if isinstance(parsed, isodate.Duration):  # months or years: counted from the start
        parsed = parsed.totimedelta(start=datetime(2026, 1, 1))
    if parsed < timedelta(0):
        raise ValidationError({"events": [f"{where}: “{value}” is negative; events come after the start."]})
    return parsed


def simulated_events(raw: Any, *, start: datetime, org, contact) -> list[SimulatedEvent]:
    """The simulation's events from their JSON form, in time order; errors name the item."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValidationError({"events": ['A list of {"type", "after", "properties"} objects.']})
    if len(raw) > MAX_EVENTS:
        raise ValidationError({"events": [f"At most {MAX_EVENTS} events; this list has {len(raw)}."]})
    events = []
    for index, item in enumerate(raw):
        where = f"events[{index}]"
        if not isinstance(item, dict):
            raise ValidationError({"events": [f'{where}: an object {{"type", "after", "properties"}}.']})
        unknown = set(item) - {"type", "after", "properties"}
        if unknown:
            raise ValidationError({"events": [f"{where}: unknown key “{sorted(unknown)[0]}”."]})
        kind = item.get("type")
        if not isinstance(kind, str) or not kind.strip() or len(kind) > 100:
            raise ValidationError({"events": [f"{where}.type: the event type, e.g. email_clicked."]})
        properties = item.get("properties") or {}
        if not isinstance(properties, dict):
            raise ValidationError({"events": [f"{where}.properties: a JSON object."]})
        at = start + _duration(item.get("after", "PT0S"), f"{where}.after")
        events.append(
            SimulatedEvent(index=index, type=kind.strip(), at=at, properties=properties, org=org, contact=contact)
        )
    return sorted(events, key=lambda e: (e.at, e.index))


def _decision_for(approve: bool | dict, step_id: str) -> str:
    if isinstance(approve, dict):
        return approve.get(step_id, "approved")
    return "approved" if approve else "rejected"


def _check_approve(approve: Any) -> None:
    if isinstance(approve, bool):
        return
    if not isinstance(approve, dict) or any(v not in DECISIONS for v in approve.values()):
        raise ValidationError(
            {"approvals": [f"true, false, or {{step id: one of {', '.join(DECISIONS)}}} for each approval step."]}
        )


def chosen_definition(*, workflow: Workflow, definition: dict | None = None, draft: bool = False) -> tuple[dict, str]:
    """(definition, where it came from): a given one, the draft, or the live version (the draft
    when nothing is published yet)."""
    if definition is not None:
        return definition, "the definition given"
    if draft or workflow.live_version_id is None:
        return workflow.draft_definition, "the draft"
    return workflow.live_version.definition, f"live version {workflow.live_version.number}"


def workflow_dry_run(
    *,
    workflow: Workflow,
    contact: Contact,
    start: datetime | None = None,
    definition: dict | None = None,
    draft: bool = False,
    events: list[dict] | None = None,
    approve: bool | dict = True,
    trigger_data: dict | None = None,
    max_steps: int = DEFAULT_MAX_STEPS,
    horizon: timedelta = DEFAULT_HORIZON,
    checked: bool = False,
) -> dict:
    """Runs ``contact`` through ``workflow`` on a simulated clock from ``start`` (default now)
    with no side effects; returns the path (each step with its time, decision and output, the
    action previews) and how the run ended. Raises ValidationError (per field) for a definition
    that cannot be published or for malformed events. ``checked``: the caller has checked the
    definition already (a projection dry-runs many contacts through one definition)."""
    definition, source = chosen_definition(workflow=workflow, definition=definition, draft=draft)
    errors = [] if checked else definition_errors(definition, org=workflow.org)
    if errors:
        raise ValidationError({"definition": errors})
    _check_approve(approve)
    if contact.org_id != workflow.org_id:
        raise ValidationError({"contact": ["No such contact in this workflow's organisation."]})
    start = start or timezone.now()
    if timezone.is_naive(start):
        start = timezone.make_aware(start, UTC)
    simulated = simulated_events(events, start=start, org=workflow.org, contact=contact)
    with transaction.atomic():
        try:
            return _simulate(
                workflow=workflow,
                contact=contact,
                start=start,
                definition=definition,
                source=source,
                events=simulated,
                approve=approve,
                trigger_data=trigger_data or {},
                max_steps=max(1, max_steps),
                horizon=horizon,
            )
        finally:
            transaction.set_rollback(True)  # the safety net: whatever was written goes


def _simulate(
    *,
    workflow: Workflow,
    contact: Contact,
    start: datetime,
    definition: dict,
    source: str,
    events: list[SimulatedEvent],
    approve: bool | dict,
    trigger_data: dict,
    max_steps: int,
    horizon: timedelta,
) -> dict:
    first = definition["steps"][0]["id"]
    instance = WorkflowInstance(
        org=workflow.org,
        workflow=workflow,
        contact=contact,
        status=InstanceStatus.PENDING,
        wake_at=start,
        current_step=first,
        tokens=[{"id": "t1", "step": first}],
        context={"trigger": trigger_data, "vars": {}, "steps": {}},
        trigger_type="dry_run",
        trigger_key="dry-run",
        trigger_data=trigger_data,
        triggered_at=start,
    )
    settings = settings_of(definition)
    watches_events = settings.get("goal") is not None or settings.get("exit") is not None
    clock, taken, trace, stopped = start, 0, [], None
    # Every round runs a step or moves the clock forward; this bounds a bug that would do neither.
    for _round in range(2 * max_steps + len(events) + 10):
        budget = min(MAX_STEPS, max_steps - taken)
        run = Run(instance, contact=contact, now=clock, batch=Batch(clock), dry_run=True, definition=definition)
        run.budget = budget
        run.advance()
        taken += budget - run.budget
        trace.extend(run.trace)
        if instance.finished_at is not None:
            break
        if taken >= max_steps:
            stopped = "max_steps"
            break
        _decide_approvals(instance, approve, clock)
        moment = _next_moment(instance, events, contact, clock, watches_events)
        if moment is None:
            stopped = "waits_forever"
            break
        if moment - start > horizon:
            stopped = "horizon"
            break
        clock = max(clock, moment)
        _deliver_events(instance, events, contact, clock)
    else:
        stopped = "max_steps"
    _guard_sends(workflow=workflow, contact=contact, definition=definition, trace=trace)
    return _report(
        workflow=workflow,
        contact=contact,
        definition=definition,
        source=source,
        instance=instance,
        start=start,
        clock=clock,
        trace=trace,
        events=events,
        taken=taken,
        stopped=stopped,
    )


def _guard_sends(*, workflow: Workflow, contact: Contact, definition: dict, trace: list[dict]) -> None:
    """Adds the guards' verdict to each send step's preview, in the order of the path, as the
    step's action answers it (``dry_run_verdict``: an action that sends nothing answers None);
    ``earlier`` carries the run's sends that went out, for the next steps' frequency caps."""
    from workflows.actions import actions

    registry, steps = actions(), {s["id"]: s for s in definition["steps"]}
    earlier: list = []
    for entry in trace:
        preview = (
            entry["detail"].get("dry_run") if entry["type"] == "action" and isinstance(entry["detail"], dict) else None
        )
        step = steps.get(entry["step"], {})
        action = registry.get(step.get("action"))
        if not isinstance(preview, dict) or action is None:
            continue
        guard = action.dry_run_verdict(
            org=workflow.org,
            contact=contact,
            config=step.get("config", {}),
            at=datetime.fromisoformat(entry["at"]),
            earlier=earlier,
        )
        if guard is not None:
            preview["guard"] = guard


def _waiting(instance: WorkflowInstance, kind: str) -> list[dict]:
    return [t for t in instance.tokens if (t.get("wait") or {}).get("kind") == kind]


def _decide_approvals(instance: WorkflowInstance, approve: bool | dict, clock: datetime) -> None:
    """A simulated person decides each new approval at once (a timeout decision lets it run out)."""
    for token in _waiting(instance, "approval"):
        wait = token["wait"]
        if "decision" in wait:
            continue
        wait["decision"] = _decision_for(approve, token["step"])
        if wait["decision"] != "timeout":
            token["wake_at"] = iso(clock)


def _arrival(token: dict, events: list[SimulatedEvent], contact: Contact) -> SimulatedEvent | None:
    """The first simulated event that a waiting token would be woken by, before its deadline."""
    wait = token["wait"]
    entered = datetime.fromisoformat(token["entered_at"])
    deadline = datetime.fromisoformat(wait["deadline"])
    for event in events:
        if event.type != wait["event"] or event.at < entered or event.at >= deadline:
            continue
        if filter_matches(wait.get("filter"), event=event.event, contact=contact):
            return event
    return None


def _next_moment(
    instance: WorkflowInstance, events: list[SimulatedEvent], contact: Contact, clock: datetime, watches_events: bool
) -> datetime | None:
    moments = []
    for token in instance.tokens:
        wait = token.get("wait") or {}
        if wait.get("kind") == "merge":
            continue  # a sibling branch wakes it
        if wait.get("kind") == "event" and not wait.get("arrived"):
            event = _arrival(token, events, contact)
            if event is not None:
                moments.append(event.at)
        if token.get("wake_at"):
            moments.append(datetime.fromisoformat(token["wake_at"]))
    if watches_events:  # every event of an enrolled contact makes the run check its goal and exit rules
        moments += [e.at for e in events if e.at > clock]
    return min(moments) if moments else None


def _deliver_events(instance: WorkflowInstance, events: list[SimulatedEvent], contact: Contact, clock: datetime):
    """Marks waits whose event has come by ``clock`` as arrived, as ``workflows.consumers`` does."""
    for token in _waiting(instance, "event"):
        wait = token["wait"]
        if wait.get("arrived"):
            continue
        event = _arrival(token, events, contact)
        if event is not None and event.at <= clock:
            wait["arrived"] = {"id": None, **event_facts(event.event)}
            token["wake_at"] = iso(clock)
            event.used_by.append(token["step"])


def _report(
    *,
    workflow,
    contact,
    definition,
    source,
    instance,
    start,
    clock,
    trace,
    events,
    taken,
    stopped,
) -> dict:
    names = {s["id"]: s.get("name", "") for s in definition["steps"]}
    actions = {s["id"]: s.get("action") for s in definition["steps"] if s["type"] == "action"}
    path, previews = [], []
    for entry in trace:
        item = {
            "at": entry["at"],
            "step": entry["step"],
            "name": names.get(entry["step"], ""),
            "type": entry["type"],
            "decision": str(entry["decision"]),
            "next": entry.get("next"),
            "output": entry["detail"],
        }
        path.append(item)
        if entry["type"] == "action" and isinstance(entry["detail"], dict) and "dry_run" in entry["detail"]:
            previews.append(
                {
                    "at": entry["at"],
                    "step": entry["step"],
                    "action": actions.get(entry["step"]),
                    "preview": entry["detail"]["dry_run"],
                }
            )
    finished = instance.finished_at is not None
    return {
        "workflow": {"id": workflow.pk, "slug": workflow.slug, "name": workflow.name},
        "definition": source,
        "contact": {"id": contact.pk, "email": contact.email},
        "started_at": iso(start),
        "ended_at": iso(instance.finished_at) if finished else None,
        "simulated_until": iso(clock),
        "status": str(instance.status),
        "result": instance.result or "",
        "error": instance.error,
        "stopped": stopped,
        "waiting_at": [t["step"] for t in instance.tokens] if not finished else [],
        "steps_run": taken,
        "path": path,
        "actions": previews,
        "events": [{"type": e.type, "at": iso(e.at), "properties": e.properties, "woke": e.used_by} for e in events],
    }
