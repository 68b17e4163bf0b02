"""The scoring consumer of the event dispatch (``marketing.dispatch``): each batch is scored by the
rules (``scoring.rules.events_score``); the contacts whose score changed then get a fresh
conversion probability from a task that runs after the batch commits. Idempotent: a ledger row
per (event, rule) is unique, and a redelivered batch finds its rows and adds nothing."""

from marketing.dispatch import EventConsumer, event_consumer
from marketing.models import Event, Organization
from marketing.tenancy import current_org
from scoring.rules import events_score


@event_consumer
class Scoring(EventConsumer):
    """Scores each batch in every active model of the org; prediction follows, best effort."""

    name = "scoring"

    def consume(self, events: list[Event]) -> None:
        if not events:
            return
        org = current_org()
        if org is None or org.pk != events[0].org_id:
            org = Organization.objects.get(pk=events[0].org_id)
        changed = events_score(org=org, events=events)
        if changed:
            from scoring.predictive import predictions_enqueue

            predictions_enqueue(org=org, contact_ids=changed)
