"""The canvas's dry run with simulated events and approval answers, and its projection, in chromium.

A workflow asks "Engaged?" (country DE), waits for an email open (else sends a reminder), then asks
for approval (approved: tag as VIP; rejected: stop). A dry run without events takes the timeout
path; one with a simulated "email opened" a day and three hours in, and the approval rejected,
takes the arrived and rejected exits instead: the highlighted steps and links follow. Problems
with an event show on that event's fields. The projection over a small segment puts on each step
the number of contacts the API says would reach it, says the totals in words, and "Clear" removes
the badges. Screenshots go to the system temp dir's canvas-shots/."""

import json

from django.test import Client
from django_scopes import scopes_disabled

from channels_app.models import MessageTemplate
from channels_app.template_versions import template_publish
from compliance.services import consent_record
from marketing.models import Role, SegmentMembership
from tests.factories import ContactFactory, SegmentFactory
from tests.workflows.test_canvas import SHOTS, chromium_page, session_cookie
from workflows.models import Workflow
from workflows.services import workflow_create

DEFINITION = {
    "trigger": {"type": "manual"},
    "steps": [
        {
            "id": "engaged",
            "type": "condition",
            "name": "Engaged?",
            "condition": {"==": [{"var": "country"}, "DE"]},
            "true_next": "opened",
            "false_next": "dropped",
        },
        {
            "id": "opened",
            "type": "wait_for_event",
            "name": "Opened?",
            "event": "email_opened",
            "timeout": "P3D",
            "next": "review",
            "timeout_next": "reminder",
        },
        {
            "id": "reminder",
            "type": "action",
            "name": "Send a reminder",
            "action": "send_email",
            "config": {"template": "reminder"},
            "next": None,
        },
        {
            "id": "review",
            "type": "approval",
            "name": "Sales approves",
            "approvers": {"role": "marketer"},
            "timeout": "P2D",
            "approved_next": "vip",
            "rejected_next": "dropped",
            "timeout_next": "dropped",
        },
        {
            "id": "vip",
            "type": "action",
            "name": "Tag as VIP",
            "action": "add_tag",
            "config": {"tags": ["vip"]},
            "next": None,
        },
        {"id": "dropped", "type": "stop", "name": "Dropped", "reason": "not now"},
    ],
}
STEPS = [s["id"] for s in DEFINITION["steps"]]
WIDE = (
    "[...document.querySelectorAll('[data-workflow-canvas] *')]"
    ".filter(e => e.getBoundingClientRect().right > window.innerWidth).length"
)


def node_states(page) -> dict[str, str]:
    """Each step's highlight: taken, skipped or none."""
    states = {}
    for step in STEPS:
        classes = page.get_attribute(f".react-flow__node[data-id={step}] .canvas-node", "class").split()
        states[step] = "taken" if "dry-taken" in classes else "skipped" if "dry-skipped" in classes else "none"
    return states


def taken_edges(page) -> list[str]:
    return sorted(page.eval_on_selector_all(".react-flow__edge.dry-taken", "es => es.map(e => e.dataset.id)"))


def reminder_template(org):
    variants = [{"name": "A", "weight": 1, "subject": "Still there?", "html": "<p>Hi</p>", "text": "Hi"}]
    template = MessageTemplate.objects.create(
        org=org, slug="reminder", name="Reminder", channel="email", purpose="marketing", variants=variants
    )
    template_publish(template=template)


