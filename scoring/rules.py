"""Scoring services: points for what contacts do and are, written as ledger rows (docs/scoring.md).

``events_score`` scores one dispatch batch set-based: the org's active models and the rules for
the batch's event types are loaded once, every contact's current score locked in one query, and
the ledger rows of the whole batch written with one ``INSERT … ON CONFLICT DO NOTHING``. A contact
row is loaded only where something reads it (a rule that reads more than the event, fit rules, a
handoff); the rules that read only the event just check that their contacts still exist. The
arithmetic is the contract's: ``ContactScore.score = model.base + Σ ledger.delta``, so

- a contact scored for the first time starts at ``base`` plus its fit rules' points (``fit`` rows);
- a behaviour rule adds its points once per (event, rule): a redelivered event finds its rows and
  adds nothing (the unique constraint is the backstop);
- a cap (``cap_count`` per ``cap_period``) counts the rule's ledger rows for the contact in the
  calendar period (UTC) of the event; an event over the cap writes nothing;
- a score outside ``minimum``/``maximum`` is clamped by an extra ``cap`` row with the clamp delta.

Crossing a threshold (either way, comparing the band before and after) records one
``score_threshold_crossed`` event per threshold crossed, with a message id derived from what caused
it, so a retried batch records it once; an upward crossing runs the threshold's actions.

``score_adjust`` is the same arithmetic for a manual or workflow change (reason ``manual``).
"""

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from marketing.bulk_sql import array_literal, insert_returning, update_rows
from marketing.conditions import (
    ConditionError,
    Prepared,
    contact_facts,
    evaluate,
    prepare,
    reads_contact,
    reads_names,
    truthy,
)
from marketing.conditions.facts import event_facts
from marketing.consent_providers import consent_allowed_ids
from marketing.models import Contact, Event, Organization
from scoring.models import ContactScore, ScoreLedger, ScoringModel, ScoringRule

logger = logging.getLogger(__name__)

THRESHOLD_EVENT = "score_threshold_crossed"
PROFILING = "profiling"  # the consent purpose scoring acts on (compliance.models.Purpose)


class ScoringRaceError(Exception):
    """Another transaction wrote some of this batch's (event, rule) rows first. The batch rolls back
    and dispatch delivers it again, when those rows are found up front and skipped."""


# --- the model's range and bands ------------------------------------------------------------------


def band_index(model: ScoringModel, score: int) -> int:
    """The index of the highest threshold ``score`` reaches (-1: below every threshold)."""
    reached = -1
    for index, threshold in enumerate(model.thresholds or []):
        if (
            isinstance(threshold, dict)
            and isinstance(threshold.get("score"), int | float)
            and score >= threshold["score"]
        ):
            reached = index
    return reached


def band_of(model: ScoringModel, score: int) -> str:
    """The name of the highest threshold ``score`` reaches ("" below them all)."""
    index = band_index(model, score)
    return str(model.thresholds[index].get("name", "")) if index >= 0 else ""


def clamp(model: ScoringModel, score: int) -> int:
    return max(model.minimum, min(model.maximum, score))


def default_model(*, org: Organization) -> ScoringModel | None:
    """The org's default scoring model (its score is mirrored on ``Contact.score``), if active."""
    return ScoringModel.objects.filter(org=org, is_default=True, active=True).first()


# --- rules ----------------------------------------------------------------------------------------


def rules_read_names(rules: list[ScoringRule]) -> bool:
    """Whether any of the (loaded) rules' conditions may read tags or lists; worked out once per
    loaded rule."""
    for rule in rules:
        names = getattr(rule, "_reads_names", None)
        if names is None:
            names = rule._reads_names = reads_names(rule.condition)
        if names:
            return True
    return False


