"""A contact's timeline: what happened to them, newest first, from every app that has something.

Sources are registered classes (``@timeline_source``); marketing contributes events and merges,
later apps add messages, score changes and handoffs. A page is built by asking each source for
its newest ``page * per_page`` entries and merging them, so no source is read in full.
"""

import heapq
from dataclasses import dataclass
from datetime import datetime

from marketing.machine_events import MACHINE_EVENT_TYPES
from marketing.models import Contact, ContactMerge, Event


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str
    title: str
    detail: str = ""


class TimelineSource:
    """One kind of entry. ``entries`` returns the newest ``limit`` entries, newest first."""

    kind = ""

    def entries(self, contact: Contact, limit: int) -> list[TimelineEntry]:
        raise NotImplementedError

    def count(self, contact: Contact) -> int:
        raise NotImplementedError


_sources: list[TimelineSource] = []


def timeline_source(cls: type[TimelineSource]) -> type[TimelineSource]:
    """Registers a timeline source class."""
    _sources.append(cls())
    return cls


def timeline_page(*, contact: Contact, page: int, per_page: int = 50) -> tuple[list[TimelineEntry], int]:
    """Entries of page ``page`` (1-based), newest first, and the total number of entries."""
    from django.utils.module_loading import autodiscover_modules

    autodiscover_modules("timeline")
    limit = page * per_page
    streams = [source.entries(contact, limit) for source in _sources]
    merged = heapq.merge(*streams, key=lambda entry: entry.at, reverse=True)
    entries = list(merged)[(page - 1) * per_page : limit]
    return entries, sum(source.count(contact) for source in _sources)


@timeline_source
class EventEntries(TimelineSource):
    kind = "event"

    def entries(self, contact, limit):
        events = Event.objects.filter(org_id=contact.org_id, contact=contact).order_by("-occurred_at", "-id")[:limit]
        return [
            TimelineEntry(
                at=e.occurred_at,
                # A scanner's or a privacy proxy's open or click: shown apart (dimmed), as it counts nowhere.
                kind="machine" if e.type in MACHINE_EVENT_TYPES else self.kind,
                title=e.type,
                detail=", ".join(f"{k}: {v}" for k, v in list(e.properties.items())[:6]),
            )
            for e in events
        ]

    def count(self, contact):
        return Event.objects.filter(org_id=contact.org_id, contact=contact).count()


@timeline_source
class MergeEntries(TimelineSource):
    kind = "merge"

    def entries(self, contact, limit):
        merges = ContactMerge.objects.filter(org_id=contact.org_id, kept=contact).order_by("-merged_at")[:limit]
        return [
            TimelineEntry(
                at=m.merged_at,
                kind=self.kind,
                title=f"Merged contact #{m.merged_contact_id} ({m.reason})",
                detail=", ".join(
                    f"{field}: {c['kept']!r} / {c['merged']!r} → {c['chosen']!r}" for field, c in m.conflicts.items()
                )
                or "no conflicting fields",
            )
            for m in merges
        ]

    def count(self, contact):
        return ContactMerge.objects.filter(org_id=contact.org_id, kept=contact).count()
