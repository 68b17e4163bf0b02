"""The marketer's story, in headless chromium against the production shape (daphne serving the
ASGI app with its websockets, a Celery worker running the engine): signed in as a marketer, she
adds a workflow, sets its trigger to "form submitted" and drags "send email → wait 2 days →
opened? → tag" from the palette onto the canvas, links the steps by dragging exit to step and
fills each step's form by picking from lists, never typing JSON; she publishes, enrols a contact
from the contact list with the workflow page open in another tab, sees the step counts change
there as the worker moves the run, and runs a dry run that highlights the path. Screenshots of
each stage go to the temp dir's console-acceptance-shots/."""

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from django_scopes import scopes_disabled

from channels_app.models import MessageTemplate
from channels_app.template_versions import template_publish
from marketing.models import Role
from marketing.tenancy import org_context
from tests import browser
from tests.factories import ContactFactory, TagFactory
from tests.workflows.test_end_to_end import worker  # noqa: F401 (a fixture: a Celery worker process)
from tests.workflows.test_live_status import serve_static, server  # noqa: F401 (server is a fixture)
from workflows.models import Workflow, WorkflowInstance

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

JSON_EDITORS = "textarea[name=draft_definition], textarea[aria-label='Definition (JSON)']"
NODE = ".react-flow__node[data-id='{}']"
EVENT = re.compile(r"^Event\b")  # "Event *": a required field


def in_thread(org, read):
    """``read()`` in a thread of its own, in ``org``: Playwright keeps an event loop in this one,
    where Django refuses database calls."""

    def target():
        try:
            with org_context(org), scopes_disabled():
                return read()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(target).result()


def drop(page, palette: str, x: int, y: int) -> None:
    """Drags a palette entry onto the canvas (HTML drag and drop, as a mouse does)."""
    page.locator(f".canvas-palette-item[data-palette={palette}]").drag_to(
        page.locator(".canvas-flow"), target_position={"x": x, "y": y}
    )


def link(page, source: str, exit_handle: str, target: str) -> None:
    """Drags from a step's exit dot to another step (React Flow follows pointer moves)."""
    start = page.locator(f"{NODE.format(source)} .react-flow__handle[data-handleid={exit_handle}]").bounding_box()
    end = page.locator(f"{NODE.format(target)} .react-flow__handle.target").bounding_box()
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + end["height"] / 2, steps=12)
    page.mouse.up()
    page.wait_for_selector(f".react-flow__edge[data-id='{source}:{exit_handle}']", state="attached")


def json_shown(page) -> bool:
    return any(box.is_visible() for box in page.locator(JSON_EDITORS).all())


