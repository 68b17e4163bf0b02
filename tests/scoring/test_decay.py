"""Decay (scoring/decay.py) and the daily task: who decays, the arithmetic, once per window, the
ledger identity and the mirror on Contact.score. Runs on PostgreSQL (one statement) and SQLite."""

import threading
from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone
from django_scopes import scopes_disabled

from marketing.models import Contact
from marketing.tenancy import org_context
from scoring.decay import scores_decay
from scoring.models import ContactScore, ScoreLedger, ScoringModel
from scoring.tasks import scores_decay_all
from tests.factories import ContactFactory

NOW = timezone.now().replace(microsecond=0)
THRESHOLDS = [{"name": "low", "score": 100}, {"name": "medium", "score": 300}, {"name": "high", "score": 500}]


@pytest.fixture
def model(org):
    return ScoringModel.objects.create(
        org=org, slug="default", name="Default", is_default=True, decay_factor=0.95, thresholds=THRESHOLDS
    )


def scored(model, score, *, idle_days=40, active=True, created_days=400):
    """A contact with ``score`` in ``model`` (one manual row explains it), last active
    ``idle_days`` ago (never, when ``active`` is false) and created ``created_days`` ago."""
    contact = ContactFactory(
        org=model.org,
        created_at=NOW - timedelta(days=created_days),
        last_activity_at=NOW - timedelta(days=idle_days) if active else None,
        score=score if model.is_default else 0,
    )
    ContactScore.objects.create(org=model.org, contact=contact, model=model, score=score)
    if score != model.base:
        ScoreLedger.objects.create(
            org=model.org,
            contact=contact,
            model=model,
            delta=score - model.base,
            score_after=score,
            reason="manual",
            at=NOW - timedelta(days=created_days),
        )
    return contact


def score_of(model, contact) -> int:
    return ContactScore.objects.get(model=model, contact=contact).score


def assert_ledger_identity(model):
    """score = base + Σ delta for every contact scored in the model."""
    for row in ContactScore.objects.filter(model=model):
        total = ScoreLedger.objects.filter(model=model, contact_id=row.contact_id).aggregate(s=Sum("delta"))["s"] or 0
        assert row.score == model.base + total, row.contact_id


def test_decay_touches_only_contacts_inactive_past_the_window(model):
    idle = scored(model, 300, idle_days=31)
    recent = scored(model, 300, idle_days=29)
    never_active_old = scored(model, 300, active=False, created_days=31)
    never_active_new = scored(model, 300, active=False, created_days=10)
    at_base = scored(model, 100, idle_days=90)

    assert scores_decay(model=model, now=NOW) == 2

    assert score_of(model, idle) == 290
    assert score_of(model, never_active_old) == 290
    assert score_of(model, recent) == 300
    assert score_of(model, never_active_new) == 300
    assert score_of(model, at_base) == 100
    decay_rows = ScoreLedger.objects.filter(model=model, reason="decay")
    assert sorted(decay_rows.values_list("contact_id", flat=True)) == sorted([idle.pk, never_active_old.pk])
    assert not ScoreLedger.objects.filter(model=model, reason="decay", contact=at_base).exists()


@pytest.mark.parametrize(
    ("score", "after"),
    [
        (300, 290),  # 200 × 0.95 = 190 exactly
        (119, 118),  # 19 × 0.95 = 18.05 → 18 (toward the base)
        (101, 100),  # 1 × 0.95 = 0.95 → 0: the last point goes too
        (1000, 955),  # 900 × 0.95 = 855
        (50, 53),  # below the base: −50 × 0.95 = −47.5 → −47, up toward the base
        (99, 100),
    ],
)
def test_decay_takes_the_factor_off_the_distance_rounding_toward_base(model, score, after):
    contact = scored(model, score)

    assert scores_decay(model=model, now=NOW) == 1

    assert score_of(model, contact) == after
    row = ScoreLedger.objects.get(model=model, contact=contact, reason="decay")
    assert (row.delta, row.score_after, row.at, row.rule_id, row.event_id) == (after - score, after, NOW, None, None)
    assert_ledger_identity(model)


def test_repeated_decay_converges_to_the_base_and_never_crosses_it(model):
    model.decay_factor = 0.5
    model.save()
    above, below = scored(model, 180), scored(model, 37)
    seen_above, seen_below = [180], [37]
    for window in range(1, 12):
        scores_decay(model=model, now=NOW + timedelta(days=31 * window))
        seen_above.append(score_of(model, above))
        seen_below.append(score_of(model, below))

    assert seen_above[:8] == [180, 140, 120, 110, 105, 102, 101, 100]
    assert seen_below[:8] == [37, 69, 85, 93, 97, 99, 100, 100]
    assert all(s >= 100 for s in seen_above) and all(s <= 100 for s in seen_below)
    assert seen_above[-1] == seen_below[-1] == 100
    # At the base nothing more is written.
    assert ScoreLedger.objects.filter(model=model, reason="decay", contact=above).count() == 7
    assert_ledger_identity(model)


