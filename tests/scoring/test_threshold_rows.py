"""The scoring pages as forms (scoring/threshold_rows.py, scoring/admin.py): thresholds as rows
(name, minimum score, actions) with what the rows cannot show kept, errors in the rows' words,
the rule's points and caps as numbers with their errors on the field, and the rule builder's
config on the rule and model pages."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from marketing.models import Role
from scoring.models import ScoringModel, ScoringRule
from tests.scoring.test_admin import model_form


@pytest.fixture
def admin_console(org, member_factory):
    client = Client()
    client.force_login(member_factory(org, Role.ADMIN, username="ada"))
    return client


def rows(*items, blank=2) -> dict:
    """The thresholds' rows as the page posts them (``items``: dicts of the row's inputs)."""
    data = {"thresholds-rows": len(items) + blank}
    for index, item in enumerate(items):
        data.update({f"thresholds-{index}-{key}": value for key, value in item.items()})
    return data


def model_rows(*items, **fields) -> dict:
    data = model_form(**fields)
    del data["thresholds"]
    return {**data, **rows(*items)}


def test_thresholds_are_saved_from_rows_in_score_order(org, admin_console):
    data = model_rows(
        {"name": "hot", "score": "500", "handoff": "on", "workflow": "sales-ready"},
        {"name": "warm", "score": "100"},
        {"name": "", "score": ""},  # an empty row is no threshold
    )
    response = admin_console.post(reverse("admin:scoring_scoringmodel_add"), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert ScoringModel.objects.get().thresholds == [
        {"name": "warm", "score": 100},
        {"name": "hot", "score": 500, "actions": [{"type": "handoff"}, {"type": "enrol", "workflow": "sales-ready"}]},
    ]


def test_what_the_rows_cannot_show_survives_a_save(org, admin_console):
    thresholds = [
        {"name": "low", "score": 100, "colour": "grey"},
        {"name": "high", "score": 500, "actions": [{"type": "notify", "template": "mql", "destination": "sales"}]},
    ]
    model = ScoringModel.objects.create(org=org, name="Lead", slug="lead", thresholds=thresholds)
    url = reverse("admin:scoring_scoringmodel_change", args=[model.pk])
    page = admin_console.get(url).content.decode()
    assert 'name="thresholds-0-name" value="low"' in page and 'name="thresholds-1-score" value="500"' in page
    assert '<option value="mql" selected>mql (not found)</option>' in page  # a slug not found stays
    assert 'name="thresholds"' not in page  # no JSON box
    extra = page.split('name="thresholds-0-extra" value="')[1].split('"')[0]
    data = model_rows(
        {"name": "low", "score": "150", "extra": extra.replace("&quot;", '"')},
        {"name": "high", "score": "500", "template": "mql", "destination": "sales"},
        name="Lead",
        slug="lead",
    )
    response = admin_console.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    model.refresh_from_db()
    assert model.thresholds == [
        {"name": "low", "score": 150, "colour": "grey"},
        {"name": "high", "score": 500, "actions": [{"type": "notify", "template": "mql", "destination": "sales"}]},
    ]


def test_threshold_errors_name_the_row(org, admin_console):
    data = model_rows({"name": "hot", "score": "many"}, {"name": "hot", "score": "100"}, {"name": "", "score": "50"})
    response = admin_console.post(reverse("admin:scoring_scoringmodel_add"), data)
    assert response.status_code == 200
    # The rows come back in score order (the one without a number last), and the errors say so.
    assert response.context["adminform"].form.errors["thresholds"] == [
        "Row 1, name: a name is required.",
        "Row 3, name: “hot” is used twice.",
        "Row 3, minimum score: a whole number is required.",
    ]
    page = response.content.decode()
    assert 'name="thresholds-0-score" value="50"' in page and 'name="thresholds-2-score" value="many"' in page
    assert not ScoringModel.objects.exists()


def test_a_rules_points_and_caps_are_numbers_with_errors_on_their_fields(org, admin_console):
    model = ScoringModel.objects.create(org=org, name="Lead", slug="lead")
    url = reverse("admin:scoring_scoringrule_add")
    page = admin_console.get(url).content.decode()
    assert 'name="points"' in page and 'type="number"' in page
    assert "how many times the rule may score for one contact in the period" in page
    config = json.loads(page.split('id="rule-builder-config" type="application/json">')[1].split("</script>")[0])
    assert config["mode"] == "conditions" and config["fields"]
    assert "console/rule_builder.js" in page
    base = {"model": model.pk, "name": "Pricing", "kind": "behaviour", "event_type": "page_view", "active": "on"}
    response = admin_console.post(url, {**base, "points": "ten", "cap_count": "3", "condition": ""})
    errors = response.context["adminform"].form.errors
    assert errors["points"] == ["Enter a whole number."]
    assert errors["cap_period"] == ["A cap needs both a count and a period."]
    condition = {"==": [{"var": "event.properties.path"}, "/pricing"]}
    response = admin_console.post(
        url, {**base, "points": "10", "cap_count": "3", "cap_period": "day", "condition": json.dumps(condition)}
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    rule = ScoringRule.objects.get()
    assert (rule.points, rule.cap_count, rule.cap_period, rule.condition) == (10, 3, "day", condition)


def test_the_model_page_mounts_the_builder_on_each_rule(org, admin_console):
    model = ScoringModel.objects.create(org=org, name="Lead", slug="lead")
    ScoringRule.objects.create(org=org, model=model, name="Pricing", event_type="page_view", points=5)
    page = admin_console.get(reverse("admin:scoring_scoringmodel_change", args=[model.pk])).content.decode()
    assert 'id="rule-builder-config"' in page and 'name="rules-0-condition"' in page
