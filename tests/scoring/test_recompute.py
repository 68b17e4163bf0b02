"""Recomputation (scoring/recompute.py) and its task: after points change, a rule is deactivated or
deleted, or a fit rule changes, every score is brought in step; the ledger identity holds; a
second run writes nothing. Ledger rows are made directly (as the scoring path would write them)."""

import uuid
from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from marketing.models import Contact, Event
from marketing.tenancy import org_context
from scoring.models import ContactScore, ScoreLedger, ScoringModel, ScoringRule
from scoring.recompute import scores_recompute, scores_replay
from scoring.rules import events_score
from scoring.tasks import scores_recompute_model
from tests.factories import ContactFactory

THRESHOLDS = [{"name": "low", "score": 100}, {"name": "medium", "score": 300}, {"name": "high", "score": 500}]
GERMANY = {"==": [{"var": "country"}, "DE"]}


@pytest.fixture
def model(org):
    return ScoringModel.objects.create(org=org, slug="default", name="Default", is_default=True, thresholds=THRESHOLDS)


@pytest.fixture
def pricing(model):
    return ScoringRule.objects.create(org=model.org, model=model, name="Pricing", event_type="page_viewed", points=15)


@pytest.fixture
def demo(model):
    return ScoringRule.objects.create(org=model.org, model=model, name="Demo", event_type="demo_requested", points=100)


@pytest.fixture
def german(model):
    return ScoringRule.objects.create(
        org=model.org, model=model, name="In Germany", kind=ScoringRule.Kind.FIT, condition=GERMANY, points=50
    )


def history(model, contact, *entries):
    """Writes ledger rows (reason, rule or None, delta) for ``contact`` as the scoring path would,
    each with its running score, and the score row (and mirror) they add up to."""
    score, rows = model.base, []
    for reason, rule, delta in entries:
        score += delta
        rows.append(
            ScoreLedger(
                org=model.org, contact=contact, model=model, delta=delta, score_after=score, reason=reason, rule=rule
            )
        )
    ScoreLedger.objects.bulk_create(rows)
    ContactScore.objects.update_or_create(
        org=model.org, contact=contact, model=model, defaults={"score": score, "band": "low"}
    )
    if model.is_default:
        Contact.objects.filter(pk=contact.pk).update(score=score)
    return contact


def score_of(model, contact) -> int:
    return ContactScore.objects.get(model=model, contact=contact).score


def assert_ledger_identity(model):
    rows = ContactScore.objects.filter(model=model)
    assert rows.exists()
    for row in rows:
        total = ScoreLedger.objects.filter(model=model, contact_id=row.contact_id).aggregate(s=Sum("delta"))["s"] or 0
        assert row.score == model.base + total, row.contact_id
        if model.is_default:
            assert Contact.objects.get(pk=row.contact_id).score == row.score


@pytest.fixture
def scored(model, pricing, demo, german):
    """Ana (DE): fit 50, three pricing views, a demo request. Bo (FR): two pricing views."""
    ana = history(
        model,
        ContactFactory(org=model.org, country="DE"),
        ("fit", german, 50),
        ("rule", pricing, 15),
        ("rule", pricing, 15),
        ("rule", pricing, 15),
        ("rule", demo, 100),
    )
    bo = history(model, ContactFactory(org=model.org, country="FR"), ("rule", pricing, 15), ("rule", pricing, 15))
    return ana, bo


def test_with_no_rule_changed_nothing_changes(model, scored):
    ana, bo = scored

    assert scores_recompute(model=model) == {"model": "default", "contacts": 2, "changed": 0}

    assert (score_of(model, ana), score_of(model, bo)) == (295, 130)
    assert not ScoreLedger.objects.filter(reason="recompute").exists()


def test_recompute_after_points_change(model, scored, pricing):
    ana, bo = scored
    pricing.points = 20
    pricing.save()

    assert scores_recompute(model=model)["changed"] == 2

    assert (score_of(model, ana), score_of(model, bo)) == (310, 140)
    row = ScoreLedger.objects.get(reason="recompute", contact=ana)
    assert (row.delta, row.score_after, row.rule_id, row.event_id) == (15, 310, None, None)
    assert ContactScore.objects.get(model=model, contact=ana).band == "medium"
    assert_ledger_identity(model)


def test_recompute_across_a_threshold_records_the_crossing_and_runs_upward_actions(model, scored, pricing):
    from marketing.models import Event
    from scoring.models import Handoff

    ana, bo = scored  # 295 and 130
    model.thresholds = [*THRESHOLDS[:1], {"name": "medium", "score": 300, "actions": [{"type": "handoff"}]}]
    model.save()
    pricing.points = 20
    pricing.save()
    scores_recompute(model=model)  # ana 295 → 310

    crossed = Event.objects.get(type="score_threshold_crossed")
    assert crossed.contact_id == ana.pk
    assert (crossed.properties["direction"], crossed.properties["threshold"]) == ("up", "medium")
    assert Handoff.objects.get(contact=ana).reason == "threshold"

    pricing.points = 5
    pricing.save()
    scores_recompute(model=model)  # ana 310 → 265
    down = Event.objects.get(type="score_threshold_crossed", properties__direction="down")
    assert (down.contact_id, down.properties["score"]) == (ana.pk, 265)
    assert not Event.objects.filter(type="score_threshold_crossed", contact=bo).exists()