def rule_reads_contact(rule: ScoringRule) -> bool:
    """Whether the rule's condition reads more than the event (then its events need their
    contact loaded); worked out once per loaded rule."""
    reads = getattr(rule, "_reads_contact", None)
    if reads is None:
        reads = rule._reads_contact = rule.condition not in (None, {}, True) and reads_contact(rule.condition)
    return reads


_UNPREPARED = object()


def _prepared(rule: ScoringRule) -> Prepared | None:
    """The rule's condition compiled once per loaded rule (rules are loaded once per batch);
    None when it uses a registered operator that needs the contact."""
    prepared = getattr(rule, "_prepared", _UNPREPARED)
    if prepared is _UNPREPARED:
        prepared = rule._prepared = prepare(rule.condition)
    return prepared


def rule_matches(rule: ScoringRule, facts: dict, *, contact, now, facts_json: str | None = None) -> bool:
    """Whether ``rule``'s condition holds for ``facts`` (an empty condition always holds). A rule
    that cannot be evaluated counts as not matching, with a warning: one bad rule must not stop a
    batch for every other rule (its condition was validated when saved). ``facts_json``: the facts
    serialised once for all the rules of an event."""
    if rule.condition in (None, {}, True):
        return True
    try:
        prepared = _prepared(rule)
        if prepared is not None:
            return truthy(prepared.evaluate(facts, data_json=facts_json))
        return truthy(evaluate(rule.condition, facts, contact=contact, now=now, data_json=facts_json))
    except ConditionError as exc:
        who = contact.pk if contact is not None else None
        logger.warning("scoring rule not evaluable rule=%s contact=%s error=%s", rule.pk, who, exc)
        return False


def period_key(period: str, at: datetime) -> tuple:
    """The calendar period (UTC) that ``at`` falls in, for caps."""
    at = at.astimezone(UTC)
    if period == ScoringRule.Period.DAY:
        return (at.year, at.month, at.day)
    if period == ScoringRule.Period.WEEK:
        iso = at.isocalendar()
        return (iso.year, iso.week)
    return (at.year, at.month)


def period_start(period: str, at: datetime) -> datetime:
    at = at.astimezone(UTC)
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == ScoringRule.Period.DAY:
        return day
    if period == ScoringRule.Period.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def period_end(period: str, at: datetime) -> datetime:
    start = period_start(period, at)
    if period == ScoringRule.Period.DAY:
        return start + timedelta(days=1)
    if period == ScoringRule.Period.WEEK:
        return start + timedelta(days=7)
    return (start + timedelta(days=32)).replace(day=1)


def capped(rule: ScoringRule) -> bool:
    return bool(rule.cap_count) and bool(rule.cap_period)


# --- the tally: one batch's changes, written together ----------------------------------------------


@dataclass
class _Score:
    """One contact's score in one model while a batch is worked (the row's id, not the row: a
    batch touches hundreds)."""

    pk: int | None
    contact_id: int
    model: ScoringModel
    score: int
    before: int
    created: bool = False
    cause: str = ""  # what last changed it, for the threshold events' message ids