def test_a_marketer_builds_publishes_enrols_watches_and_dry_runs_a_workflow_without_json(
    org,
    member_factory,
    server,  # noqa: F811
    worker,  # noqa: F811
):
    member_factory(org, Role.MARKETER, username="mara")
    variants = [{"name": "A", "weight": 1, "subject": "Thanks", "html": "<p>Thanks!</p>", "text": "Thanks!"}]
    welcome = MessageTemplate.objects.create(
        org=org, slug="thanks", name="Thanks for asking", channel="email", purpose="marketing", variants=variants
    )
    template_publish(template=welcome)
    TagFactory(org=org, name="engaged")
    TagFactory(org=org, name="cold")
    ContactFactory(org=org, first_name="Dora", last_name="Demo", email="dora@example.com")
    shots = browser.shots_dir("console-acceptance-shots")
    seen: dict = {}

    with browser.launch() as chromium:
        context = chromium.new_context(viewport={"width": browser.WIDTH, "height": 768})
        context.route("**/static/**", serve_static)  # daphne serves the app; WhiteNoise static in production
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        # 1. A new workflow from the console's add page: a name, no JSON.
        browser.login(page, server.origin, "mara", next_url="/admin/workflows/workflow/add/")
        page.get_by_label("Name").first.fill("Form follow-up")
        seen["add_json"] = json_shown(page)
        page.screenshot(path=str(shots / "1-add.png"), full_page=True)
        browser.assert_no_sideways_scroll(page)
        with page.expect_navigation():
            page.locator("[name=_continue]").click()
        page.wait_for_selector(".react-flow__node[data-id=start]")
        workflow_id = int(page.url.rstrip("/").split("/")[-2])
        seen["opened_json"] = json_shown(page)
        page.screenshot(path=str(shots / "2-new-canvas.png"), full_page=True)

        # 2. The starter step goes; the trigger becomes "a form is submitted".
        page.locator(NODE.format("start")).click()
        page.get_by_role("button", name="Delete this step").click()
        page.locator(NODE.format("__trigger")).click()
        page.get_by_label("Trigger", exact=True).select_option(label="An event happens")
        page.get_by_label(EVENT).fill("form_submitted")

        # 3. Four steps dragged from the palette, each form filled from lists.
        drop(page, "send_email", 200, 170)
        page.wait_for_selector(NODE.format("send_email"))
        page.wait_for_selector(".canvas-side select option[value=thanks]", state="attached")
        page.get_by_label("Template").select_option("thanks")
        page.get_by_label("Name on the canvas").fill("Send the thank-you")

        drop(page, "delay", 200, 290)
        page.wait_for_selector(NODE.format("delay"))
        duration = page.locator(".canvas-side .canvas-duration").first  # the duration widget: a number, a unit
        duration.locator("input").fill("2")
        duration.locator("select").select_option(label="days")
        page.get_by_label("Name on the canvas").fill("Two days")

        drop(page, "wait_for_event", 200, 410)
        page.wait_for_selector(NODE.format("wait_for_event"))
        page.get_by_label(EVENT).fill("email_opened")
        timeout = page.locator(".canvas-side .canvas-duration").first
        timeout.locator("input").fill("3")
        timeout.locator("select").select_option(label="days")
        page.get_by_label("Name on the canvas").fill("Opened?")

        drop(page, "add_tag", 200, 530)
        page.wait_for_selector(NODE.format("add_tag"))
        page.wait_for_selector(".canvas-side select option[value=engaged]", state="attached")
        page.get_by_label("Tags").select_option(["engaged"])
        page.get_by_label("Name on the canvas").fill("Tag as engaged")

        # 4. Linked exit to step, by dragging: sent → wait → opened? → (arrived) tag.
        link(page, "send_email", "next", "delay")
        link(page, "delay", "next", "wait_for_event")
        link(page, "wait_for_event", "next", "add_tag")
        seen["titles"] = page.locator(".react-flow__node .canvas-node-title").all_inner_texts()
        seen["trigger_kind"] = page.inner_text(f"{NODE.format('__trigger')} .canvas-node-kind")
        seen["built_json"] = json_shown(page)
        page.screenshot(path=str(shots / "3-built.png"), full_page=True)
        browser.assert_no_sideways_scroll(page)

        page.get_by_role("button", name="Save draft").click()
        page.wait_for_selector(".canvas-message.success")
        seen["saved"] = page.inner_text(".canvas-toolbar .canvas-message")
        seen["draft"] = in_thread(org, lambda: Workflow.objects.get(pk=workflow_id).draft_definition)
        page.locator("[data-workflow-canvas]").get_by_role("button", name="Publish", exact=True).click()
        page.wait_for_selector(".canvas-message.success >> text=Published")
        seen["published"] = page.inner_text(".canvas-toolbar .canvas-message")
        seen["live"] = in_thread(org, lambda: Workflow.objects.get(pk=workflow_id).live_version.definition)
        page.screenshot(path=str(shots / "4-published.png"), full_page=True)

        # 5. The workflow page open (reloaded: its runs now), a contact enrolled from another tab.
        page.reload()
        page.wait_for_selector(NODE.format("add_tag"))
        page.wait_for_selector("#workflow-live[data-state='live']")
        seen["badges_before"] = page.locator(".react-flow__node .canvas-count").count()
        contacts = context.new_page()
        contacts.goto(f"{server.origin}/admin/marketing/contact/")
        contacts.get_by_role("row", name="dora@example.com").get_by_role("checkbox").check()
        contacts.locator("select[name=action]").select_option(label="Enrol in a workflow…")
        with contacts.expect_navigation():
            contacts.locator("button[name=index], [type=submit][name=index]").first.click()
        contacts.get_by_label("Workflow").select_option(label="Form follow-up")
        contacts.screenshot(path=str(shots / "5-enrol.png"), full_page=True)
        with contacts.expect_navigation():
            contacts.get_by_role("button", name="Enrol").click()
        seen["enrolled"] = contacts.inner_text("body")
        contacts.close()

        # 6. The worker runs the send and reaches the wait; the socket tells the open page.
        page.bring_to_front()
        page.wait_for_function(
            "document.querySelector(arguments[0])?.textContent === '1 waiting'".replace(
                "arguments[0]", f'"{NODE.format("delay")} .canvas-count[data-count=waiting]"'
            ),
            timeout=30000,
        )
        seen["badges"] = {
            step: page.locator(f"{NODE.format(step)} .canvas-count").all_inner_texts()
            for step in ("send_email", "delay", "wait_for_event", "add_tag")
        }
        seen["runs"] = in_thread(
            org, lambda: list(WorkflowInstance.objects.filter(workflow_id=workflow_id).values_list("status", flat=True))
        )
        page.screenshot(path=str(shots / "6-live-counts.png"), full_page=True)

        # 7. A dry run for the contact: the path taken is highlighted.
        page.get_by_role("tab", name="Dry run").click()
        page.get_by_role("textbox", name="Contact").fill("dora")
        page.get_by_role("option", name="Dora Demo").click()
        page.get_by_role("button", name="Run dry run").click()
        page.wait_for_selector(f"{NODE.format('wait_for_event')} .canvas-node.dry-taken")
        seen["dry"] = {
            step: page.get_attribute(f"{NODE.format(step)} .canvas-node", "class")
            for step in ("send_email", "delay", "wait_for_event", "add_tag")
        }
        seen["dry_edges"] = sorted(
            page.eval_on_selector_all(".react-flow__edge.dry-taken", "es => es.map(e => e.dataset.id)")
        )
        seen["decision"] = page.inner_text(f"{NODE.format('wait_for_event')} .canvas-node-decision")
        seen["dry_json"] = json_shown(page)
        page.screenshot(path=str(shots / "7-dry-run.png"), full_page=True)
        browser.assert_no_sideways_scroll(page)

        # 8. Again, with the email opened two days and five hours in (after the wait): the tag is reached.
        page.get_by_role("button", name="Add an event").click()
        page.locator("#dry-event-1-type").select_option("email_opened")
        page.get_by_label("Event 1: days after the start").fill("2")
        page.get_by_label("Event 1: hours after the start").fill("5")
        page.get_by_role("button", name="Run dry run").click()
        page.wait_for_selector(f"{NODE.format('add_tag')} .canvas-node.dry-taken")
        seen["dry_opened"] = {
            step: page.get_attribute(f"{NODE.format(step)} .canvas-node", "class")
            for step in ("send_email", "delay", "wait_for_event", "add_tag")
        }
        seen["decision_opened"] = page.inner_text(f"{NODE.format('wait_for_event')} .canvas-node-decision")
        seen["dry_opened_json"] = json_shown(page)
        page.screenshot(path=str(shots / "8-dry-run-opened.png"), full_page=True)
        seen["runs_after_dry_run"] = in_thread(
            org, lambda: WorkflowInstance.objects.filter(workflow_id=workflow_id).count()
        )

    assert errors == []
    never = ("add_json", "opened_json", "built_json", "dry_json", "dry_opened_json")
    assert [seen[k] for k in never] == [False] * 5  # never JSON
    assert seen["titles"] == ["Starts when", "Send the thank-you", "Two days", "Opened?", "Tag as engaged"]
    assert seen["trigger_kind"] == "An event happens: form_submitted"
    assert seen["saved"] == "Draft saved."
    draft = seen["draft"]
    assert draft["trigger"] == {"type": "event", "event": "form_submitted"}
    assert [graph(step) for step in draft["steps"]] == [
        ("send_email", "action", {"action": "send_email", "config": {"template": "thanks"}}, {"next": "delay"}),
        ("delay", "delay", {"config": {"duration": "P2D"}}, {"next": "wait_for_event"}),
        (
            "wait_for_event",
            "wait_for_event",
            {"event": "email_opened", "timeout": "P3D"},
            {"next": "add_tag", "timeout_next": None},
        ),
        ("add_tag", "action", {"action": "add_tag", "config": {"tags": ["engaged"]}}, {"next": None}),
    ]
    assert seen["published"].startswith("Published as version 1")
    assert seen["live"] == draft  # what was saved is what runs
    assert seen["badges_before"] == 0
    assert "Enrolled 1 contact(s) in “Form follow-up”." in seen["enrolled"]
    assert seen["badges"] == {"send_email": ["1 done"], "delay": ["1 waiting"], "wait_for_event": [], "add_tag": []}
    assert seen["runs"] == ["waiting"]
    # No email opened in the dry run: the wait times out, and the tag is never reached.
    assert all("dry-taken" in seen["dry"][step] for step in ("send_email", "delay", "wait_for_event"))
    assert "dry-skipped" in seen["dry"]["add_tag"] and "dry-taken" not in seen["dry"]["add_tag"]
    assert seen["dry_edges"] == ["delay:next", "send_email:next", "start"]
    assert seen["decision"] == "Timed out"
    # With the simulated open, every step is on the path and the wait ends by the event.
    assert all("dry-taken" in seen["dry_opened"][step] for step in seen["dry_opened"])
    assert seen["decision_opened"] == "Arrived"
    assert seen["runs_after_dry_run"] == 1  # nothing ran for real


def graph(step: dict) -> tuple:
    """A step as (id, type, its settings, its exits), without its name and canvas position."""
    exits = {k: v for k, v in step.items() if k.endswith("next")}
    settings = {k: v for k, v in step.items() if k not in {"id", "type", "name", "position", "on_error", *exits}}
    assert step.get("on_error") is None  # an action's "if it fails" exit, left open
    return step["id"], step["type"], settings, exits
