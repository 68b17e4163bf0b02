"""The workflow canvas in chromium: the workflow page draws the draft's steps with labelled
edges (laid out by elkjs when the definition has no positions), a step dragged from the palette
gets a form from its schema, the draft saves through the REST API with the session, and the
saved steps and positions come back on a reload. A dry run for a picked contact highlights its
path, the live counts of the websocket show on the steps, and the form's raw JSON box is hidden
while the page's own Save still writes what the canvas shows. Screenshots go to /tmp/canvas-shots/."""

import json
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django_scopes import scopes_disabled

from channels_app.models import MessageTemplate
from channels_app.template_versions import template_publish
from marketing.models import Role
from marketing.tenancy import org_context
from tests.browser import CHROMIUM, CHROMIUM_ARGS, playwright_or_skip
from tests.factories import ContactFactory
from tests.workflows.test_live_status import (  # noqa: F401 (server and no_worker are fixtures)
    no_worker,
    run_beside,
    serve_static,
    server,
)
from tests.workflows.test_live_status import session_cookie as socket_session
from workflows.models import Workflow
from workflows.services import workflow_create, workflow_publish

SHOTS = Path(tempfile.gettempdir()) / "canvas-shots"  # kept after the run, to look at

DEFINITION = {
    "trigger": {"type": "manual"},
    "steps": [
        {
            "id": "engaged",
            "type": "condition",
            "name": "Engaged?",
            "condition": {"and": [{"==": [{"var": "country"}, "DE"]}]},
            "true_next": "vip",
            "false_next": "done",
        },
        {
            "id": "vip",
            "type": "action",
            "name": "Tag as VIP",
            "action": "add_tag",
            "config": {"tags": ["vip"]},
            "next": None,
        },
        {"id": "done", "type": "stop", "name": "Not engaged", "reason": "not engaged"},
    ],
}


@contextmanager
def chromium_page():
    """A 1366-pixel-wide page in headless chromium (opened after the test's rows are written:
    playwright runs an event loop, and the ORM refuses to run inside one)."""
    sync_playwright = playwright_or_skip()
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1366, "height": 900})
        finally:
            browser.close()


def session_cookie(user, live_server) -> dict:
    """The console session of ``user`` as a browser cookie (the login form is the theme's to test)."""
    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return {"name": name, "value": client.cookies[name].value, "url": live_server.url}


def edge_labels(page) -> list[str]:
    # SVG text: no innerText.
    return sorted(page.eval_on_selector_all(".canvas-edge-label", "nodes => nodes.map(n => n.textContent)"))


def drag(page, source, target):
    """A mouse drag in small steps (React Flow follows pointer moves, not HTML drag and drop)."""
    start, end = source.bounding_box(), target.bounding_box()
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + end["height"] / 2, steps=12)
    page.mouse.up()


