"""The workflows' event consumer (``marketing.dispatch``): each stored event may start runs
(event triggers), wake runs waiting for it (wait-for-event steps), and end runs whose goal or
exit rule now holds. Idempotent: an enrolment per (workflow, contact, event) is unique, and a
run already woken for an event ignores it the second time."""

from collections import defaultdict
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from marketing.conditions.facts import event_facts
from marketing.dispatch import EventConsumer, event_consumer
from marketing.models import Contact, Event
from workflows.models import InstanceStatus, Workflow, WorkflowInstance
from workflows.services import workflow_enrol
from workflows.triggers import triggers
from workflows.triggers.builtin import filter_matches

CLOCK_SKEW = timedelta(seconds=5)


@event_consumer
class Workflows(EventConsumer):
    """Starts, wakes and ends workflow runs from events."""

    name = "workflows"

    def consume(self, events: list[Event]) -> None:
        if not events:
            return
        types = {e.type for e in events}
        listening = list(
            Workflow.objects.filter(status=Workflow.Status.ACTIVE, trigger_event__in=types).select_related(
                "live_version"
            )
        )
        waiting = list(
            WorkflowInstance.objects.filter(
                contact_id__any_of=sorted({e.contact_id for e in events}),
                status=InstanceStatus.WAITING,
                waits_for_event=True,
            )
            .select_related("version")
            .order_by("pk")
            .select_for_update(of=("self",))
        )
        if not listening and not waiting:
            return
        contacts = {
            c.pk: c
            for c in Contact.objects.select_related("company").filter(pk__any_of=sorted({e.contact_id for e in events}))
        }
        by_type = defaultdict(list)
        for workflow in listening:
            by_type[workflow.trigger_event].append(workflow)
        for event in events:
            contact = contacts.get(event.contact_id)
            if contact is None:
                continue
            for workflow in by_type.get(event.type, []):
                config = workflow.live_version.definition["trigger"]
                kind = triggers().get(config["type"])
                if kind is not None and kind.matches(event, config, contact):
                    workflow_enrol(
                        workflow=workflow,
                        contact_ids=[contact.pk],
                        trigger_type=config["type"],
                        trigger_key=f"event:{event.pk}",
                        trigger_data={"id": event.pk, **event_facts(event)},
                    )
        self._wake(waiting, events, contacts)

    def _wake(self, waiting: list[WorkflowInstance], events: list[Event], contacts: dict) -> None:
        from marketing.bulk_sql import update_rows
        from workflows.services import _run_soon

        now = timezone.now()
        events_of = defaultdict(list)
        for event in events:
            events_of[event.contact_id].append(event)
        changed = []
        for instance in waiting:
            woken = False
            settings = instance.version.definition.get("settings") or {}
            if settings.get("goal") is not None or settings.get("exit") is not None:
                woken = True  # the run checks its goal and exit rules when it wakes
            for token in instance.tokens:
                wait = token.get("wait") or {}
                if wait.get("kind") != "event" or wait.get("arrived"):
                    continue
                entered = token.get("entered_at")
                for event in events_of[instance.contact_id]:
                    if event.type != wait["event"] or (entered and event.occurred_at < _parse(entered) - CLOCK_SKEW):
                        continue  # another type, or it happened before the run began to wait
                    if filter_matches(wait.get("filter"), event=event, contact=contacts[instance.contact_id]):
                        wait["arrived"] = {"id": event.pk, **event_facts(event)}
                        token["wake_at"] = now.isoformat()
                        woken = True
                        break
            if woken:
                instance.wake_at = now
                changed.append(instance)
        if changed:
            with transaction.atomic():
                update_rows(changed, ["tokens", "wake_at"])
                _run_soon()


def _parse(value: str):
    from datetime import datetime

    return datetime.fromisoformat(value)