@dataclass
class _Tally:
    """The rows a batch writes: ledger rows in order, scores touched, handoffs asked for; and the
    contacts loaded, only those something reads (a rule's condition, fit rules, a handoff)."""

    org: Organization
    now: datetime
    names: bool = False  # whether loaded contacts come with their tags and lists (a rule reads them)
    contacts: dict[int, Contact] = field(default_factory=dict)
    scores: dict[tuple[int, int], _Score] = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)
    handoffs: list[tuple] = field(default_factory=list)

    def contacts_load(self, ids) -> None:
        """Loads, in one query, those of ``ids`` not loaded yet (with their company); a contact
        merged away meanwhile is simply not there."""
        missing = sorted(set(ids) - self.contacts.keys())
        if not missing:
            return
        queryset = Contact.objects.filter(org=self.org, pk__any_of=missing).select_related("company")
        if self.names:
            queryset = queryset.prefetch_related("tags", "lists")
        self.contacts.update((contact.pk, contact) for contact in queryset)

    def add(self, state: _Score, *, delta: int, reason: str, rule=None, event=None, note="", actor=None, at=None):
        """Appends a row for ``delta`` and, when the result leaves the model's range, a ``cap`` row
        that brings it back, so base + Σ delta stays the score."""
        at = at or self.now
        raw = state.score + delta
        self.rows.append(
            {
                "contact": state.contact_id,
                "model": state.model.pk,
                "delta": delta,
                "score_after": raw,
                "reason": reason,
                "rule": rule.pk if rule is not None else None,
                "event": event.pk if event is not None else None,
                "note": note[:300],
                "actor": actor.pk if actor is not None else None,
                "at": at,
            }
        )
        bounded = clamp(state.model, raw)
        if bounded != raw:
            self.rows.append(
                {
                    "contact": state.contact_id,
                    "model": state.model.pk,
                    "delta": bounded - raw,
                    "score_after": bounded,
                    "reason": ScoreLedger.Reason.CAP,
                    "rule": None,  # (event, rule) is unique: the clamp names the event only
                    "event": event.pk if event is not None else None,
                    "note": f"clamped to {state.model.minimum}..{state.model.maximum}",
                    "actor": None,
                    "at": at,
                }
            )
        state.score = bounded


def _lock_scores(
    tally: _Tally, *, models: list[ScoringModel], pairs: set[tuple[int, int]], fit_rules: dict[int, list]
) -> None:
    """Loads (locking, in primary-key order) the scores of ``pairs`` (contact id, model id),
    creating the missing ones at ``base`` with their fit points. A score created by this
    transaction is locked by its insert, so a concurrent batch waits for it instead of adding
    fit points twice."""
    model_by_id = {m.pk: m for m in models}
    existing = (
        ContactScore.objects.filter(
            org=tally.org,
            model_id__any_of=sorted({m for _, m in pairs}),
            contact_id__any_of=sorted({c for c, _ in pairs}),
        )
        .order_by("pk")
        .select_for_update()
        .values_list("pk", "contact_id", "model_id", "score")
    )
    for pk, contact_id, model_id, score in existing:
        tally.scores[(contact_id, model_id)] = _Score(pk, contact_id, model_by_id[model_id], score, before=score)
    missing = sorted(((c, m) for c, m in pairs if (c, m) not in tally.scores), key=lambda pair: (pair[1], pair[0]))
    if not missing:
        return
    stored = insert_returning(
        ContactScore,
        columns={
            "contact": [c for c, _ in missing],
            "model": [m for _, m in missing],
            "score": [model_by_id[m].base for _, m in missing],
            "band": [band_of(model_by_id[m], model_by_id[m].base) for _, m in missing],
        },
        fixed={"org": tally.org.pk, "updated_at": tally.now},
        returning=["id", "contact", "model"],
    )
    tally.contacts_load(contact_id for _pk, contact_id, model_id in stored if fit_rules.get(model_id))
    for pk, contact_id, model_id in stored:
        model = model_by_id[model_id]
        state = _Score(pk, contact_id, model, model.base, before=model.base, created=True)
        tally.scores[(contact_id, model_id)] = state
        _add_fit_points(tally, state, fit_rules.get(model_id, []))
    lost = [(c, m) for c, m in missing if (c, m) not in tally.scores]
    if lost:  # created by a concurrent transaction meanwhile (committed, or we would still wait)
        for pk, contact_id, model_id, score in (
            ContactScore.objects.filter(
                org=tally.org, model_id__any_of=[m for _, m in lost], contact_id__any_of=[c for c, _ in lost]
            )
            .select_for_update()
            .values_list("pk", "contact_id", "model_id", "score")
        ):
            if (contact_id, model_id) not in tally.scores:
                tally.scores[(contact_id, model_id)] = _Score(
                    pk, contact_id, model_by_id[model_id], score, before=score
                )


