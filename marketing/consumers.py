"""Event consumers of the ground floor (``marketing.dispatch`` imports this module)."""

from marketing.dispatch import EventConsumer, event_consumer
from marketing.models import Event, Organization
from marketing.segments import segments_affected, segments_check_contacts

SEGMENT_EVENTS = {"segment_entered", "segment_exited"}


@event_consumer
class SegmentMembership(EventConsumer):
    """Re-checks, for the batch's contacts only, the dynamic segments the batch can affect:
    those counting one of its event types, and those reading contact fields (an event moves
    ``last_activity_at``). Idempotent: a second pass finds nothing to enter or leave."""

    name = "segments"

    def consume(self, events: list[Event]) -> None:
        if not events:
            return
        org = Organization.objects.get(pk=events[0].org_id)
        types = {event.type for event in events}
        affected = segments_affected(org=org, event_types=types, fields_changed=not types <= SEGMENT_EVENTS)
        if affected:
            segments_check_contacts(org=org, contact_ids={e.contact_id for e in events}, segments=affected)