def test_dry_run_with_a_simulated_open_and_a_rejection_takes_other_exits(org, live_server, member_factory):
    cookie = session_cookie(member_factory(org, Role.MARKETER, username="mara"), live_server)
    reminder_template(org)
    ContactFactory(org=org, first_name="Dora", last_name="Dry", email="dora@example.com", country="DE")
    workflow = workflow_create(org=org, name="Open or remind", slug="open-or-remind", definition=DEFINITION)
    with chromium_page() as page:
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.context.add_cookies([cookie])
        page.goto(f"{live_server.url}/admin/workflows/workflow/{workflow.pk}/change/")
        page.wait_for_selector(".react-flow__node[data-id=review]")
        page.get_by_role("tab", name="Dry run").click()
        page.get_by_role("textbox", name="Contact").fill("dora")
        page.get_by_role("option", name="Dora Dry").click()
        page.get_by_label("Simulated start").fill("2026-03-02T09:30")
        approval_choices = page.locator("select[data-approval=review] option").all_inner_texts()

        # No events: the wait times out and the reminder goes.
        page.get_by_role("button", name="Run dry run").click()
        page.wait_for_selector(".react-flow__node[data-id=reminder] .canvas-node.dry-taken")
        first_states, first_edges = node_states(page), taken_edges(page)
        first_decision = page.inner_text(".react-flow__node[data-id=opened] .canvas-node-decision")
        page.screenshot(path=str(SHOTS / "dry-1-timeout.png"))

        # An email opened a day and three hours in, and the approval rejected.
        page.get_by_role("button", name="Add an event").click()
        event_types = page.locator("#dry-event-1-type option").all_inner_texts()
        preselected = page.input_value("#dry-event-1-type")
        page.get_by_label("Event 1: days after the start").fill("1")
        page.get_by_label("Event 1: hours after the start").fill("3")
        page.get_by_label("Sales approves").select_option(label="Reject")
        with page.expect_request("**/dry-run/") as sent:
            page.get_by_role("button", name="Run dry run").click()
        body = json.loads(sent.value.post_data)
        page.wait_for_selector(".react-flow__node[data-id=dropped] .canvas-node.dry-taken")
        second_states, second_edges = node_states(page), taken_edges(page)
        decisions = {
            step: page.inner_text(f".react-flow__node[data-id={step}] .canvas-node-decision")
            for step in ("opened", "review")
        }
        seen = page.inner_text(".canvas-dry-events-seen")
        wide = page.evaluate(WIDE)
        page.locator(".canvas-side").evaluate("e => e.scrollTo(0, 0)")
        page.screenshot(path=str(SHOTS / "dry-2-opened-rejected.png"))

        # Another tab and back: the events and answers are still there.
        page.get_by_role("tab", name="Canvas").click()
        page.get_by_role("tab", name="Dry run").click()
        kept = [page.input_value("#dry-event-1-type"), page.input_value("select[data-approval=review]")]

        # A time before the start is refused on the event's "When", before anything is asked.
        page.get_by_label("When").select_option("at")
        page.get_by_label("Event 1: date and time").fill("2026-03-01T08:00")
        page.get_by_role("button", name="Run dry run").click()
        before_start = page.inner_text(".canvas-dry-event[data-event='0'] .errorlist")

        # The server's word on an event shows on that event's field too.
        page.get_by_label("Event 1: date and time").fill("2026-03-03T08:00")
        page.route(
            "**/dry-run/",
            lambda route: route.fulfill(
                status=400,
                content_type="application/json",
                body=json.dumps({"events": ["events[0].after: “PT-1H” is negative; events come after the start."]}),
            ),
        )
        page.get_by_role("button", name="Run dry run").click()
        page.wait_for_selector(".canvas-dry-event[data-event='0'] .errorlist")
        from_server = page.inner_text(".canvas-dry-event[data-event='0'] .errorlist")
        page.screenshot(path=str(SHOTS / "dry-3-event-error.png"))

    with scopes_disabled():
        assert Workflow.objects.get(pk=workflow.pk).instances.count() == 0  # nothing ran for real
    assert errors == []
    assert approval_choices == ["Approve", "Reject", "No answer (it times out)"]
    assert first_states == {
        "engaged": "taken",
        "opened": "taken",
        "reminder": "taken",
        "review": "skipped",
        "vip": "skipped",
        "dropped": "skipped",
    }
    assert "opened:timeout_next" in first_edges and "opened:next" not in first_edges
    assert first_decision == "Timed out"

    assert "Email opened" in event_types and preselected == "email_opened"  # the wait's event comes first
    assert body["events"] == [{"type": "email_opened", "after": "P1DT3H", "properties": {}}]
    assert body["approvals"] == {"review": "rejected"}
    assert second_states == {
        "engaged": "taken",
        "opened": "taken",
        "reminder": "skipped",
        "review": "taken",
        "vip": "skipped",
        "dropped": "taken",
    }
    assert {"opened:next", "review:rejected_next"} <= set(second_edges)
    assert "opened:timeout_next" not in second_edges and "review:approved_next" not in second_edges
    assert decisions == {"opened": "Arrived", "review": "Rejected"}
    assert "answered “Opened?”" in seen
    assert kept == ["email_opened", "rejected"]
    assert wide == 0
    assert before_start == "This is before the simulated start: pick a later time."
    assert from_server == "“PT-1H” is negative; events come after the start."