def _add_fit_points(tally: _Tally, state: _Score, rules: list[ScoringRule]) -> None:
    contact = tally.contacts.get(state.contact_id)
    if not rules or contact is None:
        return
    facts = contact_facts(contact, names=rules_read_names(rules))
    facts_json = json.dumps(facts)  # once for all the fit rules
    for rule in rules:
        if rule_matches(rule, facts, contact=contact, now=tally.now, facts_json=facts_json):
            tally.add(state, delta=rule.points, reason=ScoreLedger.Reason.FIT, rule=rule)
            state.cause = f"fit{rule.pk}"


def fit_points(*, contact: Contact, model: ScoringModel, now: datetime | None = None) -> list[tuple[ScoringRule, int]]:
    """The fit rules of ``model`` that ``contact`` matches now, with their points (for a
    recomputation, which writes the difference as ``recompute`` rows)."""
    now = now or timezone.now()
    rules = list(ScoringRule.objects.filter(org=model.org_id, model=model, kind=ScoringRule.Kind.FIT, active=True))
    names = rules_read_names(rules)
    facts = contact_facts(contact, names=names)
    return [(rule, rule.points) for rule in rules if rule_matches(rule, facts, contact=contact, now=now)]


# --- scoring a dispatch batch -----------------------------------------------------------------------


def events_score(
    *,
    org: Organization,
    events: list[Event],
    now: datetime | None = None,
    models: list[ScoringModel] | None = None,
    handoffs: bool = True,
) -> set[int]:
    """Scores a batch of stored events (each contact's in ``occurred_at`` order) in every active
    model of ``org`` (or in those of ``models`` that are active); returns the ids of the contacts
    whose score changed. Safe to run twice. ``handoffs=False`` scores without the handoffs rules
    ask for (a replay of past events, ``scoring.recompute.scores_replay``)."""
    now = now or timezone.now()
    events = list({e.pk: e for e in events}.values())  # an event listed twice scores once
    if not events:
        return set()
    types = {e.type for e in events}
    active = ScoringModel.objects.filter(org=org, active=True).order_by("pk")
    if models is not None:
        active = active.filter(pk__any_of=[m.pk for m in models])
    models = list(active)
    if not models:
        return set()
    rules = list(
        ScoringRule.objects.filter(org=org, model_id__any_of=[m.pk for m in models], active=True)
        .filter(Q(kind=ScoringRule.Kind.FIT) | Q(kind=ScoringRule.Kind.BEHAVIOUR, event_type__any_of=sorted(types)))
        .order_by("pk")
    )
    behaviour: dict[str, list[ScoringRule]] = defaultdict(list)
    fit: dict[int, list[ScoringRule]] = defaultdict(list)
    for rule in rules:
        (behaviour[rule.event_type] if rule.kind == ScoringRule.Kind.BEHAVIOUR else fit[rule.model_id]).append(rule)
    relevant = [e for e in events if e.type in behaviour]
    if not relevant:
        return set()
    # Profiling needs the contact's consent as the org's regime has it: the others are not scored.
    profiled = consent_allowed_ids(org=org, contact_ids={e.contact_id for e in relevant}, purpose=PROFILING)
    relevant = [e for e in relevant if e.contact_id in profiled]
    if not relevant:
        return set()

    with transaction.atomic():
        tally = _Tally(org=org, now=now, names=rules_read_names(rules))
        # Contacts are loaded only for the event types whose rules read more than the event; the
        # others' contacts are only checked to exist (merged away since the event was stored?).
        reading = {kind for kind, kind_rules in behaviour.items() if any(map(rule_reads_contact, kind_rules))}
        tally.contacts_load(e.contact_id for e in relevant if e.type in reading)
        unread = sorted({e.contact_id for e in relevant} - tally.contacts.keys())
        existing = set(Contact.objects.filter(org=org, pk__any_of=unread).values_list("pk", flat=True))
        relevant = [e for e in relevant if e.contact_id in tally.contacts or e.contact_id in existing]
        if not relevant:
            return set()
        done = set(
            ScoreLedger.objects.filter(
                org=org, event_id__any_of=[e.pk for e in relevant], rule__isnull=False
            ).values_list("event_id", "rule_id")
        )
        pairs = {(e.contact_id, rule.model_id) for e in relevant for rule in behaviour[e.type]}
        _lock_scores(tally, models=models, pairs=pairs, fit_rules=fit)
        cap_counts = _cap_counts(org, relevant, behaviour)

        for event in relevant:
            contact = tally.contacts.get(event.contact_id) if event.type in reading else None
            facts = facts_json = None
            for rule in behaviour[event.type]:
                if (event.pk, rule.pk) in done:
                    continue
                if rule.condition not in (None, {}, True) and facts is None:
                    facts = contact_facts(contact, names=tally.names) if contact is not None else {}
                    facts["event"] = event_facts(event)
                    facts_json = json.dumps(facts)  # once for every rule of the event's type
                if not rule_matches(rule, facts or {}, contact=contact, now=now, facts_json=facts_json):
                    continue
                if capped(rule):
                    key = (rule.pk, event.contact_id, period_key(rule.cap_period, event.occurred_at))
                    if cap_counts[key] >= rule.cap_count:
                        continue
                    cap_counts[key] += 1
                state = tally.scores[(event.contact_id, rule.model_id)]
                tally.add(
                    state,
                    delta=rule.points,
                    reason=ScoreLedger.Reason.RULE,
                    rule=rule,
                    event=event,
                    at=event.occurred_at,
                )
                state.cause = f"e{event.pk}"
                if rule.creates_handoff and handoffs:
                    tally.handoffs.append((state, event))
        planned = sum(1 for row in tally.rows if row["rule"] is not None and row["event"] is not None)
        stored = _write(tally)
        if stored != planned:
            raise ScoringRaceError(f"{planned - stored} (event, rule) rows were written by another transaction")
        return _after_write(tally)


