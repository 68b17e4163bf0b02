"""Scoring services (scoring/rules.py): behaviour and fit rules, caps, the clamp, the ledger
identity, idempotency per (event, rule), threshold crossings both ways and what they fire, and
manual adjustments."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db.models import Count, Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketing.models import Contact, Event
from marketing.tenancy import org_context
from scoring.demo import lead_score_model
from scoring.models import ContactScore, Handoff, ScoreLedger, ScoringModel, ScoringRule
from scoring.rules import events_score, score_adjust
from tests.factories import CompanyFactory, ContactFactory

DAY = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
THRESHOLDS = [{"name": "low", "score": 100}, {"name": "medium", "score": 300}, {"name": "high", "score": 500}]


def make_model(org, *, slug="lead", default=True, **fields):
    fields = {"base": 100, "minimum": 0, "maximum": 1000, "thresholds": THRESHOLDS, **fields}
    return ScoringModel.objects.create(org=org, slug=slug, name=slug.title(), is_default=default, **fields)


def make_rule(model, event_type="", points=10, *, kind=ScoringRule.Kind.BEHAVIOUR, **fields):
    return ScoringRule.objects.create(
        org=model.org,
        model=model,
        name=fields.pop("name", f"{event_type or 'fit'} {points:+d}"),
        kind=kind,
        event_type=event_type,
        points=points,
        **fields,
    )


def make_event(contact, type_, properties=None, *, at=None):
    return Event.objects.create(
        org=contact.org,
        contact=contact,
        type=type_,
        properties=properties or {},
        occurred_at=at or DAY,
        message_id=str(uuid.uuid4()),
    )


def score_of(contact, model) -> int:
    return ContactScore.objects.get(contact=contact, model=model).score


def assert_identity(model):
    """score = base + Σ delta for every scored contact, and the mirror holds."""
    for row in ContactScore.objects.filter(model=model).select_related("contact"):
        total = ScoreLedger.objects.filter(contact=row.contact, model=model).aggregate(s=Sum("delta"))["s"] or 0
        assert row.score == model.base + total
        assert model.minimum <= row.score <= model.maximum
        if model.is_default:
            assert row.contact.score == row.score


@pytest.fixture
def model(org):
    return make_model(org)


@pytest.fixture
def contact(org):
    return ContactFactory(org=org, email="ana@example.com", country="BR")


PRICING = {"in": ["/pricing", {"var": ["event.properties.path", ""]}]}


def test_a_behaviour_rule_scores_matching_events_only(org, model, contact):
    rule = make_rule(model, "page_view", 15, condition=PRICING)
    make_rule(model, "email_clicked", 10)
    pricing = make_event(contact, "page_view", {"path": "/pricing/teams"})
    blog = make_event(contact, "page_view", {"path": "/blog/x"})

    changed = events_score(org=org, events=[pricing, blog])

    assert changed == {contact.pk}
    assert score_of(contact, model) == 115
    contact.refresh_from_db()
    assert contact.score == 115  # the default model is mirrored
    [row] = ScoreLedger.objects.filter(contact=contact)
    assert (row.rule, row.event, row.delta, row.score_after, row.reason) == (rule, pricing, 15, 115, "rule")
    assert row.at == pricing.occurred_at


def test_a_behaviour_rule_may_read_the_contact_as_well_as_the_event(org, model, contact):
    in_brazil = {"and": [PRICING, {"==": [{"var": "country"}, "BR"]}]}
    make_rule(model, "page_view", 15, condition=in_brazil)
    elsewhere = ContactFactory(org=org, country="US")

    changed = events_score(
        org=org,
        events=[
            make_event(contact, "page_view", {"path": "/pricing"}),
            make_event(elsewhere, "page_view", {"path": "/pricing"}),
        ],
    )

    assert changed == {contact.pk, elsewhere.pk}  # both are scored: a first score starts at the base
    assert (score_of(contact, model), score_of(elsewhere, model)) == (115, 100)


def test_rules_that_read_only_the_event_do_not_load_its_contact(org, model, contact):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    make_rule(model, "page_view", 15, condition=PRICING)
    events_score(org=org, events=[make_event(contact, "page_view", {"path": "/pricing"})])  # the first score

    with CaptureQueriesContext(connection) as queries:
        events_score(org=org, events=[make_event(contact, "page_view", {"path": "/pricing"})])

    assert score_of(contact, model) == 130
    assert not [q["sql"] for q in queries if '"marketing_contact"."email"' in q["sql"]]


def test_an_event_whose_contact_is_gone_scores_nothing(org, model, contact):
    make_rule(model, "email_clicked", 10)
    event = make_event(contact, "email_clicked")
    Contact.objects.filter(pk=contact.pk).delete()  # merged away after the batch was read

    assert events_score(org=org, events=[event]) == set()
    assert not ContactScore.objects.filter(model=model).exists()


def test_fit_rules_count_once_when_a_contact_is_first_scored(org, model):
    company = CompanyFactory(org=org, size=120, industry="software")
    lead = ContactFactory(org=org, job_title="VP Marketing", company=company, country="US")
    senior = make_rule(
        model, points=30, kind="fit", condition={"in": ["VP", {"var": ["job_title", ""]}]}, name="senior"
    )
    make_rule(model, points=20, kind="fit", condition={">=": [{"var": "company.size"}, 50]}, name="big")
    make_rule(model, points=5, kind="fit", condition={"==": [{"var": "country"}, "DE"]}, name="german")
    make_rule(model, "email_clicked", 10)

    events_score(org=org, events=[make_event(lead, "email_clicked")])
    events_score(org=org, events=[make_event(lead, "email_clicked")])

    assert score_of(lead, model) == 100 + 30 + 20 + 10 + 10
    fit_rows = ScoreLedger.objects.filter(contact=lead, reason="fit")
    assert sorted(fit_rows.values_list("rule__name", flat=True)) == ["big", "senior"]
    assert fit_rows.get(rule=senior).event is None
    assert_identity(model)


def test_caps_count_ledger_rows_per_contact_in_the_calendar_period(org, model, contact):
    rule = make_rule(model, "page_view", 15, condition=PRICING, cap_count=3, cap_period="day")
    other = ContactFactory(org=org)
    first = [make_event(contact, "page_view", {"path": "/pricing"}, at=DAY + timedelta(minutes=i)) for i in range(2)]
    events_score(org=org, events=first)
    later = [make_event(contact, "page_view", {"path": "/pricing"}, at=DAY + timedelta(hours=i + 1)) for i in range(3)]
    later.append(make_event(other, "page_view", {"path": "/pricing"}))
    events_score(org=org, events=later)
    assert ScoreLedger.objects.filter(rule=rule, contact=contact).count() == 3  # 2 + 1 of the second batch
    assert score_of(contact, model) == 145
    assert score_of(other, model) == 115  # another contact has its own cap

    next_day = make_event(contact, "page_view", {"path": "/pricing"}, at=DAY + timedelta(days=1))
    events_score(org=org, events=[next_day])
    assert score_of(contact, model) == 160
    assert_identity(model)


def test_weekly_and_monthly_caps(org, model, contact):
    make_rule(model, "webinar_attended", 40, cap_count=1, cap_period="week", name="webinar")
    make_rule(model, "newsletter_read", 5, cap_count=2, cap_period="month", name="newsletter")
    monday = datetime(2026, 11, 16, 8, tzinfo=UTC)
    events = [make_event(contact, "webinar_attended", at=monday + timedelta(days=d)) for d in (0, 3, 7)]
    events += [make_event(contact, "newsletter_read", at=monday + timedelta(days=d)) for d in (0, 1, 2, 20)]
    events_score(org=org, events=sorted(events, key=lambda e: e.occurred_at))
    rows = ScoreLedger.objects.filter(contact=contact, reason="rule")
    assert rows.filter(rule__name="webinar").count() == 2  # weeks of Nov 16 and Nov 23
    assert rows.filter(rule__name="newsletter").count() == 3  # two in November, one in December
    assert_identity(model)


def test_the_clamp_to_the_maximum_is_a_cap_row(org, contact):
    model = make_model(org, maximum=200)
    make_rule(model, "trial_started", 150)
    event = make_event(contact, "trial_started")
    events_score(org=org, events=[event])

    rule_row, cap_row = ScoreLedger.objects.filter(contact=contact).order_by("id")
    assert (rule_row.delta, rule_row.score_after) == (150, 250)
    assert (cap_row.reason, cap_row.delta, cap_row.score_after, cap_row.event, cap_row.rule) == (
        "cap",
        -50,
        200,
        event,
        None,
    )
    assert score_of(contact, model) == 200
    assert_identity(model)


def test_the_clamp_to_the_minimum_is_a_cap_row(org, model, contact):
    make_rule(model, "unsubscribed", -50)
    events_score(org=org, events=[make_event(contact, "unsubscribed", at=DAY + timedelta(minutes=i)) for i in range(3)])
    assert score_of(contact, model) == 0
    assert list(ScoreLedger.objects.filter(contact=contact, reason="cap").values_list("delta", flat=True)) == [50]
    assert_identity(model)


def test_a_redelivered_batch_adds_nothing(org, model, contact):
    make_rule(model, "page_view", 15, condition=PRICING)
    make_rule(model, "demo_requested", 100, creates_handoff=True)
    events = [make_event(contact, "page_view", {"path": "/pricing"}), make_event(contact, "demo_requested")]
    assert events_score(org=org, events=events) == {contact.pk}
    rows = ScoreLedger.objects.count()

    assert events_score(org=org, events=events) == set()
    assert ScoreLedger.objects.count() == rows
    assert score_of(contact, model) == 215
    assert Handoff.objects.filter(contact=contact).count() == 1
    assert Event.objects.filter(type="score_threshold_crossed").count() == 0  # 215: still "low"
    assert_identity(model)


def test_machine_opens_score_nothing_unless_a_rule_names_their_type(org, model, contact):
    opened = make_rule(model, "email_opened", 2, name="open")
    human = make_event(contact, "email_opened")
    machine = make_event(contact, "email_opened_machine")
    events_score(org=org, events=[human, machine])
    assert list(ScoreLedger.objects.filter(rule=opened).values_list("event", flat=True)) == [human.pk]

    make_rule(model, "email_opened_machine", 1, name="scanner")
    again = make_event(contact, "email_opened_machine")
    events_score(org=org, events=[again])
    assert list(ScoreLedger.objects.filter(event=again).values_list("rule__name", flat=True)) == ["scanner"]


def test_only_the_default_model_is_mirrored_on_the_contact(org, model, contact):
    other = make_model(org, slug="product", default=False, base=0)
    make_rule(model, "email_clicked", 10)
    make_rule(other, "email_clicked", 7)
    events_score(org=org, events=[make_event(contact, "email_clicked")])
    contact.refresh_from_db()
    assert (contact.score, score_of(contact, model), score_of(contact, other)) == (110, 110, 7)


def test_inactive_models_and_rules_score_nothing(org, model, contact):
    make_rule(model, "email_clicked", 10, active=False)
    dormant = make_model(org, slug="old", default=False, active=False)
    make_rule(dormant, "email_clicked", 10)
    assert events_score(org=org, events=[make_event(contact, "email_clicked")]) == set()
    assert not ContactScore.objects.exists()


def test_crossing_thresholds_records_one_event_per_crossing_both_ways(org, model, contact):
    make_rule(model, "trial_started", 450)
    make_rule(model, "unsubscribed", -250)
    up = [make_event(contact, "trial_started")]
    events_score(org=org, events=up)
    crossed = Event.objects.filter(type="score_threshold_crossed", contact=contact)
    assert sorted((e.properties["threshold"], e.properties["direction"]) for e in crossed) == [
        ("high", "up"),
        ("medium", "up"),
    ]
    assert crossed.get(properties__threshold="high").properties == {
        "model": "lead",
        "default_model": True,
        "threshold": "high",
        "direction": "up",
        "score": 550,
        "previous_score": 100,
    }

    down = [make_event(contact, "unsubscribed", at=DAY + timedelta(hours=1))]
    events_score(org=org, events=down)
    events_score(org=org, events=down)  # redelivered: nothing new
    downs = Event.objects.filter(type="score_threshold_crossed", properties__direction="down")
    assert [e.properties["threshold"] for e in downs] == ["high"]  # 550 → 300: still medium
    assert Event.objects.filter(type="score_threshold_crossed").count() == 3
    assert ContactScore.objects.get(contact=contact).band == "medium"


def test_an_upward_crossing_runs_the_thresholds_actions(org, contact):
    from workflows.services import workflow_create, workflow_publish

    steps = [{"id": "a", "type": "action", "action": "log", "config": {"message": "hot"}, "next": None}]
    workflow = workflow_create(
        org=org, name="Hot", slug="hot", definition={"trigger": {"type": "manual"}, "steps": steps}
    )
    workflow_publish(workflow=workflow)
    workflow.refresh_from_db()
    thresholds = [
        {"name": "low", "score": 100},
        {"name": "high", "score": 500, "actions": [{"type": "handoff"}, {"type": "enrol", "workflow": workflow.slug}]},
    ]
    model = make_model(org, thresholds=thresholds)
    make_rule(model, "trial_started", 450)
    make_rule(model, "unsubscribed", -100)
    events_score(org=org, events=[make_event(contact, "trial_started")])

    handoff = Handoff.objects.get(contact=contact)
    assert (handoff.reason, handoff.score, handoff.detail, handoff.model) == ("threshold", 550, "high", model)
    from workflows.models import WorkflowInstance

    assert WorkflowInstance.objects.filter(workflow=workflow, contact=contact).count() == 1
    events_score(org=org, events=[make_event(contact, "unsubscribed", at=DAY + timedelta(hours=1))])
    assert WorkflowInstance.objects.filter(workflow=workflow, contact=contact).count() == 1  # down fires nothing


def test_the_default_models_demo_requested_rule_creates_a_handoff(org, contact):
    model = lead_score_model(org=org)
    rule = model.rules.get(event_type="demo_requested")
    assert rule.creates_handoff and rule.kind == "behaviour"
    event = make_event(contact, "demo_requested")
    events_score(org=org, events=[event])
    handoff = Handoff.objects.get(contact=contact)
    assert (handoff.reason, handoff.source_event, handoff.model) == ("demo_request", event, model)
    assert handoff.score == score_of(contact, model) == 100 + 100  # base and the demo; no fit (Brazil, no title)


def test_the_demo_rules_follow_the_issue(org, contact):
    model = lead_score_model(org=org)
    lead_score_model(org=org)  # idempotent
    assert (model.base, model.maximum, model.decay_factor, model.decay_window_days) == (100, 1000, 0.95, 30)
    assert [(t["name"], t["score"]) for t in model.thresholds] == [("low", 100), ("medium", 300), ("high", 500)]
    assert model.rules.count() == len({r.name for r in model.rules.all()}) == 22
    events = [
        make_event(contact, "page_view", {"path": "/"}, at=DAY),
        make_event(contact, "page_view", {"path": "/pricing"}, at=DAY + timedelta(minutes=1)),
        make_event(contact, "form_submitted", {"form": "newsletter"}, at=DAY + timedelta(minutes=2)),
        make_event(contact, "content_downloaded", {"kind": "webinar"}, at=DAY + timedelta(minutes=3)),
        make_event(contact, "email_opened_machine", at=DAY + timedelta(minutes=4)),
    ]
    events_score(org=org, events=events)
    assert score_of(contact, model) == 100 + 5 + 15 + 20 + 40  # no fit points (Brazil, no title); no machine open


def test_score_adjust_writes_a_manual_row_clamped_with_a_cap_row(org, model, contact, marketer):
    row = score_adjust(org=org, contact=contact, delta=25, note="met at the fair", actor=marketer)
    assert row.score == 125
    manual = ScoreLedger.objects.get(reason="manual")
    assert (manual.delta, manual.note, manual.actor) == (25, "met at the fair", marketer)
    score_adjust(org=org, contact=contact, delta=5000, note="")
    assert score_of(contact, model) == 1000
    assert ScoreLedger.objects.get(reason="cap").delta == 1000 - 5125
    assert Event.objects.filter(type="score_threshold_crossed", properties__direction="up").count() == 2
    assert_identity(model)


def test_score_adjust_needs_a_model_of_the_org(org, other_org, contact):
    with pytest.raises(ValidationError):
        score_adjust(org=org, contact=contact, delta=5, note="")
    with org_context(other_org):
        theirs = ScoringModel.objects.create(org=other_org, slug="x", name="x", is_default=True)
    with pytest.raises(ValidationError):
        score_adjust(org=org, contact=contact, model=theirs, delta=5, note="")


TYPES = ["page_view", "email_clicked", "unsubscribed", "trial_started"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 2), st.sampled_from([*TYPES, "adjust"]), st.integers(0, 72), st.integers(-400, 400)),
        min_size=1,
        max_size=25,
    ),
    batch=st.integers(1, 6),
)
def test_the_ledger_always_adds_up(org, steps, batch):
    """Whatever happens, in whatever batches (some delivered twice): base + Σ delta == score."""
    ScoringModel.objects.all().delete()
    Contact.objects.all().delete()
    model = make_model(org, maximum=600, thresholds=THRESHOLDS)
    make_rule(model, "page_view", 15, condition=PRICING, cap_count=2, cap_period="day")
    make_rule(model, "page_view", 3)
    make_rule(model, "email_clicked", 10)
    make_rule(model, "unsubscribed", -50)
    make_rule(model, "trial_started", 200)
    make_rule(model, points=20, kind="fit", condition={"==": [{"var": "country"}, "DE"]})
    contacts = [ContactFactory(org=org, country=c) for c in ("DE", "US", "DE")]
    pending = []
    for who, kind, hours, points in steps:
        if kind == "adjust":
            score_adjust(org=org, contact=contacts[who], delta=points, note="")
            continue
        pending.append(make_event(contacts[who], kind, {"path": "/pricing"}, at=DAY + timedelta(hours=hours)))
        if len(pending) >= batch:
            pending.sort(key=lambda e: (e.contact_id, e.occurred_at, e.pk))
            events_score(org=org, events=pending)
            events_score(org=org, events=pending[: len(pending) // 2])  # partly redelivered
            pending = []
    if pending:
        events_score(org=org, events=sorted(pending, key=lambda e: (e.contact_id, e.occurred_at, e.pk)))
    assert_identity(model)
    for rule in ScoringRule.objects.filter(kind="behaviour"):
        events_with_two = ScoreLedger.objects.filter(rule=rule).values("event").annotate(n=Count("id")).filter(n__gt=1)
        assert not events_with_two.exists()


# --- the workflow side: the adjust_score action and the score_threshold trigger --------------------


def _workflow(org, steps, *, trigger=None, slug="wf"):
    from workflows.services import workflow_create, workflow_publish

    definition = {"trigger": trigger or {"type": "manual"}, "steps": steps}
    workflow = workflow_create(org=org, name=slug, slug=slug, definition=definition)
    workflow_publish(workflow=workflow)
    workflow.refresh_from_db()
    return workflow


ADJUST = [{"id": "bump", "type": "action", "action": "adjust_score", "config": {"points": 450, "note": "webinar"}}]


def test_the_adjust_score_action_writes_once_in_the_engines_transaction(org, model, contact):
    from workflows.engine import instances_advance_due
    from workflows.models import WorkflowInstance
    from workflows.services import workflow_enrol_manually

    workflow = _workflow(org, [{**ADJUST[0], "next": None}])
    workflow_enrol_manually(workflow=workflow, contact_ids=[contact.pk])
    instances_advance_due()
    instances_advance_due()

    row = ScoreLedger.objects.get(contact=contact)
    assert (row.reason, row.delta, row.note) == ("manual", 450, "webinar")
    assert score_of(contact, model) == 550
    assert WorkflowInstance.objects.get(workflow=workflow).status == "completed"
    assert Event.objects.filter(type="score_threshold_crossed", properties__threshold="high").count() == 1


def test_adjust_score_is_checked_at_save_and_previewed_in_a_dry_run(org, model, contact):
    from workflows.dry_run import workflow_dry_run
    from workflows.services import workflow_create

    steps = [{**ADJUST[0], "config": {"points": 5, "model": "nope"}, "next": None}]
    with pytest.raises(ValidationError, match="no scoring model “nope”"):
        workflow_create(org=org, name="bad", slug="bad", definition={"trigger": {"type": "manual"}, "steps": steps})

    workflow = _workflow(org, [{**ADJUST[0], "next": None}], slug="ok")
    result = workflow_dry_run(workflow=workflow, contact=contact)
    previews = json.dumps(result)
    assert '"score_after": 550' in previews and '"score_before": 100' in previews
    assert not ScoreLedger.objects.exists()


def test_the_score_threshold_trigger_enrols_on_an_upward_crossing(
    org, model, contact, django_capture_on_commit_callbacks
):
    from workflows.models import WorkflowInstance

    log = [{"id": "a", "type": "action", "action": "log", "config": {"message": "hot"}, "next": None}]
    workflow = _workflow(org, log, trigger={"type": "score_threshold", "threshold": "high"}, slug="hot")
    down = _workflow(
        org, log, trigger={"type": "score_threshold", "threshold": "high", "direction": "down"}, slug="cold"
    )
    make_rule(model, "trial_started", 450)
    with django_capture_on_commit_callbacks(execute=True):
        events_score(org=org, events=[make_event(contact, "trial_started")])
    from marketing.dispatch import dispatch_batch_run
    from marketing.models import DispatchBatch

    for batch in DispatchBatch.objects.filter(status="pending"):
        dispatch_batch_run(batch_id=batch.pk)
    assert WorkflowInstance.objects.filter(workflow=workflow, contact=contact).count() == 1
    assert not WorkflowInstance.objects.filter(workflow=down).exists()


def test_the_score_threshold_trigger_follows_direction_and_model_and_is_checked_at_save(
    org, model, contact, django_capture_on_commit_callbacks
):
    from marketing.dispatch import dispatch_batch_run
    from marketing.models import DispatchBatch
    from workflows.models import WorkflowInstance
    from workflows.services import workflow_create

    log = [{"id": "a", "type": "action", "action": "log", "config": {"message": "x"}, "next": None}]
    high = {"type": "score_threshold", "threshold": "high"}
    cold = _workflow(org, log, trigger={**high, "direction": "down"}, slug="cold")
    either = _workflow(org, log, trigger={**high, "direction": "either", "model": "lead"}, slug="either")
    make_model(org, slug="other", default=False)
    elsewhere = _workflow(org, log, trigger={**high, "direction": "either", "model": "other"}, slug="elsewhere")

    def run(*events):
        with django_capture_on_commit_callbacks(execute=True):
            events_score(org=org, events=list(events))
        for batch in DispatchBatch.objects.filter(status="pending"):
            dispatch_batch_run(batch_id=batch.pk)

    make_rule(model, "trial_started", 450)
    make_rule(model, "unsubscribed", -300)
    run(make_event(contact, "trial_started"))  # 100 → 550: up through "high"
    run(make_event(contact, "unsubscribed", at=DAY + timedelta(hours=1)))  # 550 → 250: down through it

    assert WorkflowInstance.objects.filter(workflow=cold, contact=contact).count() == 1
    assert WorkflowInstance.objects.filter(workflow=either, contact=contact).count() == 1  # up; re-enrol: never
    assert not WorkflowInstance.objects.filter(workflow=elsewhere).exists()  # another model's threshold
    with pytest.raises(ValidationError, match="has no threshold “nope”"):
        workflow_create(
            org=org,
            name="bad",
            slug="bad",
            definition={"trigger": {"type": "score_threshold", "threshold": "nope"}, "steps": log},
        )


def test_an_event_listed_twice_in_a_batch_scores_once(org, model, contact):
    make_rule(model, "email_clicked", 10)
    event = make_event(contact, "email_clicked")
    events_score(org=org, events=[event, event])
    assert score_of(contact, model) == 110


def test_a_notify_action_posts_its_slack_template_once_per_crossing(org, contact, caplog):
    from channels_app.models import Destination, Message, MessageTemplate
    from channels_app.template_versions import template_publish

    Destination.objects.create(org=org, slug="sales", name="Sales", channel="slack", url="https://hooks.slack.test/x")
    template = MessageTemplate.objects.create(
        org=org,
        slug="new-mql",
        name="New MQL",
        channel="slack",
        purpose="transactional",
        variants=[{"name": "A", "weight": 1, "text": "Hot lead: {{ email }}"}],
    )
    template_publish(template=template)
    notify = {"type": "notify", "template": "new-mql", "destination": "sales"}
    thresholds = [
        {"name": "medium", "score": 300, "actions": [{"type": "notify", "template": "missing", "destination": "x"}]},
        {"name": "high", "score": 500, "actions": [notify]},
    ]
    model = make_model(org, thresholds=thresholds)
    make_rule(model, "trial_started", 450)
    event = make_event(contact, "trial_started")
    import logging

    with caplog.at_level(logging.INFO, logger="scoring.rules"):
        events_score(org=org, events=[event])
        events_score(org=org, events=[event])
    [message] = Message.objects.filter(contact=contact)
    assert (message.to, message.template_version.template) == ("sales", template)
    assert "Hot lead: ana@example.com" in json.dumps(message.content)
    assert "threshold notify not configured" in caplog.text  # the medium threshold's unknown template


def test_a_model_without_a_rule_for_the_event_does_not_score_the_contact(org, model, contact):
    other = make_model(org, slug="product", default=False)
    make_rule(other, points=50, kind="fit")
    make_rule(model, "email_clicked", 10)
    events_score(org=org, events=[make_event(contact, "email_clicked")])
    assert not ContactScore.objects.filter(model=other).exists()
    assert score_of(contact, model) == 110