def test_a_second_run_within_the_window_does_nothing(model):
    contact = scored(model, 300, idle_days=100)

    assert scores_decay(model=model, now=NOW) == 1
    assert scores_decay(model=model, now=NOW) == 0
    assert scores_decay(model=model, now=NOW + timedelta(days=29)) == 0
    assert score_of(model, contact) == 290

    assert scores_decay(model=model, now=NOW + timedelta(days=31)) == 1
    assert score_of(model, contact) == 280  # 190 × 0.95 = 180.5 → 180
    assert ScoreLedger.objects.filter(model=model, reason="decay").count() == 2
    assert_ledger_identity(model)


def test_decay_mirrors_the_default_model_on_contact_score_and_updates_the_band(model):
    contact = scored(model, 311)  # 211 × 0.95 = 200.45 → 300, still medium
    assert ContactScore.objects.filter(contact=contact).update(band="medium")

    scores_decay(model=model, now=NOW)

    assert Contact.objects.get(pk=contact.pk).score == 300
    assert ContactScore.objects.get(contact=contact).band == "medium"
    scores_decay(model=model, now=NOW + timedelta(days=31))
    assert Contact.objects.get(pk=contact.pk).score == 290
    assert ContactScore.objects.get(contact=contact).band == "low"


def test_decay_of_another_model_leaves_contact_score_alone(org, model):
    other = ScoringModel.objects.create(org=org, slug="product", name="Product", is_default=False, base=0)
    contact = scored(model, 300)
    ContactScore.objects.create(org=org, contact=contact, model=other, score=200)
    ScoreLedger.objects.create(org=org, contact=contact, model=other, delta=200, score_after=200, reason="manual")

    assert scores_decay(model=other, now=NOW) == 1

    assert score_of(other, contact) == 190
    assert score_of(model, contact) == 300
    assert Contact.objects.get(pk=contact.pk).score == 300
    assert_ledger_identity(other)


@pytest.mark.parametrize("change", [{"active": False}, {"decay_factor": 1.0}, {"decay_window_days": 0}])
def test_a_model_that_does_not_decay(model, change):
    contact = scored(model, 300)
    for field, value in change.items():
        setattr(model, field, value)
    model.save()

    assert scores_decay(model=model, now=NOW) == 0
    assert score_of(model, contact) == 300


def test_the_daily_task_decays_every_model_of_every_org(model, other_org):
    contact = scored(model, 300)
    with org_context(other_org):
        theirs = ScoringModel.objects.create(org=other_org, slug="default", name="Default", is_default=True)
        their_contact = scored(theirs, 500)
    idle_model = ScoringModel.objects.create(org=model.org, slug="idle", name="Idle", active=False)
    ContactScore.objects.create(org=model.org, contact=contact, model=idle_model, score=300)

    assert scores_decay_all() == 2

    with org_context(other_org):
        assert ContactScore.objects.get(model=theirs, contact=their_contact).score == 480
        assert Contact.objects.get(pk=their_contact.pk).score == 480
        assert ScoreLedger.objects.get(contact=their_contact, reason="decay").org_id == other_org.pk
    with scopes_disabled():
        assert ContactScore.objects.get(model=model, contact=contact).score == 290
        assert ContactScore.objects.get(model=idle_model, contact=contact).score == 300


def test_the_daily_job_is_registered():
    from marketing.schedules import SYSTEM_JOBS

    task, seconds, *_ = SYSTEM_JOBS["scoring: decay scores"]
    assert (task, seconds) == ("scoring.tasks.scores_decay_all", 86400)


def test_on_postgresql_decay_is_one_statement(model):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if connection.vendor != "postgresql":
        pytest.skip("the single statement is PostgreSQL's; SQLite runs a few")
    for _ in range(3):
        scored(model, 300)

    with CaptureQueriesContext(connection) as queries:
        assert scores_decay(model=model, now=NOW) == 3

    writes = [q["sql"] for q in queries if "scoring_scoreledger" in q["sql"] or "scoring_contactscore" in q["sql"]]
    assert len(writes) == 1
    assert all(
        part in writes[0]
        for part in ("UPDATE scoring_contactscore", "UPDATE marketing_contact", "INSERT INTO scoring_scoreledger")
    )
    assert_ledger_identity(model)


