"""Dispatch: stored events go to every registered consumer, in batches, at least once.

A ``DispatchBatch`` row commits with the events it lists; after commit one Celery task per
batch (never one per event) hands the events to each consumer. A consumer is idempotent on its
own natural key (a ledger row per (event, rule), an enrolment per (workflow, contact, event)),
so a batch handed over twice does no harm, and no receipt row per event is needed. If the task
is lost or a consumer fails, the sweeper sends the batch again after a backoff.

Consumers are classes registered with ``@event_consumer`` in their app's ``consumers`` module.
"""

import logging
import traceback
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.module_loading import autodiscover_modules

from marketing.bulk_sql import array_literal
from marketing.database_roles import system_alias
from marketing.models import DispatchBatch, Event, Organization

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
MAX_BACKOFF = timedelta(minutes=30)
STALE_PENDING = timedelta(seconds=60)


class EventConsumer:
    """A consumer gets each stored event at least once; it is idempotent on its own keys."""

    name = ""

    def consume(self, events: list[Event]) -> None:
        raise NotImplementedError


_consumers: dict[str, EventConsumer] = {}
_discovered = False


def event_consumer(cls: type[EventConsumer]) -> type[EventConsumer]:
    """Registers a consumer class (one instance serves every batch)."""
    _consumers[cls.name] = cls()
    return cls


def consumers() -> dict[str, EventConsumer]:
    """Every registered consumer, after importing each installed app's ``consumers`` module."""
    global _discovered
    if not _discovered:
        autodiscover_modules("consumers")
        _discovered = True
    return dict(_consumers)


def dispatch_enqueue(*, org: Organization, event_ids: list[int]) -> DispatchBatch:
    """Records a batch in the current transaction and sends its task after commit."""
    from marketing.celery import enqueue_on_commit
    from marketing.tasks import dispatch_batch

    batch = DispatchBatch.objects.create(org=org, event_ids=event_ids)
    enqueue_on_commit(dispatch_batch, batch_id=batch.pk)
    return batch


def dispatch_batch_run(*, batch_id: int) -> bool:
    """Claims the batch, hands its events to every consumer, marks it done. False if not claimed.

    Events reach consumers grouped by contact, each contact's in ``occurred_at`` order. The
    batch's contacts are locked first, in id order; the consumers' work and the batch's new
    status commit together, each consumer in its own savepoint: one commit a batch (not one per
    consumer), and a crash before it leaves nothing half done. A consumer's failure rolls back
    its own savepoint only and leaves the batch for the sweeper to retry with backoff; the
    others' work is idempotent, so running them again is harmless.
    """
    from marketing.tenancy import org_context

    now = timezone.now()
    # Claimed and read before the org is known: as the system role (docs/tenancy.md).
    batches = DispatchBatch.objects.with_scopes_disabled().using(system_alias())
    claimable = batches.filter(pk=batch_id, status=DispatchBatch.Status.PENDING)
    if not claimable.update(status=DispatchBatch.Status.RUNNING, lease_until=now + LEASE, attempts=F("attempts") + 1):
        return False  # done already, or another worker has it
    batch = batches.select_related("org").get(pk=batch_id)
    with org_context(batch.org), transaction.atomic():
        if connection.vendor == "postgresql":
            # What a batch writes is derived from stored, durably committed events: if the server
            # crashes before this commit's WAL reaches the disk (a fraction of a second), the
            # whole batch is lost with its "done" mark, never half of it, and runs again once its
            # lease expires. So the commit need not wait for the flush (about a tenth of a batch).
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit = off")
        events = list(
            Event.objects.filter(org=batch.org, pk__any_of=batch.event_ids).order_by("contact_id", "occurred_at", "id")
        )
        _contacts_lock(sorted({event.contact_id for event in events}))
        failed = []
        for consumer in consumers().values():
            try:
                with transaction.atomic():
                    consumer.consume(events)
            except Exception:  # one consumer's bug must not starve the others; the batch is retried
                logger.exception("event consumer failed consumer=%s batch=%s", consumer.name, batch_id)
                failed.append(f"{consumer.name}: {traceback.format_exc(limit=3)}")
        if failed:
            backoff = min(MAX_BACKOFF, timedelta(seconds=10 * 2 ** min(batch.attempts, 10)))
            DispatchBatch.objects.filter(pk=batch_id).update(
                status=DispatchBatch.Status.PENDING,
                lease_until=None,
                next_attempt_at=timezone.now() + backoff,
                last_error="\n".join(failed)[:10000],
            )
            return True
        DispatchBatch.objects.filter(pk=batch_id).update(
            status=DispatchBatch.Status.DONE, done_at=timezone.now(), lease_until=None, last_error=""
        )
    return True