def test_canvas_draws_adds_a_step_from_the_palette_saves_and_reloads(org, live_server, member_factory):
    cookie = session_cookie(member_factory(org, Role.MARKETER, username="mara"), live_server)
    workflow = workflow_create(org=org, name="Nurture", slug="nurture", definition=DEFINITION)
    with chromium_page() as page:
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        url = f"/admin/workflows/workflow/{workflow.pk}/change/"
        page.context.add_cookies([cookie])
        page.goto(live_server.url + url)

        # No positions in the definition: elkjs lays the steps out, top to bottom.
        page.wait_for_selector(".react-flow__node[data-id=vip]")
        titles = page.locator(".react-flow__node .canvas-node-title").all_inner_texts()
        labels = edge_labels(page)
        tops = {
            step: page.locator(f".react-flow__node[data-id={step}]").bounding_box()["y"] for step in ("engaged", "vip")
        }
        page.screenshot(path=str(SHOTS / "1-loaded.png"), full_page=True)

        # A condition's form is the rule builder, showing the saved rule as a row.
        page.locator(".react-flow__node[data-id=engaged]").click()
        rule_row = page.locator(".canvas-side .rule-builder-row")
        rule_shown = [rule_row.count(), rule_row.nth(0).get_by_label("Value").input_value()]

        # Drag "Wait" from the palette onto the canvas: it is added and its form opens.
        pane = page.locator(".canvas-flow")
        page.locator(".canvas-palette-item[data-palette=delay]").drag_to(pane, target_position={"x": 380, "y": 500})
        page.wait_for_selector(".react-flow__node[data-id=delay]")
        duration = page.locator(".canvas-side .canvas-duration").first
        duration.locator("input").fill("2")
        duration.locator("select").select_option("D")
        page.get_by_label("Name on the canvas").fill("Two days")

        # Saving before it is linked: the server's error is on the new step.
        page.get_by_role("button", name="Save draft").click()
        page.wait_for_selector(".react-flow__node[data-id=delay] .canvas-node-errors")
        refused = page.inner_text(".canvas-toolbar .canvas-message")
        page.screenshot(path=str(SHOTS / "2-refused.png"), full_page=True)

        # Link the tag step's exit to the new step, and save.
        drag(
            page,
            page.locator(".react-flow__node[data-id=vip] .react-flow__handle[data-handleid=next]"),
            page.locator(".react-flow__node[data-id=delay] .react-flow__handle.target"),
        )
        page.wait_for_selector(".react-flow__edge[data-id='vip:next']", state="attached")
        page.get_by_role("button", name="Save draft").click()
        page.wait_for_selector(".canvas-message.success")
        saved_message = page.inner_text(".canvas-toolbar .canvas-message")
        page_form = json.loads(page.input_value("textarea[name=draft_definition]"))  # the page's own Save agrees
        # Nothing of the canvas reaches past a 1366-pixel window (the page's own fields are the theme's).
        wide = page.evaluate(
            "[...document.querySelectorAll('[data-workflow-canvas], [data-workflow-canvas] *')]"
            ".filter(e => e.getBoundingClientRect().right > window.innerWidth).length"
        )
        page.screenshot(path=str(SHOTS / "3-saved.png"), full_page=True)

        # The advanced tab shows the definition as JSON and takes it back unchanged.
        page.get_by_role("tab", name="Advanced (JSON)").click()
        as_json = json.loads(page.input_value("textarea[aria-label='Definition (JSON)']"))
        page.get_by_role("tab", name="Canvas").click()
        page.wait_for_selector(".react-flow__node[data-id=delay]")

        page.reload()
        page.wait_for_selector(".react-flow__node[data-id=delay]")
        reloaded_titles = page.locator(".react-flow__node .canvas-node-title").all_inner_texts()
        reloaded_labels = edge_labels(page)
        page.screenshot(path=str(SHOTS / "4-reloaded.png"), full_page=True)

    assert errors == []
    assert titles == ["Starts when", "Engaged?", "Tag as VIP", "Not engaged"]
    assert labels == ["No", "Yes"]
    assert tops["engaged"] < tops["vip"]
    assert rule_shown == [1, "DE"]
    assert "delay" in refused or "reach" in refused.lower() or "problem" in refused.lower()
    assert saved_message == "Draft saved."
    assert wide == 0
    with scopes_disabled():
        saved = Workflow.objects.get(pk=workflow.pk).draft_definition
    steps = {s["id"]: s for s in saved["steps"]}
    assert steps["delay"]["type"] == "delay"
    assert steps["delay"]["config"] == {"duration": "P2D"}
    assert steps["delay"]["name"] == "Two days"
    assert steps["vip"]["next"] == "delay"
    assert all(isinstance(s["position"]["x"], int | float) for s in saved["steps"])  # the layout is kept
    assert steps["engaged"]["condition"] == DEFINITION["steps"][0]["condition"]  # untouched by the form
    assert as_json == saved
    assert page_form == saved
    assert "Two days" in reloaded_titles
    assert reloaded_labels == ["Next", "No", "Yes"]