def _cap_counts(org, events: list[Event], behaviour: dict[str, list[ScoringRule]]) -> dict[tuple, int]:
    """How many ledger rows each capped rule already has per contact and period the batch touches:
    one query over the rule/contact/time index."""
    counts: dict[tuple, int] = defaultdict(int)
    capped_rules = {r.pk: r for rules in behaviour.values() for r in rules if capped(r)}
    if not capped_rules:
        return counts
    touched = [e for e in events if any(capped(r) for r in behaviour[e.type])]
    if not touched:
        return counts
    # From the start of the earliest event's period to the end of the latest's (a period's
    # bounds only move forward with time), for every kind of period the capped rules use.
    periods = {r.cap_period for r in capped_rules.values()}
    first, last = min(e.occurred_at for e in touched), max(e.occurred_at for e in touched)
    rows = ScoreLedger.objects.filter(
        org=org,
        rule_id__any_of=sorted(capped_rules),
        contact_id__any_of=sorted({e.contact_id for e in touched}),
        reason=ScoreLedger.Reason.RULE,
        at__gte=min(period_start(p, first) for p in periods),
        at__lt=max(period_end(p, last) for p in periods),
    ).values_list("rule_id", "contact_id", "at")
    for rule_id, contact_id, at in rows:
        counts[(rule_id, contact_id, period_key(capped_rules[rule_id].cap_period, at))] += 1
    return counts