def test_decay_below_a_threshold_records_the_crossing_once(model):
    from marketing.models import Event

    stays = scored(model, 311, idle_days=90)  # 311 → 300: still medium
    drops = scored(model, 300, idle_days=90)  # 300 → 290: below medium
    month_ago = NOW - timedelta(days=31)

    scores_decay(model=model, now=month_ago)

    crossed = Event.objects.filter(type="score_threshold_crossed")
    assert list(crossed.values_list("contact_id", flat=True)) == [drops.pk]
    props = crossed.get().properties
    assert props["threshold"] == "medium"
    assert props["direction"] == "down"
    assert (props["score"], props["previous_score"]) == (290, 300)
    assert props["model"] == model.slug
    assert props["default_model"] is True
    assert scores_decay(model=model, now=month_ago + timedelta(hours=1)) == 0
    assert crossed.count() == 1
    scores_decay(model=model, now=NOW)  # stays: 300 → 290 now
    assert sorted(crossed.values_list("contact_id", flat=True)) == sorted([drops.pk, stays.pk])


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_parts_decay_at_once_on_their_own_connections(model, settings):
    """PostgreSQL: the contacts split into id ranges over SCORING_DECAY_WORKERS connections, each
    part its own statement and transaction; together every contact decays once, crossings
    included."""
    from django.db import connection

    from marketing.models import Event

    if connection.vendor != "postgresql":
        pytest.skip("parts run on PostgreSQL only; SQLite decays in one transaction")
    settings.SCORING_DECAY_WORKERS = 3
    contacts = [scored(model, 300 + 10 * i) for i in range(10)]  # 300 → 290 crosses "medium"
    seen = []

    import scoring.decay as decay

    original = decay._decay_postgresql

    def spy(params, band_sql, eligible, *, mirror):
        seen.append((params["first"], params["last"], threading.current_thread().name.startswith("scores-decay")))
        return original(params, band_sql, eligible, mirror=mirror)

    decay._decay_postgresql = spy
    try:
        with org_context(model.org):
            assert scores_decay(model=model, now=NOW) == 10
    finally:
        decay._decay_postgresql = original

    ranges = sorted(seen)
    assert len(ranges) == 3 and all(in_thread for _, _, in_thread in ranges)
    assert ranges[0][0] == contacts[0].pk and ranges[-1][1] >= contacts[-1].pk
    assert all(ranges[k][1] + 1 == ranges[k + 1][0] for k in range(2))  # contiguous, disjoint id ranges
    with org_context(model.org):
        for i, contact in enumerate(contacts):
            distance = 200 + 10 * i
            assert score_of(model, contact) == 100 + distance * 19 // 20
            assert Contact.objects.get(pk=contact.pk).score == score_of(model, contact)
        assert ScoreLedger.objects.filter(model=model, reason="decay").count() == 10
        crossed = Event.objects.filter(type="score_threshold_crossed").values_list("contact_id", flat=True)
        assert sorted(crossed) == [contacts[0].pk, contacts[1].pk]  # 300 → 290 and 310 → 299
        assert_ledger_identity(model)
        assert scores_decay(model=model, now=NOW + timedelta(hours=1)) == 0  # once per window, across parts


def test_the_once_per_window_marker_is_the_score_rows_decayed_at(model):
    recent, old = scored(model, 300, idle_days=100), scored(model, 300, idle_days=100)
    ContactScore.objects.filter(contact=recent).update(decayed_at=NOW - timedelta(days=10))
    ContactScore.objects.filter(contact=old).update(decayed_at=NOW - timedelta(days=31))

    assert scores_decay(model=model, now=NOW) == 1

    assert (score_of(model, recent), score_of(model, old)) == (300, 290)
    assert ContactScore.objects.get(contact=old).decayed_at == NOW
    assert ContactScore.objects.get(contact=recent).decayed_at == NOW - timedelta(days=10)


def test_the_migration_dates_each_score_by_its_newest_decay_row(model):
    from importlib import import_module

    from django.db import connection

    backfill = import_module("scoring.migrations.0004_contactscore_decayed_at").BACKFILL
    decayed, never = scored(model, 300, idle_days=100), scored(model, 300, idle_days=100)
    for days in (70, 35):
        ScoreLedger.objects.create(
            org=model.org,
            contact=decayed,
            model=model,
            delta=-10,
            score_after=290,
            reason="decay",
            at=NOW - timedelta(days=days),
        )
    with connection.cursor() as cursor:
        cursor.execute(backfill)

    assert ContactScore.objects.get(contact=decayed).decayed_at == NOW - timedelta(days=35)
    assert ContactScore.objects.get(contact=never).decayed_at is None