def test_canvas_send_email_picks_the_orgs_template_from_a_list(org, other_org, live_server, member_factory):
    cookie = session_cookie(member_factory(org, Role.MARKETER, username="mara"), live_server)
    variants = [{"name": "A", "weight": 1, "subject": "Hi", "html": "<p>Hi</p>", "text": "Hi"}]
    for owner, slug in ((org, "welcome"), (org, "follow-up"), (other_org, "theirs")):
        with org_context(owner):
            made = MessageTemplate.objects.create(
                org=owner, slug=slug, name=slug.title(), channel="email", purpose="marketing", variants=variants
            )
            if slug != "follow-up":  # a draft is listed too, marked as one
                template_publish(template=made)
    workflow = workflow_create(org=org, name="Welcome", slug="welcome", definition=DEFINITION)
    with chromium_page() as page:
        page.context.add_cookies([cookie])
        page.goto(f"{live_server.url}/admin/workflows/workflow/{workflow.pk}/change/")
        page.wait_for_selector(".react-flow__node[data-id=vip]")
        page.locator(".canvas-palette-item[data-palette=send_email]").drag_to(
            page.locator(".canvas-flow"), target_position={"x": 380, "y": 520}
        )
        page.wait_for_selector(".react-flow__node[data-id=send_email]")
        picker = page.locator(".canvas-side select").first
        page.wait_for_selector(".canvas-side select option[value=welcome]", state="attached")
        choices = picker.locator("option").all_inner_texts()
        picker.select_option("welcome")
        page.get_by_role("tab", name="Advanced (JSON)").click()
        written = json.loads(page.input_value("textarea[aria-label='Definition (JSON)']"))
        page.get_by_role("tab", name="Canvas").click()
        page.locator(".react-flow__node[data-id=send_email]").click()
        page.screenshot(path=str(SHOTS / "5-send-email.png"))

    assert choices == ["— choose —", "Follow-Up — draft", "Welcome"]
    step = next(s for s in written["steps"] if s["id"] == "send_email")
    assert step["type"] == "action" and step["action"] == "send_email"
    assert step["config"]["template"] == "welcome"


def test_canvas_dry_run_for_a_picked_contact_highlights_the_path_taken(org, live_server, member_factory):
    cookie = session_cookie(member_factory(org, Role.MARKETER, username="mara"), live_server)
    ContactFactory(org=org, first_name="Dora", last_name="Dry", email="dora@example.com", country="DE")
    ContactFactory(org=org, first_name="Fritz", last_name="Other", email="fritz@example.com", country="FR")
    workflow = workflow_create(org=org, name="Nurture", slug="nurture", definition=DEFINITION)
    with chromium_page() as page:
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.context.add_cookies([cookie])
        page.goto(f"{live_server.url}/admin/workflows/workflow/{workflow.pk}/change/")
        page.wait_for_selector(".react-flow__node[data-id=vip]")
        page.get_by_role("tab", name="Dry run").click()

        # Running without a contact says what to do, on the field.
        page.get_by_role("button", name="Run dry run").click()
        missing = page.inner_text(".canvas-dry .errorlist")

        page.get_by_role("textbox", name="Contact").fill("dora")
        page.get_by_role("option", name="Dora Dry").click()
        page.get_by_label("Simulated start").fill("2026-03-02T09:30")
        page.get_by_role("button", name="Run dry run").click()
        page.wait_for_selector(".canvas-dry-result")
        page.wait_for_selector(".react-flow__node[data-id=vip] .canvas-node.dry-taken")
        classes = {
            step: page.get_attribute(f".react-flow__node[data-id={step}] .canvas-node", "class")
            for step in ("engaged", "vip", "done")
        }
        taken = page.eval_on_selector_all(".react-flow__edge.dry-taken", "es => es.map(e => e.dataset.id)")
        taken_edges = sorted(taken)
        decision = page.inner_text(".react-flow__node[data-id=engaged] .canvas-node-decision")
        listed = page.locator(".canvas-dry-path > li").all_inner_texts()
        wide = page.evaluate(
            "[...document.querySelectorAll('[data-workflow-canvas] *')]"
            ".filter(e => e.getBoundingClientRect().right > window.innerWidth).length"
        )
        page.screenshot(path=str(SHOTS / "6-dry-run.png"))

    with scopes_disabled():
        stored = Workflow.objects.get(pk=workflow.pk)
    assert errors == []
    assert missing == "Pick a contact first."
    assert "dry-taken" in classes["engaged"] and "dry-taken" in classes["vip"]
    assert "dry-skipped" in classes["done"] and "dry-taken" not in classes["done"]
    assert "engaged:true_next" in taken_edges and "start" in taken_edges
    assert not any(edge.startswith("engaged:false") for edge in taken_edges)
    assert decision.lower() in {"true", "yes"}
    assert listed[0].startswith("Engaged?") and any(line.startswith("Tag as VIP") for line in listed)
    assert any("vip" in line for line in listed if line.startswith("Tag as VIP"))  # what the action would do
    assert wide == 0
    assert stored.instances.count() == 0  # nothing ran for real


