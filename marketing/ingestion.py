"""Events in: validate a batch, resolve its contacts, store it once, hand it to dispatch.

Every source (the events API, the Segment-compatible API, forms, the pixel, imports) ends in
``events_ingest``. A bad item is reported with its field and reason while the rest of the batch
is stored; a retried item (same ``message_id``) is reported as a duplicate and stored nothing.
The batch is written with one ``INSERT … ON CONFLICT DO NOTHING RETURNING``, so stored and
duplicate items are told apart without a query per event.
"""

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import OperationalError, transaction
from django.utils import timezone
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from marketing.bulk_sql import insert_returning
from marketing.dispatch import dispatch_enqueue
from marketing.identity import ContactRef, Trust, contacts_resolve, ref_from
from marketing.json_input import json_problem
from marketing.metrics import EVENTS_INGESTED, counter_incr
from marketing.models import Contact, Event, Organization, PropertyDefinition
from marketing.properties import properties_check

logger = logging.getLogger(__name__)

MAX_BATCH = 1000
DEADLOCK_RETRIES = 3
MAX_FUTURE = timedelta(days=1)
# Earlier times are a client's bug (a zero or garbage clock), and before year 1 in UTC PostgreSQL
# stores dates that Python cannot read back.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
MAX_BIGINT = 2**63 - 1
MAX_PATH = 100  # characters of a field's name quoted back in an error


class EventIn(BaseModel):
    """One event as the API takes it. Exactly one way to name the contact is required."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    type: str = Field(min_length=1, max_length=100)
    contact_id: StrictInt | None = Field(default=None, ge=1, le=MAX_BIGINT)
    email: str | None = Field(default=None, max_length=254)
    external_id: str | None = Field(default=None, max_length=200)
    anonymous_id: str | None = Field(default=None, max_length=200)
    properties: dict[str, Any] = Field(default_factory=dict)
    occurred_at: AwareDatetime | None = None
    message_id: str | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("occurred_at")
    @classmethod
    def in_utc(cls, value: datetime | None) -> datetime | None:
        """Stored in UTC: PostgreSQL refuses offsets of 16 hours or more, which ISO-8601 allows."""
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValueError("is out of range") from None

    @model_validator(mode="after")
    def names_a_contact(self):
        if not (self.contact_id or self.email or self.external_id or self.anonymous_id):
            raise ValueError("name the contact by contact_id, email, external_id or anonymous_id")
        return self


@dataclass
class ItemResult:
    """What happened to one item of a batch."""

    index: int
    status: str  # "stored" | "duplicate" | "error"
    event_id: int | None = None
    contact_id: int | None = None
    message_id: str | None = None
    errors: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        result = {"index": self.index, "status": self.status}
        if self.status == "error":
            result["errors"] = self.errors
        else:
            result.update(event_id=self.event_id, contact_id=self.contact_id, message_id=self.message_id)
        return result


def pydantic_errors(exc: PydanticValidationError) -> dict[str, str]:
    """Pydantic's errors as {"field.path": "reason"}."""
    errors = {}
    for error in exc.errors():
        path = ".".join(str(part)[:MAX_PATH] for part in error["loc"]) or "event"
        errors[path] = error["msg"].removeprefix("Value error, ")
    return errors


