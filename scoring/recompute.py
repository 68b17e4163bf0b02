"""Recomputation: after a rule changes, every contact's score in a model brought in step with it.

What a score *should* be, per contact (its target)::

    target = clamp(base + rule_part + fit_part + Σ manual + Σ decay + Σ cap, minimum, maximum)

- ``rule_part``: for each of the contact's ``rule`` ledger rows, the rule's *current* points if
  the rule still exists and is active, else 0 (a deleted rule's rows have lost their rule);
- ``fit_part``: the points of every active fit rule the contact matches *now* (one SQL query per
  fit rule, compiled with ``marketing.conditions.to_q``); the contact's past ``fit`` rows are
  replaced by this;
- manual adjustments, decay and the clamps the scoring path recorded stay as they were;
- earlier ``recompute`` rows are left out: they are corrections, and the target is computed
  afresh each time.

It works on the contacts scored in the model (those with a ``ContactScore`` row): a contact
never scored has no score to correct, and gets its fit points when it is first scored (as the
scoring path does). A contact whose target differs from its current score gets one
``recompute`` ledger row with ``delta = target − score`` (so ``score = base + Σ delta`` still
holds) and the new score. Running it twice writes nothing the second time, and with no rule changed
it changes nothing, because the target only reads rows it does not write. For the default model
``Contact.score`` is re-mirrored along the way (also repairing any drift). A change that crosses
a threshold records the crossing as the scoring path does (``rules.crossings_record``).

Past events are not re-read by the recomputation: a behaviour rule created after its events, or
whose filter or event type changed, earns nothing for them until they are replayed.
``scores_replay`` does that (``recompute_scores --replay-days N``): the org's events of the last
N days go through the model's behaviour rules again, and every (event, rule) pair without a
ledger row scores now, as it would have when the event arrived: a ``rule`` row dated at the event,
caps counted in the event's own period. Pairs scored before are left as they are (a row a
changed filter would no longer give is kept, at the rule's current points), so a replay only
ever adds. A clamp that the target itself needs is part of the ``recompute`` row, not a ``cap``
row.
"""

import itertools
import logging
from collections.abc import Callable
from datetime import datetime

from django.db import transaction
from django.db.models import Case, Exists, F, IntegerField, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce, Greatest, Least
from django.utils import timezone

from marketing.bulk_sql import update_rows
from marketing.conditions import NotCompilable, contact_facts, evaluate, to_q, truthy
from marketing.consent_providers import consent_allowed_q
from marketing.models import Contact, Event
from scoring.models import ContactScore, ScoreLedger, ScoringModel, ScoringRule
from scoring.rules import PROFILING, band_of, crossings_record, events_score

log = logging.getLogger(__name__)

CHUNK = 5000
REPLAY_CHUNK = 500  # events a transaction, as a dispatch batch
KEPT_AS_THEY_WERE = [ScoreLedger.Reason.MANUAL, ScoreLedger.Reason.DECAY, ScoreLedger.Reason.CAP]
NOTE = "Recomputed after a rule change"


def scores_recompute(
    *,
    model: ScoringModel,
    progress: Callable[[int, int], None] | None = None,
    now: datetime | None = None,
    chunk: int = CHUNK,
) -> dict:
    """Brings every scored contact's score in ``model`` in step with its current rules (see the
    module).

    Works through the model's scored contacts ``chunk`` at a time, each chunk in its own short
    transaction with its score rows locked, and calls ``progress(done, total)`` after each.
    Returns ``{"model": slug, "contacts": examined, "changed": contacts whose score changed}``.
    """
    now = now or timezone.now()
    org = model.org
    fit_rules = list(ScoringRule.objects.filter(model=model, kind=ScoringRule.Kind.FIT, active=True).order_by("pk"))
    compiled = {}
    for rule in fit_rules:
        if rule.condition in (None, {}, [], ""):
            compiled[rule.pk] = None  # always
            continue
        try:
            compiled[rule.pk] = to_q(rule.condition, "contact", org=org, now=now)
        except NotCompilable as exc:
            log.info("scoring.recompute fit_rule=%s evaluated in Python: %s", rule.pk, exc)
            compiled[rule.pk] = NotCompilable
    # Contacts without profiling consent (as the org's regime has it) are left as they are.
    scored = (
        ContactScore.objects.filter(model=model)
        .filter(consent_allowed_q(org=org, purpose=PROFILING, field="contact_id"))
        .order_by("contact_id")
    )
    total, done, changed, last = scored.count(), 0, 0, 0
    while True:
        ids = list(scored.filter(contact_id__gt=last).values_list("contact_id", flat=True)[:chunk])
        if not ids:
            break
        changed += _recompute_chunk(model=model, ids=ids, fit_rules=fit_rules, compiled=compiled, now=now)
        done += len(ids)
        last = ids[-1]
        if progress:
            progress(done, total)
    log.info("scoring.recompute model=%s contacts=%s changed=%s", model.pk, done, changed)
    return {"model": model.slug, "contacts": done, "changed": changed}


