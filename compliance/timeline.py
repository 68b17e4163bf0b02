"""Consent changes and topic choices on a contact's timeline (``marketing.timeline``)."""

from compliance.models import ConsentRecord, TopicChoice
from marketing.timeline import TimelineEntry, TimelineSource, timeline_source


@timeline_source
class ConsentEntries(TimelineSource):
    kind = "consent"

    def entries(self, contact, limit):
        records = ConsentRecord.objects.filter(org_id=contact.org_id, contact=contact).order_by("-recorded_at", "-id")
        return [
            TimelineEntry(
                at=r.recorded_at,
                kind=self.kind,
                title=f"{r.get_purpose_display()} {'granted' if r.granted else 'withdrawn'}",
                detail=f"source: {r.source}, basis: {r.get_lawful_basis_display()}",
            )
            for r in records[:limit]
        ]

    def count(self, contact):
        return ConsentRecord.objects.filter(org_id=contact.org_id, contact=contact).count()


@timeline_source
class TopicChoiceEntries(TimelineSource):
    """Topics the contact joined or left (the preference centre, by hand), newest first."""

    kind = "topic"

    def entries(self, contact, limit):
        choices = (
            TopicChoice.objects.filter(org_id=contact.org_id, contact=contact)
            .select_related("topic")
            .order_by("-recorded_at", "-id")
        )
        return [
            TimelineEntry(
                at=c.recorded_at,
                kind=self.kind,
                title=f"{'Joined' if c.subscribed else 'Left'} the topic “{c.topic.name}”",
                detail=f"source: {c.source}",
            )
            for c in choices[:limit]
        ]

    def count(self, contact):
        return TopicChoice.objects.filter(org_id=contact.org_id, contact=contact).count()