def events_validate(
    raw_items: list[Any], *, checked: bool = False
) -> tuple[list[EventIn | None], dict[int, dict[str, str]]]:
    """Parses raw items; returns the parsed ones (None where invalid) and errors by index.

    Values PostgreSQL cannot store (NUL characters, lone surrogates), non-finite numbers and
    deep nesting are that item's error, named by its path (``properties.plan``), so a batch
    parsed without those checks (``json_parse(check=False)``) loses only its bad items.
    ``checked``: the items passed ``json_problem`` already (a body ``json_parse`` accepted whole).
    """
    parsed: list[EventIn | None] = []
    errors: dict[int, dict[str, str]] = {}
    now = timezone.now()
    for index, raw in enumerate(raw_items):
        if not isinstance(raw, dict):
            parsed.append(None)
            errors[index] = {"event": "must be a JSON object"}
            continue
        problem = None if checked else json_problem(raw)
        if problem:
            parsed.append(None)
            where = problem.path if problem.path not in ("", "body") else "event"  # "body": a top-level key
            errors[index] = {where[:MAX_PATH]: problem.reason}
            continue
        try:
            item = EventIn.model_validate(raw)
        except PydanticValidationError as exc:
            parsed.append(None)
            errors[index] = pydantic_errors(exc)
            continue
        if item.occurred_at and item.occurred_at > now + MAX_FUTURE:
            parsed.append(None)
            errors[index] = {"occurred_at": "is more than a day in the future"}
            continue
        if item.occurred_at and item.occurred_at < EARLIEST:
            parsed.append(None)
            errors[index] = {"occurred_at": "is before 1970"}
            continue
        parsed.append(item)
    return parsed, errors


def events_ingest(
    *,
    org: Organization,
    items: list[EventIn | None],
    source: str,
    errors: dict[int, dict[str, str]] | None = None,
    dispatch: bool = True,
    trust: Trust = Trust.PUBLIC,
) -> list[ItemResult]:
    """Stores a validated batch; ``items[i] is None`` where ``errors[i]`` says why.

    One transaction: contacts are resolved (and created) in bulk, properties are type-checked,
    new events are inserted once each, and a dispatch batch is queued to run after commit.
    ``trust`` is the sender's (``marketing.identity.Trust``): a public one (a write key) never merges
    two known contacts; server keys and imports pass ``Trust.SERVER``.
    """
    errors = dict(errors or {})
    now = timezone.now()
    refs: dict[int, ContactRef] = {}
    stored_emails = _stored_emails(org, items)
    for index, item in enumerate(items):
        if item is None:
            continue
        # An address already stored was validated when it was: skip email-validator (~0.1 ms).
        known = bool(item.email) and item.email.lower() in stored_emails
        try:
            refs[index] = ref_from(
                contact_id=item.contact_id,
                external_id=item.external_id,
                email=item.email.lower() if known else item.email,
                anonymous_id=item.anonymous_id,
                email_is_normal=known,
            )
        except ValidationError as exc:
            errors[index] = {k: "; ".join(v) for k, v in exc.message_dict.items()}
    good = [i for i in refs if i not in errors]
    property_errors = properties_check(
        org=org, subject=PropertyDefinition.Subject.EVENT, items=[items[i].properties for i in good]
    )
    for index, problems in zip(good, property_errors, strict=True):
        if problems:
            errors[index] = problems
    good = [i for i in good if i not in errors]

    for attempt in range(DEADLOCK_RETRIES):
        try:
            return _store(org, items, refs, good, errors, source=source, dispatch=dispatch, now=now, trust=trust)
        except OperationalError as exc:
            # Batches take their locks in a fixed order; a merge can still meet a deadlock. The
            # batch rolled back whole and is idempotent by message_id, so running it again is safe.
            if not _is_deadlock(exc) or attempt == DEADLOCK_RETRIES - 1:
                raise
            logger.warning("ingest deadlock, retrying org=%s attempt=%d", org.slug, attempt + 1)
    raise AssertionError("unreachable")


@dataclass(slots=True)
class SystemEvent:
    """An event the platform itself records about a contact it holds (a score crossing a
    threshold): valid by construction, so it skips the checks an outside item goes through."""

    contact_id: int
    type: str
    properties: dict[str, Any]
    occurred_at: datetime
    message_id: str


