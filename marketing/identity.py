"""Identity resolution: which contact an email, a user id or an anonymous id belongs to.

A batch of events resolves its contacts set-based (a few queries per batch, contacts created in
bulk). When one call ties identifiers that belong to two different contacts (an ``identify``
after anonymous browsing, a form filled in by a known visitor), ``contact_identify`` merges
them: the anonymous one folds into the known one, events, tags, lists and anonymous ids move,
and a ``ContactMerge`` row records both sides and every conflicting field.

How far a call may go depends on who makes it (``Trust``): a server key, the console, an import
or a signed webhook may merge any contacts; a public caller (a write key embedded in a web page,
a public form) may only fold an anonymous visitor into a known contact. Anyone can type anyone's
email into a page, so when a public call names two *known* contacts nothing is merged: the call
goes to the contact it names by user id or email, and an ``IdentityConflict`` waits for an
operator to merge the two (``identity_conflict_resolve``) or dismiss it.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from marketing.bulk_sql import insert_returning
from marketing.email_addresses import normalise_email
from marketing.erased_identities import EMAIL, USER_ID, erased_emails, erased_values, is_erased, refusal
from marketing.models import (
    AnonymousId,
    ApiKey,
    Contact,
    ContactMerge,
    Event,
    IdentityConflict,
    LifecycleStage,
    ListMembership,
    Organization,
    User,
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


class Trust(StrEnum):
    """Who makes an identity call, which decides what it may merge.

    ``SERVER``: a server API key, the console, an import, a signed webhook: may merge any
    contacts. ``PUBLIC``: a write key (embedded in web pages) or a public form: may fold an
    anonymous contact into a known one, never two known contacts into one.
    """

    SERVER = "server"
    PUBLIC = "public"

    @classmethod
    def of_key(cls, key: ApiKey) -> "Trust":
        """A server-scope key's calls are ``SERVER``; a write key's (embeddable) ``PUBLIC``."""
        return cls.SERVER if key.scope == ApiKey.Scope.SERVER else cls.PUBLIC


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
        settled = _conflicts_follow(org, kept, gone)
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
        if settled:
            IdentityConflict.objects.filter(org=org, pk__in=settled).update(
                status=IdentityConflict.Status.MERGED, merge=merge, resolved_at=merge.merged_at
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


def _conflicts_follow(org: Organization, kept: Contact, gone: Contact) -> list[int]:
    """Open identity conflicts between the two are settled by this merge (their ids returned);
    the merged contact's conflicts with third contacts move to the kept one, as its events do."""
    pair = Q(contact=kept, other_contact=gone) | Q(contact=gone, other_contact=kept)
    settled = list(
        IdentityConflict.objects.filter(pair, org=org, status=IdentityConflict.Status.OPEN).values_list("pk", flat=True)
    )
    IdentityConflict.objects.filter(org=org, contact=gone).exclude(other_contact=kept).update(contact=kept)
    IdentityConflict.objects.filter(org=org, other_contact=gone).exclude(contact=kept).update(other_contact=kept)
    return settled


# --- one call: identify / form / alias ----------------------------------------------------------


