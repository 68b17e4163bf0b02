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
from django.db.models import QuerySet
from django.utils import timezone

from marketing.bulk_sql import insert_returning
from marketing.conditions import NotCompilable, contact_facts, evaluate, reads_names, to_q, truthy, validate
from marketing.dispatch import dispatch_enqueue
from marketing.models import Contact, Event, Organization, Segment, SegmentMembership

logger = logging.getLogger(__name__)

EMIT_CHUNK = 1000
# What changing a contact outside events can touch: every rule that reads a field.
FIELD_READERS = "fields"


def contacts_matching_rule(*, org: Organization, rule) -> "QuerySet[Contact]":
    """The org's contacts a segment rule selects now, checked and compiled as ``segment_save``
    checks it; each contact once (a rule over tags or lists may join a contact once per tag).
    Raises ``ValidationError`` naming what is wrong, also for a rule with no SQL form."""
    validate(rule, "contact", org=org)
    try:
        q = to_q(rule, "contact", org=org)
    except NotCompilable as exc:
        raise ValidationError(f"Segments run in SQL, and this part has no SQL form: {exc}") from None
    return Contact.objects.filter(org=org, pk__in=Contact.objects.filter(org=org).filter(q).values("pk"))


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
    if segment.kind != Segment.Kind.DYNAMIC or segment.rule is None:
        raise ValidationError({"segment": "Only dynamic segments are recomputed; a static one is edited by hand."})
    now = now or timezone.now()
    org = segment.org
    matching = (
        Contact.objects.filter(org=org).filter(to_q(segment.rule, "contact", org=org, now=now)).order_by().values("pk")
    )
    match_sql, match_params = matching.query.sql_with_params()
    table = SegmentMembership._meta.db_table
    # The matching set is computed once (MATERIALIZED) and anti-joined both ways; left to
    # itself the planner may re-run it for every open stay.
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The planner cannot estimate how many contacts a rule matches and, guessing few,
            # nests loops over the whole set (seconds for 10k members): set-based, hash joins.
            cursor.execute("SET LOCAL enable_nestloop = off")
        cursor.execute(
            f"WITH m AS MATERIALIZED ({match_sql}) "  # noqa: S608  SQL from the ORM; values are parameters
            f"UPDATE {table} SET exited_at = %s WHERE segment_id = %s AND exited_at IS NULL "
            f"AND NOT EXISTS (SELECT 1 FROM m WHERE m.pk = {table}.contact_id) RETURNING contact_id",
            [*match_params, now, segment.pk],
        )
        exited = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            f"WITH m AS MATERIALIZED ({match_sql}) "  # noqa: S608
            f"INSERT INTO {table} (org_id, segment_id, contact_id, entered_at) "
            f"SELECT %s, %s, m.pk, %s FROM m WHERE NOT EXISTS (SELECT 1 FROM {table} s "
            f"WHERE s.segment_id = %s AND s.contact_id = m.pk AND s.exited_at IS NULL) RETURNING contact_id",
            [*match_params, org.pk, segment.pk, now, segment.pk],
        )
        entered = [row[0] for row in cursor.fetchall()]
        if connection.vendor == "postgresql":
            cursor.execute("RESET enable_nestloop")
        members = _refresh_count(segment, now)
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
    """Re-checks the given dynamic segments for the given contacts only.

    A few contacts (one event, one edit) are evaluated in Python — the same semantics as the SQL,
    which a property test holds together — in a handful of queries; a batch takes one query a
    segment, with event subqueries restricted to its contacts.
    """
    now = now or timezone.now()
    contact_ids = sorted(set(contact_ids))
    segments = [s for s in segments if s.kind == Segment.Kind.DYNAMIC and s.rule is not None]
    totals = {"entered": 0, "exited": 0}
    if not contact_ids or not segments:
        return totals
    matching = (_matching_in_python if len(contact_ids) <= PYTHON_CHECK_MAX else _matching_in_sql)(
        org, contact_ids, segments, now
    )
    current: dict[int, set[int]] = {s.pk: set() for s in segments}
    for segment_id, contact_id in _open_stays(org, [s.pk for s in segments], contact_ids):
        current[segment_id].add(contact_id)
    for segment in segments:
        entering = sorted(matching[segment.pk] - current[segment.pk])
        leaving = sorted(current[segment.pk] - matching[segment.pk])
        if not (entering or leaving):
            continue
        with transaction.atomic():
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
            _refresh_count(segment, now)
            _emit(segment, entered=entering, exited=leaving, now=now)
        totals["entered"] += len(entering)
        totals["exited"] += len(leaving)
    return totals