def events_record(*, org: Organization, events: list[SystemEvent], source: str) -> int:
    """Stores system events in the caller's transaction (a message id stored before is skipped)
    and queues their dispatch, ``MAX_BATCH`` events a dispatch batch; returns how many were new.

    Unlike ``events_ingest`` it neither validates, resolves nor type-checks: the contacts exist
    (the caller just wrote about them) and the org's property definitions, which guard what
    outside sources send, must not refuse the platform's own record of what happened.
    """
    rows = sorted(
        ((i, e.contact_id, e.type, e.properties, e.occurred_at, e.message_id) for i, e in enumerate(events)),
        key=lambda row: row[5],  # message_id order: concurrent retries lock alike
    )
    inserted = _insert_events(org, rows, source=source, received_at=timezone.now())
    stored = sorted({event_id for event_id, _ in inserted.values()})  # an id twice in the list is one event
    for start in range(0, len(stored), MAX_BATCH):
        dispatch_enqueue(org=org, event_ids=stored[start : start + MAX_BATCH])
    return len(stored)


def _stored_emails(org: Organization, items: list[EventIn | None]) -> set[str]:
    """The batch's addresses (as written, lower-cased) that are already stored for the org."""
    candidates = {item.email.lower() for item in items if item is not None and item.email}
    if not candidates:
        return set()
    return set(Contact.objects.filter(org=org, email__any_of=list(candidates)).values_list("email", flat=True))


def _is_deadlock(exc: OperationalError) -> bool:
    return getattr(exc.__cause__, "sqlstate", None) == "40P01"


def _store(org, items, refs, good, errors, *, source, dispatch, now, trust) -> list[ItemResult]:
    errors = dict(errors)
    with transaction.atomic():
        resolution = contacts_resolve(
            org=org, refs=[refs[i] for i in good], trust=trust, summary={"call": "event", "source": source}
        )
        rows = []
        seen_message_ids = set()
        duplicates_in_batch = {}
        contact_of: dict[int, int] = {}
        for position, (index, contact_id) in enumerate(zip(good, resolution.contact_ids, strict=True)):
            if position in resolution.errors:
                errors[index] = resolution.errors[position]
                continue
            item = items[index]
            message_id = item.message_id or str(uuid.uuid4())
            contact_of[index] = contact_id
            if message_id in seen_message_ids:
                duplicates_in_batch[index] = message_id
                continue
            seen_message_ids.add(message_id)
            rows.append((index, contact_id, item.type, item.properties, item.occurred_at or now, message_id))
        rows.sort(key=lambda row: row[5])  # message_id order: concurrent retries lock alike
        stored = _insert_events(org, rows, source=source, received_at=now)
        stored_ids = [event_id for event_id, _ in stored.values()]
        if dispatch and stored_ids:
            dispatch_enqueue(org=org, event_ids=stored_ids)

    results = []
    for index in range(len(items)):
        if index in errors:
            results.append(ItemResult(index=index, status="error", errors=errors[index]))
        elif index in stored:
            event_id, message_id = stored[index]
            results.append(
                ItemResult(
                    index=index, status="stored", event_id=event_id, contact_id=contact_of[index], message_id=message_id
                )
            )
        else:
            message_id = duplicates_in_batch.get(index) or items[index].message_id
            results.append(
                ItemResult(index=index, status="duplicate", contact_id=contact_of.get(index), message_id=message_id)
            )
    return results


def _insert_events(
    org: Organization, rows: list[tuple], *, source: str, received_at: datetime
) -> dict[int, tuple[int, str]]:
    """INSERT … ON CONFLICT DO NOTHING RETURNING; returns index → (event id, message_id) of the rows stored
    (a row whose (org, message_id) exists already is skipped)."""
    if not rows:
        return {}
    stored = insert_returning(
        Event,
        columns={
            "contact": [r[1] for r in rows],
            "type": [r[2] for r in rows],
            "properties": [r[3] for r in rows],
            "occurred_at": [r[4] for r in rows],
            "message_id": [r[5] for r in rows],
        },
        fixed={"org": org.pk, "received_at": received_at, "source": source},
        returning=["id", "message_id"],
    )
    returned = {message_id: event_id for event_id, message_id in stored}
    counter_incr(EVENTS_INGESTED, len(returned), source=source)  # after commit: what a rollback undoes is not counted
    return {r[0]: (returned[r[5]], r[5]) for r in rows if r[5] in returned}