def contact_identify(
    *,
    org: Organization,
    ref: ContactRef,
    reason: str = "identify",
    trust: Trust = Trust.PUBLIC,
    summary: dict[str, Any] | None = None,
) -> Contact:
    """The contact these identifiers name, created if none does, merged if several do.

    Contacts found by the identifiers are folded into one: a known contact (with an email or a
    user id) is kept over an anonymous one; between known ones, the older is kept. Identifiers
    the kept contact lacks are attached to it.

    With ``Trust.PUBLIC`` (the default, so that a caller who forgets cannot merge) two known
    contacts are never merged: the one the call names by contact id, user id or email (in that
    order) is returned, anonymous ones still fold into it, and an ``IdentityConflict`` (source
    ``reason``, with ``summary``: the call's shape, no personal values) records the others.
    """
    if ref.email and is_erased(org=org, kind=EMAIL, value=ref.email):
        # Callers check first and say so per item; this keeps any other caller from storing it.
        raise ValidationError({"email": refusal(public=trust is Trust.PUBLIC)})
    if ref.external_id and is_erased(org=org, kind=USER_ID, value=ref.external_id):
        raise ValidationError({"external_id": refusal(public=trust is Trust.PUBLIC)})
    with transaction.atomic():
        found = _contacts_named_by(org, ref)
        if not found:
            return _create_for(org, ref)
        found.sort(key=lambda c: (not _is_known(c), c.created_at, c.pk))
        kept, others, apart = found[0], found[1:], []
        known = [c for c in found if _is_known(c)]
        if trust is Trust.PUBLIC and len(known) > 1:
            kept = _named_first(ref, known)
            apart = [c for c in known if c.pk != kept.pk]
            others = [c for c in found if not _is_known(c)]
        for other in others:
            contact_merge(org=org, kept=kept, gone=other, reason=reason)
            kept.refresh_from_db()
        if apart:
            identifiers = _whose(org, ref, [kept, *apart])
        for other in apart:
            identity_conflict_record(
                org=org, contact=kept, other=other, identifiers=identifiers, source=reason, summary=summary
            )
        taken = {value for c in apart for value in (c.email, c.external_id) if value}
        changed = []
        if ref.email and not kept.email and ref.email not in taken:
            kept.email = ref.email
            changed.append("email")
        if ref.external_id and not kept.external_id and ref.external_id not in taken:
            kept.external_id = ref.external_id
            changed.append("external_id")
        if changed:
            kept.save(update_fields=[*changed, "updated_at"])
        if ref.anonymous_id:
            # An anonymous id of a contact kept apart stays that contact's (its history with it).
            AnonymousId.objects.get_or_create(org=org, value=ref.anonymous_id, defaults={"contact": kept})
    return kept


def _is_known(contact: Contact) -> bool:
    return bool(contact.email or contact.external_id)


def _named_first(ref: ContactRef, known: list[Contact]) -> Contact:
    """The known contact a call names most firmly: by contact id, then user id, then email."""
    for attribute, value in (("pk", ref.contact_id), ("external_id", ref.external_id), ("email", ref.email)):
        for contact in known:
            if value and getattr(contact, attribute) == value:
                return contact
    return known[0]


def _whose(org: Organization, ref: ContactRef, contacts: list[Contact]) -> dict[str, dict[str, Any]]:
    """Each identifier the call sent, with the contact it belongs to (None: nobody's yet)."""
    anonymous_owner = (
        AnonymousId.objects.filter(org=org, value=ref.anonymous_id).values_list("contact_id", flat=True).first()
        if ref.anonymous_id
        else None
    )
    owners = {
        "contact_id": lambda c: c.pk == ref.contact_id,
        "external_id": lambda c: c.external_id == ref.external_id,
        "email": lambda c: c.email == ref.email,
    }
    identifiers = {}
    for name, owns in owners.items():
        value = getattr(ref, name)
        if value:
            identifiers[name] = {"value": value, "contact": next((c.pk for c in contacts if owns(c)), None)}
    if ref.anonymous_id:
        identifiers["anonymous_id"] = {"value": ref.anonymous_id, "contact": anonymous_owner}
    return identifiers


# --- conflicts: two known contacts a public call named ------------------------------------------


def identity_conflict_record(
    *,
    org: Organization,
    contact: Contact,
    other: Contact,
    identifiers: dict[str, Any],
    source: str,
    summary: dict[str, Any] | None = None,
) -> IdentityConflict:
    """Records that a public call named ``contact`` and also ``other`` (both known), or counts
    the call on the pair's conflict recorded before (open or dismissed: a dismissed pair is not
    reopened by the same browser calling again)."""
    now = timezone.now()
    with transaction.atomic():
        # The pair's rows, locked in id order, serialise two calls recording the same pair. NO KEY
        # UPDATE does not wait for the batches that are inserting events of these contacts.
        pair_rows = Contact.objects.select_for_update(no_key=True).filter(org=org, pk__in=[contact.pk, other.pk])
        list(pair_rows.order_by("pk"))
        pair = Q(contact=contact, other_contact=other) | Q(contact=other, other_contact=contact)
        earlier = IdentityConflict.objects.filter(pair, org=org).exclude(status=IdentityConflict.Status.MERGED).first()
        if earlier is not None:
            IdentityConflict.objects.filter(pk=earlier.pk).update(occurrences=F("occurrences") + 1, last_seen_at=now)
            return earlier
        conflict = IdentityConflict.objects.create(
            org=org,
            contact=contact,
            other_contact=other,
            identifiers=identifiers,
            source=source,
            summary=summary or {},
            created_at=now,
            last_seen_at=now,
        )
    logger.warning(
        "identity conflict org=%s conflict=%s contact=%s other=%s source=%s",
        org.slug,
        conflict.pk,
        contact.pk,
        other.pk,
        source,
    )
    return conflict


