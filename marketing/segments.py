"""Segments: dynamic ones are a rule kept in step with the contacts, static ones a hand-made set.

Membership is history: a row per stay, closed by ``exited_at``. A full recompute is three
set-based statements (close the departed, open the new, count), whatever the size; the
incremental check re-runs only the segments an event or a contact change can affect, for only
those contacts. Entering and leaving are recorded as ``segment_entered`` / ``segment_exited``
events and dispatched like any other, so workflows and scoring can react to them.
"""

import logging
from collections.abc import Iterable
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from marketing.bulk_sql import insert_returning
from marketing.conditions import NotCompilable, to_q, validate
from marketing.dispatch import dispatch_enqueue
from marketing.models import Contact, Event, Organization, Segment, SegmentMembership

logger = logging.getLogger(__name__)

EMIT_CHUNK = 1000
# What changing a contact outside events can touch: every rule that reads a field.
FIELD_READERS = "fields"


def segment_save(
    *,
    org: Organization,
    name: str,
    slug: str,
    kind: str = Segment.Kind.DYNAMIC,
    rule=None,
    description: str = "",
    segment: Segment | None = None,
) -> Segment:
    """Creates or updates a segment; a dynamic one is validated, compiled and computed at once.

    The first computation of a new segment records no enter events (the members were there
    before the segment); later recomputes do.
    """
    segment = segment or Segment(org=org)
    is_new = segment.pk is None
    if kind == Segment.Kind.DYNAMIC:
        if rule is None:
            raise ValidationError({"rule": "A dynamic segment needs a rule."})
        try:
            validate(rule, "contact", org=org)
            to_q(rule, "contact", org=org)
        except ValidationError as exc:
            raise ValidationError({"rule": exc.messages}) from exc
        except NotCompilable as exc:
            raise ValidationError({"rule": f"Segments run in SQL, and this part has no SQL form: {exc}"}) from exc
    elif rule is not None:
        raise ValidationError({"rule": "A static segment has no rule; add contacts to it instead."})
    rule_changed = segment.rule != rule
    segment.name, segment.slug, segment.kind, segment.rule, segment.description = name, slug, kind, rule, description
    segment.full_clean(exclude=["org"])
    if Segment.objects.filter(org=org, slug=slug).exclude(pk=segment.pk).exists():
        raise ValidationError({"slug": "A segment with this slug already exists."})
    with transaction.atomic():
        segment.save()
        if kind == Segment.Kind.DYNAMIC and (is_new or rule_changed):
            segment_recompute(segment=segment, emit=not is_new)
    return segment


def segment_recompute(*, segment: Segment, now: datetime | None = None, emit: bool = True) -> dict[str, int]:
    """Brings a dynamic segment's membership in step with its rule, in a few statements."""
    now = now or timezone.now()
    org = segment.org
    matching = Contact.objects.filter(org=org).filter(to_q(segment.rule, "contact", org=org, now=now)).values("pk")
    match_sql, match_params = matching.query.sql_with_params()
    table = SegmentMembership._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET exited_at = %s WHERE segment_id = %s AND exited_at IS NULL "  # noqa: S608
            f"AND NOT EXISTS (SELECT 1 FROM ({match_sql}) m WHERE m.pk = {table}.contact_id) RETURNING contact_id",
            [now, segment.pk, *match_params],
        )
        exited = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            f"INSERT INTO {table} (org_id, segment_id, contact_id, entered_at) "  # noqa: S608
            f"SELECT %s, %s, m.pk, %s FROM ({match_sql}) m WHERE NOT EXISTS (SELECT 1 FROM {table} s "
            f"WHERE s.segment_id = %s AND s.contact_id = m.pk AND s.exited_at IS NULL) RETURNING contact_id",
            [org.pk, segment.pk, now, *match_params, segment.pk],
        )
        entered = [row[0] for row in cursor.fetchall()]
        members = SegmentMembership.objects.filter(segment=segment, exited_at__isnull=True).count()
        Segment.objects.filter(pk=segment.pk).update(member_count=members, computed_at=now)
        if emit:
            _emit(segment, entered=entered, exited=exited, now=now)
    logger.info(
        "segment recomputed org=%s segment=%s members=%d entered=%d exited=%d",
        org.slug,
        segment.slug,
        members,
        len(entered),
        len(exited),
    )
    return {"members": members, "entered": len(entered), "exited": len(exited)}


