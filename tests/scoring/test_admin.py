"""Console pages of scoring (scoring/admin.py): models with their rules inline (conditions checked,
errors on their fields), scores with their breakdown, the read-only ledger, and roles."""

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from marketing.models import Role
from scoring.models import ScoreLedger, ScoringModel, ScoringRule
from scoring.rules import events_score, score_adjust
from tests.factories import ContactFactory
from tests.scoring.test_rules import PRICING, make_event, make_model, make_rule


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin_console(org, member_factory):
    return client_for(member_factory(org, Role.ADMIN, username="ada"))


@pytest.fixture
def scored(org):
    model = make_model(org)
    make_rule(model, "page_view", 15, condition=PRICING, name="Pricing page")
    contact = ContactFactory(org=org, email="ana@example.com")
    events_score(org=org, events=[make_event(contact, "page_view", {"path": "/pricing"})])
    score_adjust(org=org, contact=contact, delta=7, note="met at the fair")
    return model, contact


def model_form(name="Lead score", slug="lead", rules=(), **fields):
    data = {
        "name": name,
        "slug": slug,
        "is_default": "on",
        "active": "on",
        "base": 100,
        "minimum": 0,
        "maximum": 1000,
        "decay_factor": 0.95,
        "decay_window_days": 30,
        "thresholds": json.dumps([{"name": "low", "score": 100}, {"name": "high", "score": 500}]),
        "rules-TOTAL_FORMS": len(rules),
        "rules-INITIAL_FORMS": 0,
        "rules-MIN_NUM_FORMS": 0,
        "rules-MAX_NUM_FORMS": 1000,
        **fields,
    }
    for index, rule in enumerate(rules):
        rule = {"kind": "behaviour", "active": "on", "condition": "null", **rule}
        data.update({f"rules-{index}-{key}": value for key, value in rule.items()})
    return data


def test_a_model_is_saved_with_its_rules(org, admin_console):
    rules = [
        {"name": "Pricing", "event_type": "page_view", "condition": json.dumps(PRICING), "points": 15},
        {"name": "Capped", "event_type": "email_clicked", "points": 10, "cap_count": 3, "cap_period": "day"},
        {"name": "Senior", "kind": "fit", "condition": json.dumps({"in": ["VP", {"var": "job_title"}]}), "points": 30},
    ]
    response = admin_console.post(reverse("admin:scoring_scoringmodel_add"), model_form(rules=rules))
    assert response.status_code == 302, response.content.decode()[:3000]
    model = ScoringModel.objects.get()
    assert model.org == org and model.is_default
    assert sorted(model.rules.values_list("name", "org_id")) == [
        ("Capped", org.pk),
        ("Pricing", org.pk),
        ("Senior", org.pk),
    ]


def test_a_broken_condition_is_refused_on_its_field(org, admin_console):
    rules = [
        {"name": "Bad", "event_type": "page_view", "points": 5, "condition": json.dumps({"nope": [1]})},
        {"name": "Fit with event", "kind": "fit", "points": 5, "condition": json.dumps({"var": "event.type"})},
        {"name": "No type", "points": 5},
        {"name": "Half cap", "event_type": "x", "points": 5, "cap_count": 3},
    ]
    page = admin_console.post(reverse("admin:scoring_scoringmodel_add"), model_form(rules=rules)).content.decode()
    assert "Unknown operator “nope”" in page
    assert "A fit rule has no event" in page
    assert "A behaviour rule needs the event type" in page
    assert "A cap needs both a count and a period" in page
    assert not ScoringModel.objects.exists()


def test_thresholds_and_range_are_checked(org, admin_console):
    thresholds = json.dumps([{"name": "high", "score": 500}, {"name": "low", "score": 100, "actions": [{"type": "x"}]}])
    page = admin_console.post(
        reverse("admin:scoring_scoringmodel_add"), model_form(thresholds=thresholds, base=2000)
    ).content.decode()
    assert "thresholds go lowest first" in page
    assert "Row 2, action: one of" in page
    assert "The base must lie between" in page
    assert not ScoringModel.objects.exists()


