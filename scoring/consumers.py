"""The scoring consumer of the event dispatch (``marketing.dispatch``): each batch is scored by the
rules (``scoring.rules.events_score``), then the contacts whose score changed get a fresh
conversion probability. Idempotent: a ledger row per (event, rule) is unique, and a redelivered
batch finds its rows and adds nothing."""

from marketing.dispatch import EventConsumer, event_consumer
from marketing.models import Event, Organization
from marketing.tenancy import current_org
from scoring.rules import events_score


@event_consumer
class Scoring(EventConsumer):
    """Scores each batch in every active model of the org; prediction is best effort."""

    name = "scoring"

    def consume(self, events: list[Event]) -> None:
        if not events:
            return
        org = current_org()
        if org is None or org.pk != events[0].org_id:
            org = Organization.objects.get(pk=events[0].org_id)
        changed = events_score(org=org, events=events)
        if not changed:
            return
        from scoring.predictive import contacts_predict

        # Its own savepoint; it logs, counts and swallows a failure: the rules' scores stand.
        contacts_predict(org=org, contact_ids=sorted(changed))