def scores_replay(
    *,
    model: ScoringModel,
    since: datetime,
    progress: Callable[[int, int], None] | None = None,
    now: datetime | None = None,
    chunk: int = REPLAY_CHUNK,
) -> dict:
    """Scores the org's events since ``since`` with ``model``'s behaviour rules where they have not
    been (see the module), through the scoring path (``rules.events_score``), ``chunk`` events a
    transaction in the order they occurred. Threshold crossings are recorded and run their
    actions as a recomputation's do; the handoffs a rule asks for are not made for past events
    (a replay must not hand sales every demo request of the period again). Safe to run again.

    Calls ``progress(done, total)`` after each chunk. Returns ``{"model": slug, "events": events
    read, "contacts": contacts whose score changed}``.
    """
    now = now or timezone.now()
    types = sorted(
        set(
            ScoringRule.objects.filter(model=model, kind=ScoringRule.Kind.BEHAVIOUR, active=True).values_list(
                "event_type", flat=True
            )
        )
    )
    if not types or not model.active:
        return {"model": model.slug, "events": 0, "contacts": 0}
    # The period's event ids in the order they occurred, sorted once and streamed (a server-side
    # cursor): an org's months of events never sit in memory, nor are they sorted again per chunk.
    ordered = (
        Event.objects.filter(org=model.org, type__any_of=types, occurred_at__gte=since)
        .order_by("occurred_at", "pk")
        .values_list("pk", flat=True)
    )
    total, done, changed = ordered.count(), 0, set()
    stream = ordered.iterator(chunk_size=chunk * 20)
    while ids := list(itertools.islice(stream, chunk)):
        changed |= _replay_chunk(model, ids, now=now)
        done += len(ids)
        if progress:
            progress(done, total)
    log.info("scoring.replay model=%s since=%s events=%s changed=%s", model.pk, since.isoformat(), done, len(changed))
    return {"model": model.slug, "events": done, "contacts": len(changed)}


def _replay_chunk(model: ScoringModel, ids: list[int], *, now: datetime) -> set[int]:
    """Scores the events ``ids`` (gone ones skipped) in ``model`` alone, without rule handoffs."""
    events = list(Event.objects.filter(org=model.org, pk__any_of=ids).order_by("occurred_at", "pk"))
    return events_score(org=model.org, events=events, now=now, models=[model], handoffs=False)


def _recompute_chunk(*, model, ids, fit_rules, compiled, now) -> int:
    """Recomputes the contacts ``ids`` (ascending); returns how many changed."""
    org = model.org
    with transaction.atomic():
        # Lock the chunk's score rows first (in key order), so an event scored meanwhile waits
        # instead of being overwritten by a target computed without it.
        list(
            ContactScore.objects.select_for_update()
            .filter(model=model, contact_id__in=ids)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        chunk = Contact.objects.filter(org=org, pk__in=ids)
        fit = Value(0)
        for rule in fit_rules:
            condition = compiled[rule.pk]
            if condition is None:
                fit = fit + Value(rule.points)
                continue
            if condition is NotCompilable:
                condition = Q(pk__in=_matching_in_python(rule, chunk, now=now))
            fit = fit + Case(When(condition, then=Value(rule.points)), default=Value(0))
        ledger = (
            ScoreLedger.objects.filter(model=model, contact=OuterRef("pk"))
            .order_by()
            .values("contact")
            .annotate(
                part=Sum(
                    Case(
                        When(reason=ScoreLedger.Reason.RULE, rule__active=True, then=F("rule__points")),
                        When(reason__in=KEPT_AS_THEY_WERE, then=F("delta")),
                        default=Value(0),
                    )
                )
            )
            .values("part")
        )
        current = ContactScore.objects.filter(model=model, contact=OuterRef("pk"))
        rows = (
            chunk.annotate(
                score_id=Subquery(current.values("pk")[:1]),
                current=Subquery(current.values("score")[:1]),
                target=Greatest(
                    Least(
                        Value(model.base) + Coalesce(Subquery(ledger, output_field=IntegerField()), Value(0)) + fit,
                        Value(model.maximum),
                    ),
                    Value(model.minimum),
                    output_field=IntegerField(),
                ),
            )
            .filter(Q(target__lt=F("current")) | Q(target__gt=F("current")))
            .values_list("pk", "score_id", "current", "target")
        )
        updates, entries = [], []
        for contact_id, score_id, score, target in rows:
            updates.append(ContactScore(pk=score_id, score=target, band=band_of(model, target), updated_at=now))
            entries.append(
                ScoreLedger(
                    org=org,
                    contact_id=contact_id,
                    model=model,
                    delta=target - score,
                    score_after=target,
                    reason=ScoreLedger.Reason.RECOMPUTE,
                    note=NOTE,
                    at=now,
                )
            )
        update_rows(updates, ["score", "band", "updated_at"])
        ScoreLedger.objects.bulk_create(entries, batch_size=1000)
        if model.is_default:
            mine = ContactScore.objects.filter(model=model, contact=OuterRef("pk"))
            chunk.filter(Exists(mine.exclude(score=OuterRef("score")))).update(score=Subquery(mine.values("score")[:1]))
        crossings_record(
            model=model,
            changes=[(e.contact_id, e.score_after - e.delta, e.score_after) for e in entries],
            cause=f"recompute:{now.isoformat()}",
            now=now,
        )
    return len(entries)


def _matching_in_python(rule: ScoringRule, chunk, *, now) -> list[int]:
    """The chunk's contacts a fit rule matches, evaluated one by one (rules SQL cannot express)."""
    matching = []
    for contact in chunk.select_related("company").prefetch_related("tags", "lists"):
        if truthy(evaluate(rule.condition, contact_facts(contact), contact=contact, now=now)):
            matching.append(contact.pk)
    return matching