def identity_conflict_resolve(*, conflict: IdentityConflict, action: str, by: User) -> IdentityConflict:
    """Resolves an open conflict: ``merge`` folds the two contacts into one through
    ``contact_merge`` (the older is kept, as a server call would; reason ``identity_conflict``),
    ``dismiss`` keeps them apart for good. Records who and when; one transaction."""
    if action not in ("merge", "dismiss"):
        raise ValidationError({"action": "Choose merge or dismiss."})
    with transaction.atomic():
        conflict = IdentityConflict.objects.select_for_update().select_related("org").get(pk=conflict.pk)
        if conflict.status != IdentityConflict.Status.OPEN:
            raise ValidationError({"status": f"This conflict is already {conflict.get_status_display().lower()}."})
        if action == "merge":
            contacts = [conflict.contact, conflict.other_contact]
            if None in contacts:
                raise ValidationError(
                    {"contact": "One of the two contacts no longer exists; dismiss this conflict instead."}
                )
            kept, gone = sorted(contacts, key=lambda c: (c.created_at, c.pk))
            conflict.merge = contact_merge(org=conflict.org, kept=kept, gone=gone, reason="identity_conflict")
            conflict.status = IdentityConflict.Status.MERGED
        else:
            conflict.status = IdentityConflict.Status.DISMISSED
        conflict.resolved_by, conflict.resolved_at = by, timezone.now()
        conflict.save(update_fields=["status", "merge", "resolved_by", "resolved_at"])
    logger.info(
        "identity conflict resolved org=%s conflict=%s action=%s by=%s", conflict.org.slug, conflict.pk, action, by.pk
    )
    conflict.refresh_from_db()
    return conflict


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


def contacts_resolve(
    *,
    org: Organization,
    refs: list[ContactRef],
    trust: Trust = Trust.PUBLIC,
    summary: dict[str, Any] | None = None,
) -> Resolution:
    """The contact id of each ref, creating contacts in bulk for identifiers never seen.

    Refs whose identifiers belong to different contacts go through ``contact_identify`` (and
    are merged as ``trust`` allows) one by one; everything else takes a few queries for the
    whole batch.
    """
    unique = list({ref.key(): ref for ref in refs}.values())
    erased = erased_emails(org=org, emails={r.email for r in unique if r.email})
    erased_user_ids = erased_values(org=org, kind=USER_ID, values={r.external_id for r in unique if r.external_id})
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
        if ref.email in erased:
            errors[ref.key()] = {"email": refusal(public=trust is Trust.PUBLIC)}
            continue
        if ref.external_id in erased_user_ids:
            errors[ref.key()] = {"external_id": refusal(public=trust is Trust.PUBLIC)}
            continue
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
    resolved.update(_create_many(org, to_create, to_link, trust=trust, summary=summary))
    if to_link:
        AnonymousId.objects.bulk_create(
            [AnonymousId(org=org, value=v, contact_id=c) for v, c in sorted(to_link.items())], ignore_conflicts=True
        )
    for ref in slow:
        resolved[ref.key()] = contact_identify(org=org, ref=ref, reason="event", trust=trust, summary=summary).pk
    contact_ids = [resolved.get(ref.key()) for ref in refs]
    return Resolution(
        contact_ids=contact_ids, errors={i: errors[ref.key()] for i, ref in enumerate(refs) if ref.key() in errors}
    )


def _lookup(org: Organization, column: str, values: set[str]) -> dict[str, int]:
    if not values:
        return {}
    return dict(Contact.objects.filter(org=org, **{f"{column}__any_of": list(values)}).values_list(column, "pk"))


def _create_many(
    org: Organization, refs: list[ContactRef], to_link: dict[str, int], *, trust: Trust, summary: dict[str, Any] | None
) -> dict[tuple, int]:
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
                contact_id = contact_identify(org=org, ref=ref, reason="event", trust=trust, summary=summary).pk
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