def segments_check_contacts(
    *, org: Organization, contact_ids: Iterable[int], segments: Iterable[Segment], now: datetime | None = None
) -> dict[str, int]:
    """Re-checks the given dynamic segments for the given contacts only (one query a segment)."""
    now = now or timezone.now()
    contact_ids = sorted(set(contact_ids))
    totals = {"entered": 0, "exited": 0}
    if not contact_ids:
        return totals
    for segment in segments:
        q = to_q(segment.rule, "contact", org=org, now=now)
        matching = set(Contact.objects.filter(org=org, pk__any_of=contact_ids).filter(q).values_list("pk", flat=True))
        with transaction.atomic():
            current = set(
                SegmentMembership.objects.select_for_update()
                .filter(segment=segment, contact_id__any_of=contact_ids, exited_at__isnull=True)
                .values_list("contact_id", flat=True)
            )
            entering, leaving = sorted(matching - current), sorted(current - matching)
            if leaving:
                SegmentMembership.objects.filter(
                    segment=segment, contact_id__any_of=leaving, exited_at__isnull=True
                ).update(exited_at=now)
            if entering:
                stored = insert_returning(
                    SegmentMembership,
                    columns={"contact": entering},
                    fixed={"org": org.pk, "segment": segment.pk, "entered_at": now},
                    returning=["contact_id"],
                )
                entering = [row[0] for row in stored]  # a concurrent check may have opened some
            if entering or leaving:
                Segment.objects.filter(pk=segment.pk).update(
                    member_count=SegmentMembership.objects.filter(segment=segment, exited_at__isnull=True).count()
                )
                _emit(segment, entered=entering, exited=leaving, now=now)
        totals["entered"] += len(entering)
        totals["exited"] += len(leaving)
    return totals


def segments_affected(
    *, org: Organization, event_types: set[str] | None = None, fields_changed: bool = False
) -> list[Segment]:
    """The dynamic segments whose rule reads one of the event types, or any contact field."""
    affected = []
    for segment in Segment.objects.filter(org=org, kind=Segment.Kind.DYNAMIC):
        types, reads_fields = rule_reads(segment.rule)
        if (event_types and types & event_types) or (fields_changed and reads_fields):
            affected.append(segment)
    return affected


def rule_reads(rule) -> tuple[set[str], bool]:
    """The event types a rule counts, and whether it reads contact fields."""
    types: set[str] = set()
    reads_fields = False

    def walk(node) -> None:
        nonlocal reads_fields
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict) and len(node) == 1:
            ((op, args),) = node.items()
            if op == "event_count" and isinstance(args, list) and args and isinstance(args[0], str):
                types.add(args[0])
            elif op in ("var", "days_since", "has_tag", "in_list", "in_segment"):
                reads_fields = True
            else:
                walk(args)

    walk(rule)
    return types, reads_fields


def segment_add_contacts(*, segment: Segment, contacts: Iterable[Contact], now: datetime | None = None) -> int:
    """Adds contacts to a static segment (those already in it stay as they are)."""
    if segment.kind != Segment.Kind.STATIC:
        raise ValidationError({"segment": "Only static segments take contacts by hand; edit the rule instead."})
    now = now or timezone.now()
    ids = sorted({c.pk for c in contacts if c.org_id == segment.org_id})
    with transaction.atomic():
        stored = [
            row[0]
            for row in insert_returning(
                SegmentMembership,
                columns={"contact": ids},
                fixed={"org": segment.org_id, "segment": segment.pk, "entered_at": now},
                returning=["contact_id"],
            )
        ]
        _refresh_count(segment, now)
        _emit(segment, entered=stored, exited=[], now=now)
    return len(stored)


def segment_remove_contacts(*, segment: Segment, contacts: Iterable[Contact], now: datetime | None = None) -> int:
    """Takes contacts out of a static segment (their stay is closed, not deleted)."""
    if segment.kind != Segment.Kind.STATIC:
        raise ValidationError({"segment": "Only static segments take contacts by hand; edit the rule instead."})
    now = now or timezone.now()
    ids = sorted({c.pk for c in contacts})
    with transaction.atomic():
        open_stays = SegmentMembership.objects.filter(segment=segment, contact_id__any_of=ids, exited_at__isnull=True)
        left = sorted(open_stays.values_list("contact_id", flat=True))
        open_stays.update(exited_at=now)
        _refresh_count(segment, now)
        _emit(segment, entered=[], exited=left, now=now)
    return len(left)


def _refresh_count(segment: Segment, now: datetime) -> None:
    count = SegmentMembership.objects.filter(segment=segment, exited_at__isnull=True).count()
    Segment.objects.filter(pk=segment.pk).update(member_count=count, computed_at=now)


def _emit(segment: Segment, *, entered: list[int], exited: list[int], now: datetime) -> None:
    """Records the moves as events and queues them for dispatch, in chunks."""
    stamp = now.isoformat()
    for event_type, contact_ids in (("segment_entered", entered), ("segment_exited", exited)):
        for first in range(0, len(contact_ids), EMIT_CHUNK):
            chunk = contact_ids[first : first + EMIT_CHUNK]
            stored = insert_returning(
                Event,
                columns={"contact": chunk, "message_id": [f"{event_type}:{segment.pk}:{c}:{stamp}" for c in chunk]},
                fixed={
                    "org": segment.org_id,
                    "type": event_type,
                    "occurred_at": now,
                    "received_at": now,
                    "source": "segment",
                    "properties": {"segment": segment.slug, "segment_id": segment.pk},
                },
                returning=["id"],
            )
            if stored:
                dispatch_enqueue(org=segment.org, event_ids=[row[0] for row in stored])
