"""Consent changes on a contact's timeline (``marketing.timeline``)."""

from compliance.models import ConsentRecord
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