def _write(tally: _Tally) -> int:
    """Writes the ledger rows (one INSERT … ON CONFLICT DO NOTHING), the changed scores and the
    default model's mirror on ``Contact.score``; returns how many (event, rule) rows were stored."""
    stored = 0
    if tally.rows:
        columns = {name: [row[name] for row in tally.rows] for name in tally.rows[0]}
        returned = insert_returning(
            ScoreLedger, columns=columns, fixed={"org": tally.org.pk}, returning=["id", "rule", "event"]
        )
        stored = sum(1 for _pk, rule_id, event_id in returned if rule_id is not None and event_id is not None)
    changed = [s for s in tally.scores.values() if s.created or s.score != s.before]
    _scores_write(
        tally.now,
        moved=[s for s in changed if not s.created or s.score != s.before],
        mirrored={s.contact_id: s.score for s in changed if s.model.is_default},
    )
    return stored


def _scores_write(now: datetime, *, moved: list[_Score], mirrored: dict[int, int]) -> None:
    """The new scores (with their band) of ``moved``, and the default model's ``mirrored`` on
    ``Contact.score`` (contact id → score). PostgreSQL: one statement, each list one array."""
    if not moved and not mirrored:
        return
    if connection.vendor != "postgresql":
        update_rows(
            [ContactScore(pk=s.pk, score=s.score, band=band_of(s.model, s.score), updated_at=now) for s in moved],
            ["score", "band", "updated_at"],
        )
        update_rows([Contact(pk=pk, score=score) for pk, score in mirrored.items()], ["score"])
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH moved AS (UPDATE {ContactScore._meta.db_table} AS cs "  # noqa: S608  the models' own tables
            "SET score = v.score, band = v.band, updated_at = %s "
            "FROM unnest(%s::bigint[], %s::integer[], %s::text[]) AS v(id, score, band) WHERE cs.id = v.id) "
            f"UPDATE {Contact._meta.db_table} AS c SET score = m.score "
            "FROM unnest(%s::bigint[], %s::integer[]) AS m(id, score) WHERE c.id = m.id",
            [
                now,
                array_literal([s.pk for s in moved]),
                array_literal([s.score for s in moved]),
                array_literal([band_of(s.model, s.score) for s in moved]),
                array_literal(mirrored),
                array_literal(mirrored.values()),
            ],
        )


@dataclass(frozen=True)
class Crossing:
    """A score that crossed one threshold of its model, up or down."""

    contact_id: int
    model: ScoringModel
    threshold: dict
    direction: str  # "up" or "down"
    score: int
    before: int
    cause: str = ""  # what changed the score (an event, a run), for the message id

    @property
    def message_id(self) -> str:
        """Derived from the model, the contact, the threshold and what changed the score, so the
        same change recorded again (a retried batch) is the same event."""
        cause = self.cause or f"{self.before}-{self.score}"
        name = self.threshold.get("name", "")
        return f"score:{self.model.pk}:{self.contact_id}:{name}:{self.direction}:{cause}"[:200]


def crossings_of(model: ScoringModel, contact_id: int, before: int, after: int, cause: str = "") -> list[Crossing]:
    """Every threshold a change from ``before`` to ``after`` crosses, in the order crossed."""
    low, high = band_index(model, before), band_index(model, after)
    if low == high:
        return []
    thresholds = model.thresholds
    steps = range(low + 1, high + 1) if high > low else range(low, high, -1)
    direction = "up" if high > low else "down"
    return [Crossing(contact_id, model, thresholds[i], direction, after, before, cause) for i in steps]


def _after_write(tally: _Tally) -> set[int]:
    """Threshold crossings (events, then actions of upward ones) and the handoffs rules asked for;
    returns the contacts whose score changed."""
    from scoring.handoffs import HandoffRequest, handoffs_create

    crossings = [
        (state, crossing)
        for state in tally.scores.values()
        for crossing in crossings_of(state.model, state.contact_id, state.before, state.score, state.cause)
    ]
    upward = [(state, crossing) for state, crossing in crossings if crossing.direction == "up"]
    # What the actions and handoffs read of their contacts, in one query.
    tally.contacts_load([state.contact_id for state, _ in upward] + [state.contact_id for state, _ in tally.handoffs])
    requests = []  # the batch's handoffs, made together: a threshold's first, then the rules'
    if crossings:
        _record_crossings(tally.org, tally.now, [crossing for _, crossing in crossings])
        for state, crossing in upward:
            requests += _run_threshold_actions(tally, state, crossing)
    requests += [
        HandoffRequest(
            contact=tally.contacts[state.contact_id],
            reason="demo_request",
            model=state.model,
            score=state.score,
            source_event=event,
            detail=event.type,
        )
        for state, event in tally.handoffs
        if state.contact_id in tally.contacts
    ]
    handoffs_create(org=tally.org, requests=requests, now=tally.now)
    return {s.contact_id for s in tally.scores.values() if s.created or s.score != s.before}


