"""GET /api/v1/contacts/{id}/score/ (scoring/api.py): the contract's shape, where base plus the
breakdown's points is the score; the default or a named model; tenancy; keys; the schema."""

from datetime import timedelta

from django.test import Client

from marketing.services import api_key_create
from marketing.tenancy import org_context
from scoring.models import ContactScore
from scoring.rules import events_score, score_adjust
from tests.factories import ContactFactory
from tests.scoring.test_rules import DAY, PRICING, make_event, make_model, make_rule


def url(contact_id, query=""):
    return f"/api/v1/contacts/{contact_id}/score/{query}"


def test_the_score_explains_itself(org, api, django_assert_max_num_queries):
    model = make_model(org, maximum=400)
    pricing = make_rule(model, "page_view", 15, condition=PRICING, name="Pricing page")
    make_rule(model, "trial_started", 300, name="Trial")
    make_rule(model, points=20, kind="fit", condition={"==": [{"var": "country"}, "DE"]}, name="Germany")
    contact = ContactFactory(org=org, country="DE")
    events = [make_event(contact, "page_view", {"path": "/pricing"}, at=DAY + timedelta(minutes=i)) for i in range(2)]
    events.append(make_event(contact, "trial_started", at=DAY + timedelta(hours=1)))
    events_score(org=org, events=events)
    score_adjust(org=org, contact=contact, delta=-10, note="duplicate lead")

    with django_assert_max_num_queries(8 + 2):  # two for the profiling consent (regime, state)
        response = api.get(url(contact.pk))

    assert response.status_code == 200
    body = response.json()
    assert {"score", "base", "breakdown", "probability", "factors"} <= set(body)
    assert body["score"] == ContactScore.objects.get(contact=contact).score == 390
    assert body["base"] + sum(item["points"] for item in body["breakdown"]) == body["score"]
    by_rule = {item["rule"]: item for item in body["breakdown"]}
    assert by_rule["Pricing page"] == {
        "rule": "Pricing page",
        "rule_id": pricing.pk,
        "reason": "rule",
        "points": 30,
        "count": 2,
    }
    assert by_rule["Germany"]["reason"] == "fit"
    assert by_rule["Clamped to the model's range"]["points"] == 400 - (100 + 20 + 30 + 300)
    assert by_rule["Adjusted by hand or by a workflow"]["points"] == -10
    assert body["recent"][0]["reason"] == "manual"
    assert {r["event"]["type"] for r in body["recent"] if r["event"]} == {"page_view", "trial_started"}
    assert body["probability"] is None and body["factors"] == []


def test_a_named_model_and_a_contact_never_scored(org, api):
    make_model(org)
    other = make_model(org, slug="product", default=False, base=7)
    contact = ContactFactory(org=org)
    assert api.get(url(contact.pk)).json()["score"] == 100
    body = api.get(url(contact.pk, "?model=product")).json()
    assert (body["model"], body["score"], body["base"], body["breakdown"]) == (other.slug, 7, 7, [])
    assert api.get(url(contact.pk, "?model=nope")).status_code == 404


def test_another_orgs_contact_or_model_is_not_found(org, other_org, api):
    make_model(org)
    with org_context(other_org):
        theirs = ContactFactory(org=other_org)
        make_model(other_org, slug="theirs")
    assert api.get(url(theirs.pk)).status_code == 404
    mine = ContactFactory(org=org)
    assert api.get(url(mine.pk, "?model=theirs")).status_code == 404
    assert api.get(url(999999)).status_code == 404


def test_without_a_default_model_the_answer_is_404(org, api):
    assert api.get(url(ContactFactory(org=org).pk)).status_code == 404


def test_keys(org):
    make_model(org)
    contact = ContactFactory(org=org)
    assert Client().get(url(contact.pk)).status_code == 401
    write_key = api_key_create(org=org, name="site", scope="write")[1]
    assert Client(headers={"Authorization": f"Bearer {write_key}"}).get(url(contact.pk)).status_code == 403


def test_the_schema_documents_the_endpoint(db):
    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/v1/contacts/{id}/score/"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {"id", "model"}
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    output = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"score", "base", "breakdown", "probability", "factors"} <= set(output["properties"])