PYTHON_CHECK_MAX = 20


def _open_stays(org: Organization, segment_ids: list[int], contact_ids: list[int]) -> list[tuple[int, int]]:
    """(segment, contact) of the open stays: plain SQL, as this runs for every event."""
    table = SegmentMembership._meta.db_table
    segments_sql, contacts_sql = ", ".join(["%s"] * len(segment_ids)), ", ".join(["%s"] * len(contact_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT segment_id, contact_id FROM {table} WHERE org_id = %s AND segment_id IN ({segments_sql}) "  # noqa: S608
            f"AND contact_id IN ({contacts_sql}) AND exited_at IS NULL",
            [org.pk, *segment_ids, *contact_ids],
        )
        return cursor.fetchall()


def _matching_in_python(org, contact_ids, segments, now) -> dict[int, set[int]]:
    # Tags and lists are two more queries: fetch them only when a rule reads them as a list.
    names = any(reads_names(s.rule) for s in segments)
    contacts = Contact.objects.filter(org=org, pk__any_of=contact_ids).select_related("company")
    contacts = list(contacts.prefetch_related("tags", "lists") if names else contacts)
    facts = {contact.pk: contact_facts(contact, names=names) for contact in contacts}
    return {
        segment.pk: {c.pk for c in contacts if truthy(evaluate(segment.rule, facts[c.pk], contact=c, now=now))}
        for segment in segments
    }


def _matching_in_sql(org, contact_ids, segments, now) -> dict[int, set[int]]:
    return {
        segment.pk: set(
            Contact.objects.filter(org=org, pk__any_of=contact_ids)
            .filter(to_q(segment.rule, "contact", org=org, now=now, within=contact_ids))
            .values_list("pk", flat=True)
        )
        for segment in segments
    }


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


def _refresh_count(segment: Segment, now: datetime) -> int:
    """Stores (and returns) the number of open stays."""
    count = SegmentMembership.objects.filter(segment=segment, exited_at__isnull=True).count()
    Segment.objects.filter(pk=segment.pk).update(member_count=count, computed_at=now)
    return count


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


def segment_delete(*, segment: Segment) -> None:
    """Deletes a segment with its membership history.

    A segment that another segment's rule names (``in_segment``) is kept: deleting it would
    silently empty the other one. Entering and leaving are not recorded as events here, since
    the contacts did not change; the segment is gone.
    """
    with transaction.atomic():
        users = sorted(
            other.slug
            for other in Segment.objects.filter(org_id=segment.org_id, kind=Segment.Kind.DYNAMIC).exclude(pk=segment.pk)
            if segment.slug in _segments_named(other.rule)
        )
        if users:
            raise ValidationError(
                {"segment": f"The rules of {', '.join(users)} use this segment (in_segment); change them first."}
            )
        segment_id, slug = segment.pk, segment.slug
        segment.delete()
    logger.info("segment deleted org=%s segment=%s id=%s", segment.org_id, slug, segment_id)


def _segments_named(rule) -> set[str]:
    """The slugs a rule tests with ``in_segment``."""
    if isinstance(rule, list):
        return set().union(*(_segments_named(item) for item in rule))
    if not isinstance(rule, dict) or len(rule) != 1:
        return set()
    ((op, args),) = rule.items()
    if op == "in_segment":
        slug = args[0] if isinstance(args, list) and args else args
        return {slug} if isinstance(slug, str) else set()
    return _segments_named(args)