def test_canvas_hides_the_json_box_and_the_pages_save_keeps_the_canvas_changes(org, live_server, member_factory):
    cookie = session_cookie(member_factory(org, Role.MARKETER, username="mara"), live_server)
    workflow = workflow_create(org=org, name="Nurture", slug="nurture", definition=DEFINITION)
    with chromium_page() as page:
        page.context.add_cookies([cookie])
        page.goto(f"{live_server.url}/admin/workflows/workflow/{workflow.pk}/change/")
        page.wait_for_selector(".react-flow__node[data-id=vip]")
        box_visible = page.is_visible("textarea[name=draft_definition]")
        page.locator(".react-flow__node[data-id=vip]").click()
        page.get_by_label("Name on the canvas").fill("Tag as a VIP")
        # The live-status table is not under the sticky save bar when scrolled to its end.
        page.evaluate("document.querySelector('#workflow-step-counts').scrollIntoView({block: 'end'})")
        covered = page.evaluate(
            """() => {
                const table = document.querySelector('#workflow-step-counts').getBoundingClientRect();
                const bars = [...document.querySelectorAll('#submit-row, .submit-row, [class*=sticky]')]
                    .filter(e => getComputedStyle(e).position === 'sticky' || getComputedStyle(e).position === 'fixed')
                    .map(e => e.getBoundingClientRect())
                    .filter(r => r.height > 0);
                return bars.some(r => r.top < table.bottom && r.bottom > table.top);
            }"""
        )
        page.screenshot(path=str(SHOTS / "7-live-table.png"))
        page.locator("[name=_continue]").click()
        page.wait_for_selector(".react-flow__node[data-id=vip]")
        after_titles = page.locator(".react-flow__node .canvas-node-title").all_inner_texts()
        page.screenshot(path=str(SHOTS / "8-saved-by-page.png"), full_page=True)

    with scopes_disabled():
        saved = Workflow.objects.get(pk=workflow.pk).draft_definition
    assert box_visible is False
    assert covered is False
    steps = {s["id"]: s for s in saved["steps"]}
    assert steps["vip"]["name"] == "Tag as a VIP"
    assert steps["engaged"]["condition"] == DEFINITION["steps"][0]["condition"]
    assert "Tag as a VIP" in after_titles


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_canvas_shows_the_live_counts_on_its_steps_as_contacts_enrol(
    org,
    marketer,
    server,  # noqa: F811 (the live-status tests' daphne fixture)
    no_worker,  # noqa: F811 (and their no-worker one)
):
    steps = [
        {"id": "hello", "type": "action", "name": "Say hello", "action": "log", "config": {"message": "hi"}},
        {"id": "wait", "type": "delay", "name": "A day", "config": {"duration": "P1D"}, "next": None},
    ]
    steps[0]["next"] = "wait"
    with org_context(org):
        workflow = workflow_create(
            org=org, name="Live", slug="live", definition={"trigger": {"type": "manual"}, "steps": steps}
        )
        workflow_publish(workflow=workflow)
        workflow.refresh_from_db()
    contacts = ContactFactory.create_batch(2, org=org)
    cookie = socket_session(marketer).split("=", 1)[1]
    badge = ".react-flow__node[data-id='{}'] .canvas-count[data-count='{}']"

    with chromium_page() as page:
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.context.add_cookies([{"name": "sessionid", "value": cookie, "url": server.origin}])
        page.route("**/static/**", serve_static)
        page.goto(f"{server.origin}/admin/workflows/workflow/{workflow.pk}/change/")
        page.wait_for_selector(".react-flow__node[data-id=wait]")
        page.wait_for_selector("#workflow-live[data-state='live']")
        before = page.locator(".react-flow__node .canvas-count").count()

        run_beside(workflow, contacts)  # enrols both and moves them on; the socket tells the page

        page.wait_for_selector(".react-flow__edge.live-recent[data-id='hello:next']", state="attached")
        page.wait_for_function(
            "([w, d]) => document.querySelector(w)?.textContent === '2 waiting'"
            " && document.querySelector(d)?.textContent === '2 done'",
            arg=[badge.format("wait", "waiting"), badge.format("hello", "done")],
            timeout=15000,
        )
        table = page.inner_text("#workflow-step-counts tr[data-step='wait'] td[data-count='waiting']")
        page.screenshot(path=str(SHOTS / "9-live-counts.png"))

    assert errors == []
    assert before == 0  # nothing ran yet: no badges
    assert table == "2"  # the table keeps working beside the badges