def test_every_scoring_page_loads_for_an_admin(org, admin_console, scored):
    model, contact = scored
    rule = model.rules.get()
    score = contact.scores.get()
    pages = [
        reverse("admin:scoring_scoringmodel_changelist"),
        reverse("admin:scoring_scoringmodel_changelist") + "?q=lead",
        reverse("admin:scoring_scoringmodel_change", args=[model.pk]),
        reverse("admin:scoring_scoringmodel_add"),
        reverse("admin:scoring_scoringrule_changelist") + "?kind=behaviour",
        reverse("admin:scoring_scoringrule_change", args=[rule.pk]),
        reverse("admin:scoring_contactscore_changelist") + "?q=ana",
        reverse("admin:scoring_contactscore_change", args=[score.pk]),
        reverse("admin:scoring_scoreledger_changelist") + f"?reason=manual&model__id__exact={model.pk}",
        reverse("admin:scoring_scoreledger_changelist") + f"?rule__id__exact={rule.pk}",
    ]
    for page in pages:
        assert admin_console.get(page).status_code == 200, page


def test_the_score_page_shows_the_breakdown(org, admin_console, scored):
    _model, contact = scored
    page = admin_console.get(reverse("admin:scoring_contactscore_change", args=[contact.scores.get().pk]))
    text = page.content.decode()
    assert "Pricing page" in text and "+15" in text and "+7" in text
    assert "<strong>122</strong>" in text  # base 100 + 15 + 7
    assert "page_view at" in text


def test_the_ledger_is_read_only(org, admin_console, scored):
    row = ScoreLedger.objects.filter(reason="manual").get()
    assert admin_console.get(reverse("admin:scoring_scoreledger_add")).status_code == 403
    response = admin_console.post(reverse("admin:scoring_scoreledger_change", args=[row.pk]), {"delta": 1000})
    assert response.status_code == 403
    row.refresh_from_db()
    assert row.delta == 7


def test_roles(org, member_factory, scored):
    model, _contact = scored
    compliance = client_for(member_factory(org, Role.COMPLIANCE, username="cora"))
    for name in ("scoringmodel", "scoringrule", "contactscore", "scoreledger"):
        assert compliance.get(reverse(f"admin:scoring_{name}_changelist")).status_code == 403
    sales = client_for(member_factory(org, Role.SALES, username="sam"))
    assert sales.get(reverse("admin:scoring_contactscore_changelist")).status_code == 200
    assert sales.get(reverse("admin:scoring_scoringmodel_add")).status_code == 403
    analyst = client_for(member_factory(org, Role.ANALYST, username="ann"))
    assert analyst.get(reverse("admin:scoring_scoreledger_changelist")).status_code == 200
    response = analyst.post(reverse("admin:scoring_scoringmodel_change", args=[model.pk]), model_form(name="Hacked"))
    assert response.status_code == 403
    assert ScoringModel.objects.get().name == "Lead"


def test_another_orgs_model_is_not_shown(org, other_org, admin_console):
    from marketing.tenancy import org_context

    with org_context(other_org):
        theirs = make_model(other_org, slug="theirs")
    response = admin_console.get(reverse("admin:scoring_scoringmodel_change", args=[theirs.pk]))
    assert response.status_code == 302  # the admin's "does not exist" redirect
    assert "Theirs" not in admin_console.get(reverse("admin:scoring_scoringmodel_changelist")).content.decode()


def test_score_changes_are_on_the_contacts_timeline(org, admin_console, scored):
    _model, contact = scored
    page = admin_console.get(reverse("admin:marketing_contact_timeline", args=[contact.pk])).content.decode()
    assert "Score +15 → 115 (Lead)" in page
    assert "Score +7 → 122 (Lead)" in page and "met at the fair" in page


