"""Identity resolution: which contact an email, a user id or an anonymous id belongs to.

A batch of events resolves its contacts set-based (a few queries per batch, contacts created in
bulk). When one call ties identifiers that belong to two different contacts (an ``identify``
after anonymous browsing, a form filled in by a known visitor), ``contact_identify`` merges
them: the anonymous one folds into the known one, events, tags, lists and anonymous ids move,
and a ``ContactMerge`` row records both sides and every conflicting field.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from marketing.bulk_sql import insert_returning
from marketing.email_addresses import normalise_email
from marketing.models import (
    AnonymousId,
    Contact,
    ContactMerge,
    Event,
    LifecycleStage,
    ListMembership,
    Organization,
)

logger = logging.getLogger(__name__)

# Fields a merge reconciles; for each conflict the more recently updated contact's value wins.
MERGE_FIELDS = (
    "first_name",
    "last_name",
    "phone",
    "job_title",
    "country",
    "time_zone",
    "locale",
    "company_id",
    "lead_status",
    "owner_id",
)
STAGE_ORDER = {stage: i for i, stage in enumerate(LifecycleStage.values)}


@dataclass(frozen=True)
class ContactRef:
    """The identifiers one call names its contact by (already normalised)."""

    contact_id: int | None = None
    external_id: str | None = None
    email: str | None = None
    anonymous_id: str | None = None

    def key(self) -> tuple:
        return (self.contact_id, self.external_id, self.email, self.anonymous_id)


@dataclass
class Resolution:
    contact_ids: list[int | None]
    errors: dict[int, dict[str, str]] = field(default_factory=dict)


# --- merge handlers: apps above marketing move their own rows when two contacts merge ---------

_merge_handlers: list[Callable] = []


def merge_handler(func: Callable) -> Callable:
    """Registers ``func(org, kept, gone) -> int`` (rows moved) to run inside every merge."""
    _merge_handlers.append(func)
    return func


def contact_merge(*, org: Organization, kept: Contact, gone: Contact, reason: str) -> ContactMerge:
    """Folds ``gone`` into ``kept``: moves its rows, reconciles fields, records both sides.

    For each field both have with different values, the contact updated more recently wins;
    the lifecycle stage keeps the furthest one; both values go into ``ContactMerge.conflicts``.
    """
    if kept.pk == gone.pk:
        raise ValueError("A contact cannot be merged into itself.")
    with transaction.atomic():
        locked = {
            c.pk: c
            for c in Contact.objects.select_for_update().filter(org=org, pk__in=[kept.pk, gone.pk]).order_by("pk")
        }
        kept, gone = locked[kept.pk], locked[gone.pk]
        snapshot = _snapshot(gone)
        newer, older = (gone, kept) if gone.updated_at > kept.updated_at else (kept, gone)
        conflicts = {}
        for name in MERGE_FIELDS:
            mine, theirs = getattr(kept, name), getattr(gone, name)
            if theirs in (None, "") or mine == theirs:
                continue
            if mine in (None, ""):
                setattr(kept, name, theirs)
                continue
            chosen = getattr(newer, name)
            conflicts[name] = {"kept": mine, "merged": theirs, "chosen": chosen}
            setattr(kept, name, chosen)
        for name in ("email", "external_id"):  # identifiers: move when missing, else record
            mine, theirs = getattr(kept, name), getattr(gone, name)
            if theirs and not mine:
                setattr(kept, name, theirs)
            elif theirs and mine != theirs:
                conflicts[name] = {"kept": mine, "merged": theirs, "chosen": mine}
        properties = dict(older.properties)
        for key, value in newer.properties.items():
            if key in properties and properties[key] != value:
                conflicts[f"properties.{key}"] = {
                    "kept": kept.properties.get(key),
                    "merged": gone.properties.get(key),
                    "chosen": value,
                }
            properties[key] = value
        for key, value in older.properties.items():
            properties.setdefault(key, value)
        kept.properties = properties
        if STAGE_ORDER.get(gone.lifecycle_stage, 0) > STAGE_ORDER.get(kept.lifecycle_stage, 0):
            conflicts["lifecycle_stage"] = {
                "kept": kept.lifecycle_stage,
                "merged": gone.lifecycle_stage,
                "chosen": gone.lifecycle_stage,
            }
            kept.lifecycle_stage = gone.lifecycle_stage
        kept.created_at = min(kept.created_at, gone.created_at)
        activity = [t for t in (kept.last_activity_at, gone.last_activity_at) if t]
        kept.last_activity_at = max(activity) if activity else None

        moved = _move_rows(org, kept, gone)
        gone_pk = gone.pk
        gone.delete()  # frees its email/external_id for kept, and drops what did not move
        kept.save()
        merge = ContactMerge.objects.create(
            org=org,
            kept=kept,
            merged_contact_id=gone_pk,
            merged_snapshot=snapshot,
            conflicts=conflicts,
            moved=moved,
            reason=reason,
        )
    logger.info(
        "contact merged org=%s kept=%s merged=%s reason=%s conflicts=%d",
        org.slug,
        kept.pk,
        gone_pk,
        reason,
        len(conflicts),
    )
    return merge


def _snapshot(contact: Contact) -> dict[str, Any]:
    values = {f.attname: getattr(contact, f.attname) for f in Contact._meta.concrete_fields}
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in values.items()}


def _move_rows(org: Organization, kept: Contact, gone: Contact) -> dict[str, int]:
    moved = {
        "events": Event.objects.filter(org=org, contact=gone).update(contact=kept),
        "anonymous_ids": AnonymousId.objects.filter(org=org, contact=gone).update(contact=kept),
    }
    through = Contact.tags.through
    tag_ids = list(through.objects.filter(contact=gone).values_list("tag_id", flat=True))
    through.objects.bulk_create([through(contact=kept, tag_id=t) for t in tag_ids], ignore_conflicts=True)
    moved["tags"] = len(tag_ids)
    lists = list(ListMembership.objects.filter(contact=gone))
    ListMembership.objects.bulk_create(
        [ListMembership(contact=kept, contact_list_id=m.contact_list_id, added_at=m.added_at) for m in lists],
        ignore_conflicts=True,
    )
    moved["lists"] = len(lists)
    for handler in _merge_handlers:
        moved[handler.__module__ + "." + handler.__name__] = handler(org, kept, gone)
    return moved


# --- one call: identify / form / alias ----------------------------------------------------------


def contact_identify(*, org: Organization, ref: ContactRef, reason: str = "identify") -> Contact:
    """The contact these identifiers name, created if none does, merged if several do.

    Contacts found by the identifiers are folded into one: a known contact (with an email or a
    user id) is kept over an anonymous one; between known ones, the older is kept. Identifiers
    the kept contact lacks are attached to it.
    """
    with transaction.atomic():
        found = _contacts_named_by(org, ref)
        if not found:
            return _create_for(org, ref)
        found.sort(key=lambda c: (not (c.email or c.external_id), c.created_at, c.pk))
        kept = found[0]
        for other in found[1:]:
            contact_merge(org=org, kept=kept, gone=other, reason=reason)
            kept.refresh_from_db()
        changed = []
        if ref.email and not kept.email:
            kept.email = ref.email
            changed.append("email")
        if ref.external_id and not kept.external_id:
            kept.external_id = ref.external_id
            changed.append("external_id")
        if changed:
            kept.save(update_fields=[*changed, "updated_at"])
        if ref.anonymous_id:
            AnonymousId.objects.get_or_create(org=org, value=ref.anonymous_id, defaults={"contact": kept})
    return kept


def _contacts_named_by(org: Organization, ref: ContactRef) -> list[Contact]:
    ids = set()
    if ref.contact_id:
        ids.update(Contact.objects.filter(org=org, pk=ref.contact_id).values_list("pk", flat=True))
    if ref.external_id:
        ids.update(Contact.objects.filter(org=org, external_id=ref.external_id).values_list("pk", flat=True))
    if ref.email:
        ids.update(Contact.objects.filter(org=org, email=ref.email).values_list("pk", flat=True))
    if ref.anonymous_id:
        ids.update(AnonymousId.objects.filter(org=org, value=ref.anonymous_id).values_list("contact_id", flat=True))
    return list(Contact.objects.filter(org=org, pk__in=ids))


def _create_for(org: Organization, ref: ContactRef) -> Contact:
    try:
        with transaction.atomic():
            contact = Contact.objects.create(org=org, email=ref.email, external_id=ref.external_id)
            if ref.anonymous_id:
                AnonymousId.objects.create(org=org, contact=contact, value=ref.anonymous_id)
            return contact
    except IntegrityError:
        # A concurrent call created it first: use theirs.
        found = _contacts_named_by(org, ref)
        if not found:
            raise
        return found[0]


# --- a batch: set-based lookups and creation ----------------------------------------------------


def contacts_resolve(*, org: Organization, refs: list[ContactRef]) -> Resolution:
    """The contact id of each ref, creating contacts in bulk for identifiers never seen.

    Refs whose identifiers belong to different contacts go through ``contact_identify`` (and
    are merged) one by one; everything else takes a few queries for the whole batch.
    """
    unique = list({ref.key(): ref for ref in refs}.values())
    by_id = set(
        Contact.objects.filter(org=org, pk__any_of=[r.contact_id for r in unique if r.contact_id]).values_list(
            "pk", flat=True
        )
    )
    by_external = _lookup(org, "external_id", {r.external_id for r in unique if r.external_id})
    by_email = _lookup(org, "email", {r.email for r in unique if r.email})
    by_anonymous = dict(
        AnonymousId.objects.filter(
            org=org, value__any_of=[r.anonymous_id for r in unique if r.anonymous_id]
        ).values_list("value", "contact_id")
    )
    resolved: dict[tuple, int] = {}
    errors: dict[tuple, dict[str, str]] = {}
    to_create: list[ContactRef] = []
    to_link: dict[str, int] = {}
    slow: list[ContactRef] = []
    for ref in unique:
        if ref.contact_id and ref.contact_id not in by_id:
            errors[ref.key()] = {"contact_id": f"No contact with id {ref.contact_id}."}
            continue
        known = {ref.contact_id} if ref.contact_id else set()
        for value, table in ((ref.external_id, by_external), (ref.email, by_email), (ref.anonymous_id, by_anonymous)):
            if value and value in table:
                known.add(table[value])
        missing_strong = (ref.external_id and ref.external_id not in by_external) or (
            ref.email and ref.email not in by_email
        )
        if len(known) > 1 or (known and missing_strong):
            slow.append(ref)
        elif known:
            contact_id = known.pop()
            resolved[ref.key()] = contact_id
            if ref.anonymous_id and ref.anonymous_id not in by_anonymous:
                to_link[ref.anonymous_id] = contact_id
        else:
            to_create.append(ref)
    resolved.update(_create_many(org, to_create, to_link))
    if to_link:
        AnonymousId.objects.bulk_create(
            [AnonymousId(org=org, value=v, contact_id=c) for v, c in sorted(to_link.items())], ignore_conflicts=True
        )
    for ref in slow:
        resolved[ref.key()] = contact_identify(org=org, ref=ref, reason="event").pk
    contact_ids = [resolved.get(ref.key()) for ref in refs]
    return Resolution(
        contact_ids=contact_ids, errors={i: errors[ref.key()] for i, ref in enumerate(refs) if ref.key() in errors}
    )


def _lookup(org: Organization, column: str, values: set[str]) -> dict[str, int]:
    if not values:
        return {}
    return dict(Contact.objects.filter(org=org, **{f"{column}__any_of": list(values)}).values_list(column, "pk"))


def _create_many(org: Organization, refs: list[ContactRef], to_link: dict[str, int]) -> dict[tuple, int]:
    """Creates one contact per distinct new identity; returns ref key → contact id."""
    if not refs:
        return {}
    now = timezone.now()
    # Sorted, so that concurrent batches take the unique-index locks in the same order and
    # wait for each other instead of deadlocking.
    known = sorted((r for r in refs if r.external_id or r.email), key=lambda r: (r.email or "", r.external_id or ""))
    anonymous = [r for r in refs if not (r.external_id or r.email)]
    result: dict[tuple, int] = {}
    if known:
        stored = insert_returning(
            Contact,
            columns={"email": [r.email for r in known], "external_id": [r.external_id for r in known]},
            fixed={"org": org.pk, "created_at": now},
            returning=["id", "email", "external_id"],
        )
        by_email = {email: pk for pk, email, _ in stored if email}
        by_external = {external_id: pk for pk, _, external_id in stored if external_id}
        # Skipped rows: a concurrent batch created the same person first; use its row.
        by_email |= _lookup(org, "email", {r.email for r in known if r.email and r.email not in by_email})
        by_external |= _lookup(
            org, "external_id", {r.external_id for r in known if r.external_id and r.external_id not in by_external}
        )
        for ref in known:
            contact_id = by_external.get(ref.external_id) if ref.external_id else by_email.get(ref.email)
            if contact_id is None:  # two refs of this batch named the same person differently
                contact_id = contact_identify(org=org, ref=ref, reason="event").pk
            result[ref.key()] = contact_id
            if ref.anonymous_id:
                to_link[ref.anonymous_id] = contact_id
    if anonymous:
        values = sorted({r.anonymous_id for r in anonymous})
        # Blank contacts are interchangeable: pair the new ids with the values in any order.
        created = [
            pk
            for (pk,) in insert_returning(
                Contact, columns={"created_at": [now] * len(values)}, fixed={"org": org.pk}, returning=["id"]
            )
        ]
        linked = dict(
            insert_returning(
                AnonymousId,
                columns={"value": values, "contact": created},
                fixed={"org": org.pk, "created_at": now},
                returning=["value", "contact_id"],
            )
        )
        taken = [v for v in values if v not in linked]
        if taken:  # another batch linked some of these anonymous ids first: use its contacts
            linked |= dict(AnonymousId.objects.filter(org=org, value__any_of=taken).values_list("value", "contact_id"))
            Contact.objects.filter(org=org, pk__any_of=sorted(set(created) - set(linked.values()))).delete()
        for ref in anonymous:
            result[ref.key()] = linked[ref.anonymous_id]
    return result


def ref_from(
    *, contact_id=None, external_id=None, email=None, anonymous_id=None, email_is_normal: bool = False
) -> ContactRef:
    """A ContactRef from raw values; raises ValidationError (per field) for a bad email.

    ``email_is_normal``: the caller found the address stored already, so it is valid as given.
    """
    clean_email = None
    if email and email_is_normal:
        clean_email = email
    elif email:
        try:
            clean_email = normalise_email(email)
        except ValidationError as exc:
            raise ValidationError({"email": exc.messages}) from exc
    return ContactRef(
        contact_id=contact_id,
        external_id=str(external_id).strip() or None if external_id is not None else None,
        email=clean_email,
        anonymous_id=str(anonymous_id).strip() or None if anonymous_id is not None else None,
    )