def crossings_record(
    *, model: ScoringModel, changes: list[tuple[int, int, int]], cause: str, now: datetime | None = None
) -> int:
    """The threshold crossings of scores changed in bulk (decay, recomputation), as the scoring path
    records its own: one ``score_threshold_crossed`` event per threshold crossed, and the actions
    of upward ones. ``changes`` are ``(contact id, score before, score after)``; ``cause`` names
    the run, for the events' message ids. Call it in the transaction that changed the scores.
    Returns how many contacts crossed."""
    from scoring.handoffs import handoffs_create

    now = now or timezone.now()
    crossings = [crossing for change in changes for crossing in crossings_of(model, *change, cause=cause)]
    if not crossings:
        return 0
    _record_crossings(model.org, now, crossings)
    # Only an upward crossing's actions read the contact (a handoff's territory, a notice); a
    # decay's crossings are all downward.
    upward = [crossing for crossing in crossings if crossing.direction == "up"]
    if upward:
        tally = _Tally(org=model.org, now=now)
        tally.contacts_load(crossing.contact_id for crossing in upward)
        requests = []
        for crossing in upward:
            state = _Score(None, crossing.contact_id, model, crossing.score, before=crossing.before, cause=cause)
            requests += _run_threshold_actions(tally, state, crossing)
        handoffs_create(org=model.org, requests=requests, now=now)
    return len({crossing.contact_id for crossing in crossings})


def _record_crossings(org: Organization, now: datetime, crossings: list[Crossing]) -> None:
    from marketing.ingestion import SystemEvent, events_record

    events = [
        SystemEvent(
            contact_id=crossing.contact_id,
            type=THRESHOLD_EVENT,
            properties={
                "model": crossing.model.slug,
                "default_model": crossing.model.is_default,  # lets a trigger on "the default" match without a query
                "threshold": str(crossing.threshold.get("name", "")),
                "direction": crossing.direction,
                "score": crossing.score,
                "previous_score": crossing.before,
            },
            occurred_at=now,
            message_id=crossing.message_id,
        )
        for crossing in crossings
    ]
    events_record(org=org, events=events, source="scoring")


def _run_threshold_actions(tally: _Tally, state: _Score, crossing: Crossing) -> list:
    """What crossing ``threshold`` upward fires: ``handoff`` (to sales; returned as a request, for
    the batch's handoffs to be made together), ``enrol`` (in a workflow, by slug) and ``notify``
    (a Slack template to a destination). Unusable actions are logged and skipped: a score must
    not fail because a workflow was archived."""
    from scoring.handoffs import HandoffRequest

    name = str(crossing.threshold.get("name", ""))
    key = crossing.message_id
    contact = tally.contacts.get(state.contact_id)  # loaded by the caller
    if contact is None:
        return []  # merged away meanwhile
    handoffs = []
    for spec in crossing.threshold.get("actions") or []:
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind == "handoff":
            handoffs.append(
                HandoffRequest(contact=contact, reason="threshold", model=state.model, score=state.score, detail=name)
            )
        elif kind == "enrol":
            _enrol(tally, state, spec, name=name, key=key)
        elif kind == "notify":
            _notify(tally, state, contact, spec, name=name, key=key)
        else:
            logger.warning("unknown threshold action model=%s threshold=%s action=%s", state.model.pk, name, spec)
    return handoffs