def test_canvas_offers_the_orgs_event_types_as_the_person_types_one(org, other_org, live_server, member_factory):
    from django.utils import timezone

    from marketing.models import Event

    cookie = session_cookie(member_factory(org, Role.MARKETER, username="mara"), live_server)
    contact = ContactFactory(org=org)
    Event.objects.create(org=org, contact=contact, type="demo_booked", occurred_at=timezone.now(), message_id="d")
    with org_context(other_org):
        theirs = ContactFactory(org=other_org)
        Event.objects.create(
            org=other_org, contact=theirs, type="their_event", occurred_at=timezone.now(), message_id="t"
        )
    workflow = workflow_create(org=org, name="Welcome", slug="welcome", definition=DEFINITION)
    with chromium_page() as page:
        page.context.add_cookies([cookie])
        page.goto(f"{live_server.url}/admin/workflows/workflow/{workflow.pk}/change/")
        page.wait_for_selector(".react-flow__node[data-id=vip]")
        page.locator(".canvas-palette-item[data-palette=wait_for_event]").drag_to(
            page.locator(".canvas-flow"), target_position={"x": 380, "y": 520}
        )
        page.wait_for_selector(".react-flow__node[data-id=wait_for_event]")
        page.wait_for_selector(".canvas-side datalist option[value=demo_booked]", state="attached")
        offered = page.eval_on_selector_all(".canvas-side datalist option", "os => os.map(o => o.value)")
        field = page.locator(".canvas-side input[list]").first
        field.fill("demo_booked")
        page.get_by_role("tab", name="Advanced (JSON)").click()
        written = json.loads(page.input_value("textarea[aria-label='Definition (JSON)']"))

    assert "demo_booked" in offered and "email_opened" in offered  # stored in the org, and built in
    assert "their_event" not in offered
    step = next(s for s in written["steps"] if s["id"] == "wait_for_event")
    assert step["event"] == "demo_booked"