def test_projection_puts_the_apis_numbers_on_the_steps_and_clear_removes_them(org, live_server, member_factory):
    marketer = member_factory(org, Role.MARKETER, username="mara")
    cookie = session_cookie(marketer, live_server)
    reminder_template(org)
    segment = SegmentFactory(org=org, slug="fairgoers", name="Fair visitors", member_count=5)
    members = [
        ContactFactory(org=org, country="DE", email="yes@example.com"),  # sent
        ContactFactory(org=org, country="DE", email="no@example.com"),  # no consent
        ContactFactory(org=org, country="DE", email=None),  # no address
        ContactFactory(org=org, country="FR"),
        ContactFactory(org=org, country="FR"),
    ]
    consent_record(org=org, contact=members[0], purpose="email_marketing", granted=True, source="form")
    ContactFactory(org=org, country="DE")  # not in the segment
    for contact in members:
        SegmentMembership.objects.create(org=org, segment=segment, contact=contact)
    workflow = workflow_create(org=org, name="Open or remind", slug="open-or-remind", definition=DEFINITION)
    client = Client()
    client.force_login(marketer)
    api_answer = client.post(
        f"/api/v1/workflows/{workflow.pk}/projection/", {"segment": "fairgoers"}, content_type="application/json"
    ).json()

    with chromium_page() as page:
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.context.add_cookies([cookie])
        page.goto(f"{live_server.url}/admin/workflows/workflow/{workflow.pk}/change/")
        page.wait_for_selector(".react-flow__node[data-id=review]")
        page.get_by_role("tab", name="Projection").click()
        page.get_by_role("button", name="Project").click()
        missing = page.inner_text(".canvas-projection .errorlist")
        page.wait_for_selector("#projection-segment option[value=fairgoers]", state="attached")
        page.get_by_label("Segment").select_option("fairgoers")
        page.get_by_role("button", name="Project").click()
        page.wait_for_selector(".react-flow__node[data-id=dropped] .canvas-projected")
        badges = {
            step: int(page.get_attribute(f".react-flow__node[data-id={step}] .canvas-projected", "data-projected"))
            for step in STEPS
        }
        badge_text = page.inner_text(".react-flow__node[data-id=opened] .canvas-projected")
        starts = page.inner_text(".react-flow__node[data-id=__trigger] .canvas-projected")
        summary = page.inner_text(".canvas-projection-summary")
        sampled = page.locator(".canvas-projection-sample").count()
        wide = page.evaluate(WIDE)
        page.screenshot(path=str(SHOTS / "projection-1.png"))

        page.get_by_role("button", name="Clear").click()
        page.wait_for_selector(".canvas-projected", state="detached")
        left = page.locator(".canvas-projected").count()
        page.screenshot(path=str(SHOTS / "projection-2-cleared.png"))

    assert errors == []
    assert missing == "Pick a segment first."
    assert badges == {step: api_answer["steps"].get(step, 0) for step in STEPS}
    assert badges == {"engaged": 5, "opened": 3, "reminder": 3, "review": 0, "vip": 0, "dropped": 2}
    assert badge_text == "3 contacts"
    assert starts == "5 contacts would start"
    assert (api_answer["sends"], api_answer["blocked"], api_answer["sample_size"]) == (
        1,
        {"consent": 1, "suppression": 0, "no_address": 1},
        None,
    )
    assert summary == (
        "5 contacts · 1 send · blocked: 1 without consent, 0 suppressed, 1 without an address"
        f" · held: {api_answer['held']['frequency_cap']} by the frequency cap,"
        f" {api_answer['held']['quiet_hours']} by quiet hours"
    )
    assert sampled == 0  # exact figures: no sample to mention
    assert wide == 0
    assert left == 0


def test_projection_says_when_its_figures_come_from_a_sample_and_when_the_draft_is_unsaved(
    org, live_server, member_factory
):
    cookie = session_cookie(member_factory(org, Role.MARKETER, username="mara"), live_server)
    segment = SegmentFactory(org=org, slug="few", name="A few", member_count=3)
    for contact in ContactFactory.create_batch(3, org=org):
        SegmentMembership.objects.create(org=org, segment=segment, contact=contact)
    # Each contact's 09:00 is its own clock: the API dry-runs a sample instead of walking in SQL.
    steps = [
        {"id": "morning", "type": "delay", "name": "Next morning", "config": {"until_local_time": "09:00"}},
        {"id": "end", "type": "stop", "name": "End", "reason": "done"},
    ]
    steps[0]["next"] = "end"
    workflow = workflow_create(
        org=org, name="Mornings", slug="mornings", definition={"trigger": {"type": "manual"}, "steps": steps}
    )
    with chromium_page() as page:
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.context.add_cookies([cookie])
        page.goto(f"{live_server.url}/admin/workflows/workflow/{workflow.pk}/change/")
        page.wait_for_selector(".react-flow__node[data-id=end]")
        page.get_by_role("tab", name="Projection").click()
        saved_note = page.locator(".canvas-projection-note").count()
        page.wait_for_selector("#projection-segment option[value=few]", state="attached")
        page.get_by_label("Segment").select_option("few")
        page.get_by_role("button", name="Project").click()
        page.wait_for_selector(".canvas-projection-sample")
        sample = page.inner_text(".canvas-projection-sample")
        badges = page.locator(".react-flow__node .canvas-projected").all_inner_texts()

        # An unsaved change: the panel says the projection is of the saved draft.
        page.get_by_role("tab", name="Canvas").click()
        page.locator(".react-flow__node[data-id=end]").click()
        page.get_by_label("Name on the canvas").fill("Done")
        page.get_by_role("tab", name="Projection").click()
        unsaved_note = page.inner_text(".canvas-projection-note")
        page.wait_for_selector("#projection-segment option[value=few]", state="attached")
        kept_segment = page.input_value("#projection-segment")  # the tab remembers its choice
        page.screenshot(path=str(SHOTS / "projection-3-sample-unsaved.png"))

    assert errors == []
    assert saved_note == 0
    assert sample == "Estimated from a sample of 3 contacts."
    assert badges == ["3 contacts would start", "3 contacts", "3 contacts"]
    assert "save your changes" in unsaved_note
    assert kept_segment == "few"
