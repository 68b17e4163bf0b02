"""Data retention: each organisation's policies per data kind, the dry-run count, and the purge.

The purge works in batches, each its own short transaction: it selects up to ``batch_size`` ids
of expired rows (``FOR UPDATE SKIP LOCKED``: a row a worker holds now waits for the next night),
in id order after the previous batch's last id, and deletes them with what depends on them
(``marketing.retention.rows_delete``). What counts as expired, and what is still needed and
kept, each table's ``RetentionTarget`` says (docs/retention.md).
"""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from compliance.models import RetentionPolicy
from marketing.audit import audit_record
from marketing.models import Organization
from marketing.retention import DATA_KINDS, retention_targets
from marketing.tenancy import org_context

logger = logging.getLogger(__name__)

BATCH_SIZE = 5000
MAX_DAYS = 36500  # a hundred years: more is "forever", said differently
SAVED = object()  # retention_count's default: the org's saved policy


def _kind(kind: str):
    if kind not in DATA_KINDS:
        raise ValidationError({"kind": f"Unknown data kind “{kind}”: one of {', '.join(DATA_KINDS)}."})
    return DATA_KINDS[kind]


def retention_policies(*, org: Organization) -> dict[str, RetentionPolicy | None]:
    """The org's policy of every data kind, in the kinds' order (None: never set, kept forever)."""
    with org_context(org):
        saved = {policy.kind: policy for policy in RetentionPolicy.objects.filter(org=org)}
    return {kind: saved.get(kind) for kind in DATA_KINDS}


def retention_days(*, org: Organization, kind: str) -> int | None:
    """How many days the org keeps ``kind`` (None: forever)."""
    _kind(kind)
    policy = retention_policies(org=org)[kind]
    return policy.days if policy else None


def retention_days_check(*, kind: str, days: int | None) -> None:
    """Refuses a period out of range, naming the kind's field: ``days_<kind>``."""
    data_kind = _kind(kind)
    if days is None:
        return
    if days < data_kind.min_days:
        raise ValidationError(
            {f"days_{kind}": f"{data_kind.label}: at least {data_kind.min_days} day(s), or empty for forever."}
        )
    if days > MAX_DAYS:
        raise ValidationError({f"days_{kind}": f"{data_kind.label}: at most {MAX_DAYS} days, or empty for forever."})


def retention_policies_save(*, org: Organization, days: dict[str, int | None], by=None) -> list[RetentionPolicy]:
    """Sets the days of the kinds in ``days`` (None: forever) in one transaction; every bad value
    is refused at once, each under its field ``days_<kind>``."""
    errors = {}
    for kind, value in days.items():
        try:
            retention_days_check(kind=kind, days=value)
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    saved = []
    with org_context(org), transaction.atomic():
        before = {p.kind: p.days for p in RetentionPolicy.objects.filter(org=org, kind__in=list(days))}
        for kind, value in days.items():
            policy, created = RetentionPolicy.objects.update_or_create(
                org=org, kind=kind, defaults={"days": value, "updated_by": by}
            )
            saved.append(policy)
            if before.get(kind) != value:
                audit_record(org=org, verb="created" if created else "changed", target=policy, fields=["days"])
    logger.info("retention_saved org=%s kinds=%s", org.slug, ",".join(days))
    return saved


def _cutoff(now: datetime, days: int | None) -> datetime | None:
    return None if days is None else now - timedelta(days=days)


def retention_count(*, org: Organization, kind: str, now: datetime, days=SAVED) -> int:
    """The dry run: how many rows of ``kind`` the purge would remove now (for message bodies,
    how many messages it would blank). ``days`` counts for a period not saved yet (None: forever)."""
    _kind(kind)
    if days is SAVED:
        days = retention_days(org=org, kind=kind)
    before = _cutoff(now, days)
    if before is None:
        return 0
    with org_context(org):
        return sum(target.expired(org=org, before=before).count() for target in retention_targets(kind))


def retention_purge(
    *,
    org: Organization,
    kind: str,
    now: datetime,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Removes the org's rows of ``kind`` older than its policy says (blanks them, for message
    bodies), ``batch_size`` at a time, each batch its own transaction; returns how many.
    ``progress(done)`` hears after each batch. Nothing happens for a kind kept forever."""
    _kind(kind)
    if batch_size < 1:
        raise ValidationError({"batch_size": "At least 1 row per batch."})
    before = _cutoff(now, retention_days(org=org, kind=kind))
    if before is None:
        return 0
    done = 0
    with org_context(org):
        for target in retention_targets(kind):
            purged = [0]  # the batches committed so far, audited even if a later one fails
            try:
                _purge_target(
                    target, org=org, before=before, batch_size=batch_size, purged=purged, done=done, progress=progress
                )
            finally:
                if purged[0]:
                    # One entry per table and purge: what went and how many, never which rows.
                    audit_record(
                        org=org,
                        verb="purged",
                        target_type=target.model._meta.label_lower,
                        fields=[kind],
                        count=purged[0],
                    )
            done += purged[0]
        RetentionPolicy.objects.filter(org=org, kind=kind).update(last_purged_at=now, last_purged_rows=done)
    logger.info("retention_purged org=%s kind=%s rows=%s", org.slug, kind, done)
    return done


def _purge_target(target, *, org, before, batch_size: int, purged: list[int], done: int, progress) -> None:
    """One table's expired rows, batch by batch, counted in ``purged[0]`` as each commits;
    ``done`` (rows of the kind's earlier tables) keeps the progress figure running across tables."""
    after = 0
    while True:
        with transaction.atomic():
            ids = list(
                target.expired(org=org, before=before)
                .filter(pk__gt=after)
                .order_by("pk")
                .select_for_update(skip_locked=True, of=("self",))
                .values_list("pk", flat=True)[:batch_size]
            )
            if not ids:
                return
            removed = target.purge(ids=ids)
        purged[0] += removed
        after = ids[-1]
        if progress:
            progress(done + purged[0])
        if len(ids) < batch_size:
            return


def retention_purge_all(*, now: datetime | None = None, batch_size: int = BATCH_SIZE) -> int:
    """Purges every org's kinds that have a period (the nightly job); returns the rows removed.
    One org's failure is logged and does not stop the others."""
    now = now or timezone.now()
    total = 0
    # Org by org, inside its context: under row-level security no query sees every org's policies.
    for org in Organization.objects.order_by("pk"):
        for kind, policy in retention_policies(org=org).items():
            if policy is None or policy.days is None:
                continue
            try:
                total += retention_purge(org=org, kind=kind, now=now, batch_size=batch_size)
            except Exception:
                logger.exception("retention_purge_failed org=%s kind=%s", org.slug, kind)
    return total