def test_recompute_is_idempotent(model, scored, pricing):
    pricing.points = 20
    pricing.save()
    scores_recompute(model=model)
    rows = ScoreLedger.objects.count()

    assert scores_recompute(model=model)["changed"] == 0

    assert ScoreLedger.objects.count() == rows
    assert_ledger_identity(model)


def test_recompute_after_a_rule_is_deactivated_or_deleted(model, scored, pricing, demo):
    ana, bo = scored
    demo.active = False
    demo.save()

    scores_recompute(model=model)
    assert (score_of(model, ana), score_of(model, bo)) == (195, 130)

    demo.active = True
    demo.save()
    scores_recompute(model=model)
    assert score_of(model, ana) == 295

    pricing.delete()  # its rows keep their deltas but lose their rule
    scores_recompute(model=model)
    assert (score_of(model, ana), score_of(model, bo)) == (250, 100)
    assert_ledger_identity(model)


def test_recompute_after_a_fit_rule_changes(model, scored, german):
    ana, bo = scored
    unscored = ContactFactory(org=model.org, country="FR")
    german.condition = {"==": [{"var": "country"}, "FR"]}
    german.save()

    assert scores_recompute(model=model) == {"model": "default", "contacts": 2, "changed": 2}

    assert (score_of(model, ana), score_of(model, bo)) == (245, 180)
    assert ScoreLedger.objects.get(contact=bo, reason="recompute").delta == 50
    # A contact never scored has no score to correct: it gets its fit points when first scored.
    assert not ContactScore.objects.filter(contact=unscored).exists()
    assert not ScoreLedger.objects.filter(contact=unscored).exists()
    assert_ledger_identity(model)


def test_a_fit_rule_sql_cannot_express_is_evaluated_per_contact(model, scored, german):
    ana, bo = scored
    german.condition = {"if": [{"==": [{"var": "country"}, "FR"]}, True, False]}
    german.save()

    scores_recompute(model=model, chunk=1)

    assert (score_of(model, ana), score_of(model, bo)) == (245, 180)
    assert_ledger_identity(model)


def test_manual_and_decay_rows_are_kept_and_the_target_is_clamped(model, pricing, german):
    model.maximum = 400
    model.save()
    contact = history(
        model,
        ContactFactory(org=model.org, country="FR"),
        ("rule", pricing, 15),
        ("manual", None, 30),
        ("decay", None, -7),
        ("rule", pricing, 15),
    )
    assert score_of(model, contact) == 153
    pricing.points = 200
    pricing.save()

    scores_recompute(model=model)
    assert score_of(model, contact) == 400  # 100 + 400 + 30 − 7, clamped to the maximum

    pricing.points = 100
    pricing.save()
    scores_recompute(model=model)
    assert score_of(model, contact) == 323
    assert_ledger_identity(model)


def test_a_clamp_recorded_by_the_scoring_path_counts(model, pricing):
    model.maximum = 120
    model.save()
    contact = history(
        model, ContactFactory(org=model.org), ("rule", pricing, 15), ("rule", pricing, 15), ("cap", None, -10)
    )

    assert scores_recompute(model=model)["changed"] == 0
    assert score_of(model, contact) == 120


def test_progress_is_reported_per_chunk(model, scored):
    history(model, ContactFactory(org=model.org))
    calls = []

    scores_recompute(model=model, progress=lambda done, total: calls.append((done, total)), chunk=2)

    assert calls == [(2, 3), (3, 3)]


def test_another_orgs_contacts_are_left_alone(model, scored, pricing, other_org):
    with org_context(other_org):
        theirs = ScoringModel.objects.create(org=other_org, slug="default", name="Default", is_default=True)
        their_rule = ScoringRule.objects.create(org=other_org, model=theirs, name="Pricing", points=15)
        their_contact = history(theirs, ContactFactory(org=other_org), ("rule", their_rule, 15))
    pricing.points = 1
    pricing.save()

    scores_recompute(model=model)

    with org_context(other_org):
        assert ContactScore.objects.get(contact=their_contact).score == 115
        assert not ScoreLedger.objects.filter(org=other_org, reason="recompute").exists()


def test_the_task_recomputes_one_model(model, scored, pricing):
    ana, _ = scored
    pricing.points = 10
    pricing.save()

    with org_context_none():
        result = scores_recompute_model(model.pk)
    assert result == {"model": "default", "contacts": 2, "changed": 2, "replayed_events": 0}

    assert score_of(model, ana) == 280
    assert scores_recompute_model(0) == {"model": None, "contacts": 0, "changed": 0}


