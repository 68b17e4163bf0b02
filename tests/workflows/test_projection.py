"""Projection: a workflow's volume over a segment equals the sum of its members' dry runs — set-based
where the conditions compile, a stated sample scaled up where they do not — and its API."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from channels_app.bench import projection_definition
from channels_app.models import Message, MessageTemplate, Suppression
from channels_app.outbox import _hashed
from channels_app.template_versions import template_publish
from compliance.services import consent_record
from marketing.models import Contact, SegmentMembership
from marketing.tenancy import org_context
from tests.factories import ContactFactory, SegmentFactory
from workflows.dry_run import workflow_dry_run
from workflows.models import Workflow
from workflows.projection import workflow_project

# A Wednesday: the workflow's sends fall in one week, so a weekly cap sees the run's own sends.
START = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
ZONES = ["Europe/Berlin", "America/Los_Angeles", "Pacific/Auckland", "", "Nowhere/Unknown"]


def published(org, slug, channel):
    variants = (
        [{"name": "A", "weight": 1, "text": "Hi {{ first_name }}."}]
        if channel == "sms"
        else [{"name": "A", "weight": 1, "subject": "Hi {{ first_name }}", "html": "<p>Hi</p>", "text": "Hi"}]
    )
    template = MessageTemplate.objects.create(org=org, slug=slug, name=slug, channel=channel, variants=variants)
    template_publish(template=template)
    return template


def definition(condition):
    """The projection bench's workflow (condition → split, one arm waiting an hour → email →
    approval → wait that times out → SMS → email) with ``condition`` first, and a goal (a score
    of 90) that ends a run when it wakes from a pause."""
    shape = projection_definition()
    shape["settings"] = {"goal": {">=": [{"var": "score"}, 90]}}
    shape["steps"][0] = {**shape["steps"][0], "condition": condition}
    return shape


def dry_run_sum(workflow, contacts) -> dict:
    """The projection's figures, counted from each member's dry run."""
    steps = dict.fromkeys((s["id"] for s in workflow.draft_definition["steps"]), 0)
    totals = {
        "contacts": len(contacts),
        "steps": steps,
        "sends": 0,
        "blocked": {"consent": 0, "suppression": 0, "no_address": 0},
        "held": {"frequency_cap": 0, "quiet_hours": 0},
        "sample_size": None,
    }
    for contact in contacts:
        report = workflow_dry_run(workflow=workflow, contact=contact, start=START, draft=True)
        for step in {item["step"] for item in report["path"] if item["step"]}:
            steps[step] += 1
        for action in report["actions"]:
            guard = action["preview"]["guard"]
            if guard["verdict"] == "send":
                totals["sends"] += 1
            else:
                totals["blocked" if guard["verdict"] == "block" else "held"][guard["kind"]] += 1
    return totals


@pytest.fixture
def audience(org):
    """80 seeded contacts in a segment, with every guard's case among them: no consent or a
    withdrawn one, suppressed addresses (plain and erased), no email or phone, a marketing email
    sent this week (weekly cap of one), and time zones where 10:00 UTC is night (SMS quiet hours)."""
    org.frequency_caps = {"email": {"week": 1}}
    org.save(update_fields=["frequency_caps"])
    published(org, "promo", "email")
    published(org, "remind", "sms")
    rng = random.Random(4)
    segment = SegmentFactory(org=org, slug="demo")
    contacts = []
    for i in range(80):
        contact = ContactFactory(
            org=org,
            email=f"p{i}@example.com" if rng.random() > 0.12 else None,
            phone=f"+49151123456{i:02d}" if rng.random() > 0.3 else "",
            time_zone=rng.choice(ZONES),
            score=rng.randrange(0, 100),
        )
        contacts.append(contact)
        draw = rng.random()
        if draw < 0.7:
            consent_record(org=org, contact=contact, purpose="email_marketing", granted=True, source="form")
        elif draw < 0.8:
            consent_record(org=org, contact=contact, purpose="email_marketing", granted=True, source="form")
            consent_record(
                org=org, contact=contact, purpose="email_marketing", granted=False, source="unsubscribe_link"
            )
        if rng.random() < 0.7:
            consent_record(org=org, contact=contact, purpose="sms", granted=True, source="form")
        if contact.email and rng.random() < 0.12:
            address = contact.email if i % 2 else _hashed(contact.email)
            Suppression.objects.create(org=org, channel="email", address=address, reason="manual")
        if contact.email and rng.random() < 0.2:
            Message.objects.create(
                org=org,
                contact=contact,
                channel="email",
                to=contact.email,
                idempotency_key=f"earlier-{i}",
                status="sent",
                sent_at=START - timedelta(days=1),
            )
        if i < 77:  # three contacts stay out of the segment
            SegmentMembership.objects.create(org=org, segment=segment, contact=contact)
    return segment, contacts[:77]


def test_projection_equals_the_sum_of_the_members_dry_runs(org, audience):
    segment, members = audience
    workflow = Workflow.objects.create(
        org=org, name="Promo", slug="promo", draft_definition=definition({">=": [{"var": "score"}, 40]})
    )

    projected = workflow_project(workflow=workflow, segment=segment, now=START)

    assert projected["sample_size"] is None  # every condition compiled: exact
    assert projected == dry_run_sum(workflow, members)
    # The case mix reached every guard, so the equality says something of each.
    assert all(projected["blocked"].values()) and all(projected["held"].values()), projected
    assert 0 < projected["steps"]["hour"] < projected["steps"]["ab"]  # the split took both arms
    assert projected["steps"]["opened"] < projected["contacts"]  # the goal ended some runs at a pause


def test_projection_equals_the_dry_runs_under_either_consent_regime(org, audience):
    from compliance.services import consent_regimes_set

    segment, members = audience
    workflow = Workflow.objects.create(
        org=org, name="Promo", slug="promo", draft_definition=definition({">=": [{"var": "score"}, 40]})
    )
    blocked = {}
    for regime in ("opt_out", "opt_in"):
        consent_regimes_set(org=org, regimes={"email_marketing": regime, "sms": regime, "push": regime})
        projected = workflow_project(workflow=workflow, segment=segment, now=START)
        assert projected == dry_run_sum(workflow, members), regime
        blocked[regime] = sum(count for key, count in projected["blocked"].items() if "consent" in key)
    # Members who never said are sent to under opt-out, blocked under opt-in.
    assert blocked["opt_out"] < blocked["opt_in"], blocked


def test_a_delay_until_a_local_time_is_sampled(org, audience):
    segment, members = audience
    steps = definition({">=": [{"var": "score"}, 40]})["steps"]
    steps[2] = {"id": "hour", "type": "delay", "config": {"until_local_time": "09:00"}, "next": "mail"}
    workflow = Workflow.objects.create(
        org=org, name="Local", slug="local", draft_definition={"trigger": {"type": "manual"}, "steps": steps}
    )

    projected = workflow_project(workflow=workflow, segment=segment, now=START, sample=500)

    # Each contact's 09:00 is its own: every member is dry-run (fewer than the sample), so the
    # figures are the dry runs' sums, with the sample size stated.
    assert projected["sample_size"] == len(members)
    assert {k: v for k, v in projected.items() if k != "sample_size"} == {
        k: v for k, v in dry_run_sum(workflow, members).items() if k != "sample_size"
    }


def test_a_rule_that_does_not_compile_is_sampled_and_scaled_up(org):
    published(org, "promo", "email")
    segment = SegmentFactory(org=org, slug="many")
    rng = random.Random(7)
    contacts = Contact.objects.bulk_create(
        [Contact(org=org, email=f"m{i}@example.com", score=rng.randrange(0, 100)) for i in range(300)]
    )
    SegmentMembership.objects.bulk_create([SegmentMembership(org=org, segment=segment, contact=c) for c in contacts])
    # Arithmetic has no SQL form in the condition compiler.
    rule = {">=": [{"+": [{"var": "score"}, 0]}, 50]}
    steps = [
        {"id": "keen", "type": "condition", "condition": rule, "true_next": "mail", "false_next": None},
        {"id": "mail", "type": "action", "action": "send_email", "config": {"template": "promo"}, "next": None},
    ]
    workflow = Workflow.objects.create(
        org=org, name="S", slug="s", draft_definition={"trigger": {"type": "manual"}, "steps": steps}
    )

    projected = workflow_project(workflow=workflow, segment=segment, now=START, sample=60)

    keen = sum(1 for c in contacts if c.score >= 50)
    assert projected["sample_size"] == 60
    assert projected["contacts"] == 300 and projected["steps"]["keen"] == 300
    assert abs(projected["steps"]["mail"] - keen) <= 30  # within 10 % of the segment
    # Nobody granted email consent: every projected send is blocked for it.
    assert projected["blocked"]["consent"] == projected["steps"]["mail"] and projected["sends"] == 0


def test_api_answers_the_projection_of_the_draft(org, api, audience):
    _segment, members = audience
    workflow = Workflow.objects.create(
        org=org, name="Promo", slug="promo", draft_definition=definition({">=": [{"var": "score"}, 40]})
    )

    response = api.post(
        f"/api/v1/workflows/{workflow.pk}/projection/", {"segment": "demo"}, content_type="application/json"
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"contacts", "steps", "sends", "blocked", "held", "sample_size"}
    assert body["contacts"] == len(members) and body["sample_size"] is None
    assert set(body["steps"]) == {s["id"] for s in workflow.draft_definition["steps"]}
    assert set(body["blocked"]) == {"consent", "suppression", "no_address"}
    assert set(body["held"]) == {"frequency_cap", "quiet_hours"}


def test_api_refuses_an_unknown_segment_and_a_bad_definition(org, other_org, api):
    workflow = Workflow.objects.create(
        org=org,
        name="Broken",
        slug="broken",
        draft_definition={
            "trigger": {"type": "manual"},
            "steps": [{"id": "m", "type": "action", "action": "send_email", "config": {"template": "gone"}}],
        },
    )
    SegmentFactory(org=other_org, slug="theirs")
    url = f"/api/v1/workflows/{workflow.pk}/projection/"

    unknown = api.post(url, {"segment": "theirs"}, content_type="application/json")
    assert unknown.status_code == 400
    assert "theirs" in unknown.json()["segment"][0]

    SegmentFactory(org=org, slug="ours")
    bad = api.post(url, {"segment": "ours"}, content_type="application/json")
    assert bad.status_code == 400
    assert "gone" in str(bad.json()["definition"])

    missing = api.post(url, {}, content_type="application/json")
    assert missing.status_code == 400 and "segment" in missing.json()


def test_another_orgs_workflow_is_not_found(other_org, api):
    with org_context(other_org):
        theirs = Workflow.objects.create(org=other_org, name="T", slug="t", draft_definition={"steps": []})
    response = api.post(f"/api/v1/workflows/{theirs.pk}/projection/", {"segment": "x"}, content_type="application/json")
    assert response.status_code == 404