def _enrol(tally: _Tally, state: _Score, spec: dict, *, name: str, key: str) -> None:
    from workflows.models import Workflow
    from workflows.services import workflow_enrol

    workflow = Workflow.objects.filter(org=tally.org, slug=spec.get("workflow", "")).first()
    if workflow is None or workflow.live_version_id is None:
        logger.warning(
            "threshold enrol skipped: no live workflow org=%s workflow=%s", tally.org.slug, spec.get("workflow")
        )
        return
    workflow_enrol(
        workflow=workflow,
        contact_ids=[state.contact_id],
        trigger_type="score_threshold",
        trigger_key=key,
        trigger_data={"model": state.model.slug, "threshold": name, "score": state.score},
        now=tally.now,
    )


def _notify(tally: _Tally, state: _Score, contact: Contact, spec: dict, *, name: str, key: str) -> None:
    """Posts the Slack template ``spec["template"]`` to the destination ``spec["destination"]``
    through the outbox (idempotent on the crossing). Without both, or without a published Slack
    template of that slug, it only logs: notifying is best effort, the crossing event is the record."""
    from channels_app.models import Channel, MessageTemplate
    from channels_app.outbox import UnpublishedTemplateError, message_enqueue
    from channels_app.rendering import RenderError

    template_slug, destination = spec.get("template"), spec.get("destination")
    template = (
        MessageTemplate.objects.filter(org=tally.org, slug=template_slug, channel=Channel.SLACK).first()
        if template_slug and destination
        else None
    )
    if template is None:
        logger.info(
            "threshold notify not configured org=%s model=%s threshold=%s contact=%s score=%s",
            tally.org.slug,
            state.model.slug,
            name,
            contact.pk,
            state.score,
        )
        return
    try:
        message_enqueue(
            org=tally.org,
            contact=contact,
            template=template,
            idempotency_key=f"notify:{key}"[:200],
            to=destination,
        )
    except (UnpublishedTemplateError, RenderError) as exc:
        logger.warning("threshold notify skipped org=%s template=%s error=%s", tally.org.slug, template_slug, exc)


# --- manual changes ---------------------------------------------------------------------------------


def score_adjust(
    *,
    org: Organization,
    contact: Contact,
    model: ScoringModel | None = None,
    delta: int,
    note: str = "",
    actor=None,
    now: datetime | None = None,
    cause: str = "",
) -> ContactScore:
    """Adds ``delta`` points to ``contact``'s score in ``model`` (default: the org's default model)
    by hand or from a workflow step: a ``manual`` row (and a ``cap`` row if it leaves the range).
    ``cause`` names the change for the threshold events' message ids (e.g. the step's key)."""
    now = now or timezone.now()
    model = model or default_model(org=org)
    if model is None:
        raise ValidationError({"model": "The organisation has no default scoring model."})
    if model.org_id != org.pk:
        raise ValidationError({"model": "No such scoring model in this organisation."})
    with transaction.atomic():
        contact = Contact.objects.select_related("company").get(org=org, pk=contact.pk)
        fit = list(
            ScoringRule.objects.filter(org=org, model=model, kind=ScoringRule.Kind.FIT, active=True).order_by("pk")
        )
        tally = _Tally(org=org, now=now, names=rules_read_names(fit), contacts={contact.pk: contact})
        _lock_scores(tally, models=[model], pairs={(contact.pk, model.pk)}, fit_rules={model.pk: fit})
        state = tally.scores[(contact.pk, model.pk)]
        tally.add(state, delta=int(delta), reason=ScoreLedger.Reason.MANUAL, note=note, actor=actor)
        state.cause = cause or f"manual:{now.isoformat()}"
        _write(tally)
        _after_write(tally)
    return ContactScore.objects.get(pk=state.pk)