def org_context_none():
    """Tasks run outside any org context; they set their own."""
    from marketing.tenancy import no_org

    return no_org()


def test_recompute_uses_now_for_time_relative_fit_rules(model):
    rule = ScoringRule.objects.create(
        org=model.org,
        model=model,
        name="Recent signup",
        kind=ScoringRule.Kind.FIT,
        condition={"<=": [{"days_since": "created_at"}, 7]},
        points=5,
    )
    fresh = history(model, ContactFactory(org=model.org, created_at=timezone.now()))  # at the base

    scores_recompute(model=model)
    assert score_of(model, fresh) == 105

    scores_recompute(model=model, now=timezone.now() + timezone.timedelta(days=30))
    assert score_of(model, fresh) == 100
    assert rule.points == 5
    assert_ledger_identity(model)


# --- replay: past events through rules that have not scored them -------------------------------


def past_event(contact, type_, *, days_ago=0, at=None):
    return Event.objects.create(
        org=contact.org,
        contact=contact,
        type=type_,
        occurred_at=at or timezone.now() - timedelta(days=days_ago),
        message_id=str(uuid.uuid4()),
    )


def ledger_adds_up(model, contact) -> bool:
    total = ScoreLedger.objects.filter(model=model, contact=contact).aggregate(s=Sum("delta"))["s"] or 0
    return ContactScore.objects.get(model=model, contact=contact).score == model.base + total


def test_a_replay_scores_past_events_for_a_rule_created_after_them(org, model, pricing):
    contact = ContactFactory(org=org)
    events_score(org=org, events=[past_event(contact, "page_viewed", days_ago=20)])  # scored: 115
    webinar = past_event(contact, "webinar_attended", days_ago=10)
    too_old = past_event(contact, "webinar_attended", days_ago=40)
    rule = ScoringRule.objects.create(org=org, model=model, name="Webinar", event_type="webinar_attended", points=40)

    result = scores_replay(model=model, since=timezone.now() - timedelta(days=30))

    assert result == {"model": "default", "events": 2, "contacts": 1}  # the page view and the webinar read
    row = ScoreLedger.objects.get(model=model, rule=rule)
    assert (row.event_id, row.delta, row.at) == (webinar.pk, 40, webinar.occurred_at)
    assert not ScoreLedger.objects.filter(event=too_old).exists()  # before the replay's start
    contact.refresh_from_db()
    assert contact.score == 155 and ledger_adds_up(model, contact)

    again = scores_replay(model=model, since=timezone.now() - timedelta(days=30))
    assert again["contacts"] == 0 and ScoreLedger.objects.filter(model=model).count() == 2


def test_a_replay_counts_caps_in_each_events_own_day(org, model):
    contact = ContactFactory(org=org)
    ScoringRule.objects.create(
        org=org, model=model, name="Docs", event_type="docs_read", points=5, cap_count=2, cap_period="day"
    )
    day = timezone.now().replace(hour=12, minute=0) - timedelta(days=3)
    for minutes in range(4):
        past_event(contact, "docs_read", at=day + timedelta(minutes=minutes))
    past_event(contact, "docs_read", at=day + timedelta(days=1))

    scores_replay(model=model, since=day - timedelta(days=1))

    assert ScoreLedger.objects.filter(model=model, reason="rule").count() == 3  # 2 the first day, 1 the next
    assert ContactScore.objects.get(model=model, contact=contact).score == 115


def test_a_replay_records_crossings_but_hands_nobody_to_sales_for_past_demo_requests(org, model):
    from scoring.models import Handoff

    contact = ContactFactory(org=org)
    past_event(contact, "demo_requested", days_ago=5)
    ScoringRule.objects.create(
        org=org, model=model, name="Demo", event_type="demo_requested", points=250, creates_handoff=True
    )

    scores_replay(model=model, since=timezone.now() - timedelta(days=30))

    assert ContactScore.objects.get(model=model, contact=contact).score == 350
    assert not Handoff.objects.filter(contact=contact).exists()
    crossing = Event.objects.get(type="score_threshold_crossed", contact=contact)
    assert (crossing.properties["threshold"], crossing.properties["direction"]) == ("medium", "up")


def test_a_replay_scores_only_its_model(org, model):
    other = ScoringModel.objects.create(org=org, slug="product", name="Product")
    contact = ContactFactory(org=org)
    past_event(contact, "trial_started", days_ago=2)
    ScoringRule.objects.create(org=org, model=model, name="Trial", event_type="trial_started", points=30)
    ScoringRule.objects.create(org=org, model=other, name="Trial", event_type="trial_started", points=70)

    scores_replay(model=model, since=timezone.now() - timedelta(days=7))

    assert ContactScore.objects.get(model=model, contact=contact).score == 130
    assert not ContactScore.objects.filter(model=other).exists()