def _contacts_lock(contact_ids: list[int]) -> None:
    """Locks the batch's contacts in id order before any consumer runs (PostgreSQL). Consumers
    then update them (last activity, the score mirror) in whatever order their statements take,
    and two batches that share contacts wait for each other instead of deadlocking: every batch
    takes its contacts' locks in the same order, first. (``FOR NO KEY UPDATE`` is the lock an
    ``UPDATE`` of non-key columns takes itself; it leaves foreign-key checks free.)"""
    if not contact_ids or connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM marketing_contact WHERE id = ANY(%s::bigint[]) ORDER BY id FOR NO KEY UPDATE",
            [array_literal(contact_ids)],
        )


def dispatch_batches_due(*, now=None, limit: int = 500) -> list[int]:
    """Batches to send again: pending past their backoff (a lost task) or running past their lease."""
    now = now or timezone.now()
    batches = DispatchBatch.objects.with_scopes_disabled().using(system_alias())  # every org's
    expired = batches.filter(status=DispatchBatch.Status.RUNNING, lease_until__lt=now)
    expired.update(status=DispatchBatch.Status.PENDING, lease_until=None)
    due = batches.filter(status=DispatchBatch.Status.PENDING, next_attempt_at__lte=now - STALE_PENDING)
    return list(due.order_by("next_attempt_at").values_list("pk", flat=True)[:limit])


@event_consumer
class LastActivity(EventConsumer):
    """Keeps ``Contact.last_activity_at`` at the newest event's time: one UPDATE per batch."""

    name = "last_activity"

    def consume(self, events: list[Event]) -> None:
        newest: dict[int, datetime] = {}
        for event in events:
            if event.contact_id not in newest or event.occurred_at > newest[event.contact_id]:
                newest[event.contact_id] = event.occurred_at
        if not newest:
            return
        org_id = events[0].org_id
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # Two array parameters, not two per contact: a 500-event batch's statement stays small
                # (each in PostgreSQL's text form, which psycopg sends as one string).
                cursor.execute(
                    "UPDATE marketing_contact SET last_activity_at = v.at "
                    "FROM unnest(%s::bigint[], %s::timestamptz[]) AS v(id, at) "
                    "WHERE marketing_contact.id = v.id AND marketing_contact.org_id = %s AND "
                    "(marketing_contact.last_activity_at IS NULL OR marketing_contact.last_activity_at < v.at)",
                    [array_literal(newest), array_literal(newest.values()), org_id],
                )
                return
            adapt = connection.ops.adapt_datetimefield_value
            rows = ", ".join(["(%s, %s)"] * len(newest))
            params = [value for contact_id, at in newest.items() for value in (contact_id, adapt(at))]
            cursor.execute(
                f"WITH v(id, at) AS (VALUES {rows}) "  # noqa: S608  placeholders only; values are parameters
                f"UPDATE marketing_contact SET last_activity_at = v.at FROM v "
                f"WHERE marketing_contact.id = v.id AND marketing_contact.org_id = %s AND "
                f"(marketing_contact.last_activity_at IS NULL OR marketing_contact.last_activity_at < v.at)",
                [*params, org_id],
            )