def test_the_timelines_running_totals_add_up_to_the_score_from_the_base(org, admin_console):
    model = make_model(org)
    make_rule(model, "page_view", 15, condition=PRICING, name="Pricing page")
    contact = ContactFactory(org=org, email="ana@example.com")
    score_adjust(org=org, contact=contact, delta=7, note="met at the fair")  # now
    # An event of yesterday scored after it (it arrived late): its ledger row is dated at the event.
    late = make_event(contact, "page_view", {"path": "/pricing"}, at=timezone.now() - timedelta(days=1))
    events_score(org=org, events=[late])
    contact.refresh_from_db()
    assert contact.score == 122

    page = admin_console.get(reverse("admin:marketing_contact_timeline", args=[contact.pk])).content.decode()
    newest, older, base = page.index("Score +7 → 122"), page.index("Score +15 → 115"), page.index("Score starts at 100")
    assert newest < older < base  # newest first: read upwards, the totals add up to the score


def test_the_recompute_action_brings_scores_in_step_after_a_rule_changed(
    org, admin_console, scored, eager_tasks, django_capture_on_commit_callbacks
):
    model, contact = scored
    ScoringRule.objects.filter(model=model).update(points=40)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_console.post(
            reverse("admin:scoring_scoringmodel_changelist"), {"action": "recompute", "_selected_action": [model.pk]}
        )
    assert response.status_code == 302
    assert contact.scores.get().score == 100 + 40 + 7
    assert ScoreLedger.objects.filter(reason="recompute").count() == 1


def test_the_replay_action_scores_past_events_with_a_new_rule(
    org, admin_console, scored, eager_tasks, django_capture_on_commit_callbacks, member_factory
):
    from datetime import timedelta

    from django.utils import timezone

    model, contact = scored
    make_event(contact, "webinar_attended", at=timezone.now() - timedelta(days=3))
    make_event(contact, "webinar_attended", at=timezone.now() - timedelta(days=45))  # past the action's 30 days
    make_rule(model, "webinar_attended", 40, name="Webinar")
    changelist = reverse("admin:scoring_scoringmodel_changelist")
    analyst = client_for(member_factory(org, Role.ANALYST, username="ann"))
    with django_capture_on_commit_callbacks(execute=True):
        analyst.post(changelist, {"action": "replay_and_recompute", "_selected_action": [model.pk]})
    assert contact.scores.get().score == 100 + 15 + 7  # an analyst may not start it

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_console.post(changelist, {"action": "replay_and_recompute", "_selected_action": [model.pk]})
    assert response.status_code == 302
    assert contact.scores.get().score == 100 + 15 + 7 + 40
    assert ScoreLedger.objects.filter(rule__name="Webinar").count() == 1


def test_predictive_models_show_their_metrics_and_can_be_deactivated_by_an_admin(org, admin_console, member_factory):
    from scoring.models import PredictiveModel

    trained = PredictiveModel.objects.create(
        org=org,
        version=1,
        algorithm="logistic_regression",
        artifact=b"",
        metrics={"auc": 0.8871, "precision": 0.7, "recall": 0.6, "test_rows": 150},
        importances=[{"feature": "email_clicked_30d", "importance": 0.12}],
    )
    changelist = reverse("admin:scoring_predictivemodel_changelist")

    page = admin_console.get(reverse("admin:scoring_predictivemodel_change", args=[trained.pk]))
    assert page.status_code == 200
    assert b"0.8871" in page.content and b"email_clicked_30d" in page.content
    analyst = client_for(member_factory(org, Role.ANALYST, username="ann"))
    analyst.post(changelist, {"action": "deactivate", "_selected_action": [trained.pk]})
    trained.refresh_from_db()
    assert trained.active  # an analyst may look, not switch models off

    admin_console.post(changelist, {"action": "deactivate", "_selected_action": [trained.pk]})
    trained.refresh_from_db()
    assert not trained.active
