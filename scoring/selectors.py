"""Read queries of scoring: a score that explains itself (the breakdown behind the API and the
console)."""

from typing import Any

from django.db.models import Count, F, Min, Sum, Window

from marketing.conditions.facts import iso
from marketing.consent_providers import consent_allowed_ids
from marketing.models import Contact
from scoring.models import ContactScore, ScoreLedger, ScoringModel
from scoring.rules import PROFILING

RECENT = 10
BY_RULE = {ScoreLedger.Reason.RULE, ScoreLedger.Reason.FIT}


def scoring_model_get(*, org, slug: str | None = None) -> ScoringModel | None:
    """The org's scoring model ``slug``, or its default model when no slug is given; active or
    not (an inactive model's scores can still be read). None when there is no such model."""
    models = ScoringModel.objects.filter(org=org)
    return models.filter(slug=slug).first() if slug else models.filter(is_default=True).first()


def not_scored_reason(*, org, contact: Contact) -> str | None:
    """Why scoring leaves the contact out (the org's profiling regime and the contact's consent),
    in words; None when it is scored. Two queries."""
    if contact.pk in consent_allowed_ids(org=org, contact_ids=[contact.pk], purpose=PROFILING):
        return None
    return (
        "Not scored: the contact has not consented to profiling (lead scoring), which this organisation "
        "asks for; the score is kept as it was and changes no more."
    )


def score_breakdown(*, contact: Contact, model: ScoringModel) -> dict[str, Any]:
    """``contact``'s score in ``model`` and where every point came from.

    ``breakdown`` groups the ledger by rule for rule and fit rows, and by reason for decay, cap,
    manual and recompute rows, so ``base + Σ points == score``; ``recent`` is the newest ledger
    rows with the events behind them; ``probability`` and ``factors`` are the predictive model's
    (null and empty when none has predicted). Three queries."""
    current = (
        ContactScore.objects.filter(org=contact.org_id, contact=contact, model=model)
        .values("score", "probability", "factors")
        .first()
    )
    ledger = ScoreLedger.objects.filter(org=contact.org_id, contact=contact, model=model)
    groups = (
        ledger.values("reason", "rule_id", "rule__name", "rule__kind")
        .annotate(points=Sum("delta"), count=Count("id"))
        .order_by()
    )
    labels = dict(ScoreLedger.Reason.choices)
    breakdown = []
    for group in groups:
        by_rule = group["reason"] in BY_RULE and group["rule_id"] is not None
        breakdown.append(
            {
                "rule": group["rule__name"] if by_rule else labels.get(group["reason"], group["reason"]),
                "rule_id": group["rule_id"] if by_rule else None,
                "reason": group["reason"],
                "points": group["points"],
                "count": group["count"],
            }
        )
    breakdown.sort(key=lambda item: (-abs(item["points"]), item["rule"]))
    recent = [
        {
            "at": iso(row.at),
            "delta": row.delta,
            "score_after": row.score_after,
            "reason": row.reason,
            "rule": row.rule.name if row.rule_id else None,
            "note": row.note,
            "event": (
                {"id": row.event_id, "type": row.event.type, "occurred_at": iso(row.event.occurred_at)}
                if row.event_id
                else None
            ),
        }
        for row in ledger.select_related("rule", "event").order_by("-at", "-id")[:RECENT]
    ]
    return {
        "model": model.slug,
        "score": current["score"] if current else model.base,
        "base": model.base,
        "breakdown": breakdown,
        "recent": recent,
        "probability": current["probability"] if current else None,
        "factors": (current["factors"] or []) if current else [],
    }


class ScoreEntries:
    """Score changes on a contact's timeline (``marketing.timeline``), registered by the app's
    ``ready``: each ledger row with its model, rule or reason, and the running total it makes.

    The timeline lists by time, and rows are not always written in time order (a replay scores
    past events; an event can arrive late), so each row's total is the model's base plus the
    deltas of that model up to it *in the timeline's order*, not the ``score_after`` recorded when
    it was computed: read from the oldest line up, the totals add up and the newest one is the
    score. The model's base is a line of its own, below the model's oldest change."""

    kind = "score"

    def entries(self, contact: Contact, limit: int):
        from marketing.timeline import TimelineEntry

        ledger = ScoreLedger.objects.filter(org=contact.org_id, contact=contact)
        rows = (
            ledger.select_related("model", "rule")
            .annotate(
                running=Window(Sum("delta"), partition_by=[F("model_id")], order_by=[F("at").asc(), F("id").asc()])
            )
            .order_by("-at", "-id")[:limit]
        )
        labels = dict(ScoreLedger.Reason.choices)
        entries = [
            TimelineEntry(
                at=row.at,
                kind=self.kind,
                title=f"Score {row.delta:+d} → {row.model.base + row.running} ({row.model.name})",
                detail=(row.rule.name if row.rule_id else labels.get(row.reason, row.reason))
                + (f": {row.note}" if row.note else ""),
            )
            for row in rows
        ]
        starts = ledger.values("model_id").annotate(first=Min("at")).order_by("-first")[:limit]
        models = ScoringModel.objects.in_bulk([start["model_id"] for start in starts])
        entries += [
            TimelineEntry(
                at=start["first"],
                kind=self.kind,
                title=f"Score starts at {models[start['model_id']].base} ({models[start['model_id']].name})",
                detail="the model's base, before any change",
            )
            for start in starts
        ]
        # Newest first; a base sorts below the change it shares a moment with.
        entries.sort(key=lambda entry: (entry.at, not entry.title.startswith("Score starts")), reverse=True)
        return entries[:limit]

    def count(self, contact: Contact) -> int:
        ledger = ScoreLedger.objects.filter(org=contact.org_id, contact=contact)
        return ledger.count() + ledger.values("model_id").distinct().count()
