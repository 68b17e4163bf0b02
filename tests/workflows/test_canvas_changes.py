"""The canvas's Changes tab and its Publish button in chromium: the draft compared with the live
version marks added steps green and changed ones amber (a step only moved is not marked), lists
a removed step with its type and every change in words; Publish saves a dirty draft first, then
goes to the console's publish page when runs are going (it asks, and lists the same changes), or
publishes at once when none are. Screenshots go to <temp dir>/canvas-shots/."""

import copy

from marketing.models import Role
from tests.factories import ContactFactory
from tests.workflows.test_canvas import SHOTS, chromium_page, session_cookie
from workflows.models import Workflow
from workflows.services import workflow_create, workflow_enrol_manually, workflow_publish, workflow_update

LIVE = {
    "trigger": {"type": "manual"},
    "steps": [
        {"id": "wait", "type": "delay", "name": "Wait a day", "config": {"duration": "P1D"}, "next": "engaged"},
        {
            "id": "engaged",
            "type": "condition",
            "name": "Engaged?",
            "condition": {"==": [{"var": "country"}, "DE"]},
            "true_next": "vip",
            "false_next": "done",
        },
        {"id": "vip", "type": "action", "name": "Tag as VIP", "action": "add_tag", "config": {"tags": ["vip"]}},
        {"id": "done", "type": "stop", "name": "Not engaged", "reason": "not engaged"},
    ],
}
for index, step in enumerate(LIVE["steps"]):
    step["position"] = {"x": 80 + 260 * (index // 2), "y": 140 * (index % 2 + 1)}


def draft() -> dict:
    """LIVE with "wait" moved, "done" replaced by a new "hello" step and the VIP tag renamed."""
    definition = copy.deepcopy(LIVE)
    wait, engaged, vip, _done = definition["steps"]
    wait["position"] = {"x": 40, "y": 100}
    engaged["false_next"] = "hello"
    vip["config"] = {"tags": ["very-important"]}
    hello = {"id": "hello", "type": "action", "name": "Say hello", "action": "log", "config": {"message": "hi"}}
    definition["steps"] = [wait, engaged, vip, {**hello, "position": {"x": 340, "y": 280}}]
    return definition


def published_with_draft(org, slug: str) -> Workflow:
    workflow = workflow_create(org=org, name=slug.title(), slug=slug, definition=LIVE)
    workflow_publish(workflow=workflow)
    workflow_update(workflow=workflow, draft_definition=draft())
    workflow.refresh_from_db()
    return workflow


def test_changes_are_marked_and_listed_and_publish_asks_about_running_runs(org, live_server, member_factory, drain):
    cookie = session_cookie(member_factory(org, Role.MARKETER, username="mara"), live_server)
    running = published_with_draft(org, "running")
    workflow_enrol_manually(workflow=running, contact_ids=[ContactFactory(org=org).pk], by=None)
    drain()  # the run waits at "wait"
    quiet = published_with_draft(org, "quiet")
    with chromium_page() as page:
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.context.add_cookies([cookie])
        page.goto(f"{live_server.url}/admin/workflows/workflow/{running.pk}/change/")
        page.wait_for_selector(".react-flow__node[data-id=vip]")
        page.get_by_role("tab", name="Changes").click()
        page.wait_for_selector(".canvas-changes-list li")
        marked = {
            step: page.locator(f".react-flow__node[data-id={step}] .canvas-node").get_attribute("class")
            for step in ("wait", "engaged", "vip", "hello")
        }
        badges = page.locator(".canvas-node-diff").all_inner_texts()
        removed = page.locator(".canvas-changes-removed li").all_inner_texts()
        listed = page.locator(".canvas-changes-list li").all_inner_texts()
        compared = page.inner_text("[data-compared]")
        sideways = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
        page.screenshot(path=str(SHOTS / "changes-1-tab.png"), full_page=False)

        # Two versions picked: nothing differs between version 1 and itself.
        page.get_by_label("With", exact=True).select_option("1")
        page.wait_for_selector(".canvas-changes-list li:text('No changes.')")
        unmarked = page.locator(".canvas-node.diff-added, .canvas-node.diff-changed").count()
        page.get_by_label("With", exact=True).select_option("draft")
        page.wait_for_selector(".canvas-node.diff-added")

        # A dirty draft (the new step moved) is saved, then the publish page asks about the run.
        node = page.locator(".react-flow__node[data-id=hello]").bounding_box()
        page.mouse.move(node["x"] + 40, node["y"] + 15)
        page.mouse.down()
        page.mouse.move(node["x"] + 140, node["y"] + 60, steps=10)
        page.mouse.up()
        page.wait_for_selector("text=Unsaved changes.")
        with page.expect_navigation():
            page.get_by_role("button", name="Publish", exact=True).click()
        heading = page.inner_text("#workflow-publish h1")
        asked = page.get_by_label("Keep them on version 1").is_checked()
        on_publish_page = page.locator("#publish-changes li").all_inner_texts()
        publish_sideways = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
        page.screenshot(path=str(SHOTS / "changes-2-publish-page.png"), full_page=True)

        # No runs going: Publish publishes at once and says so.
        page.goto(f"{live_server.url}/admin/workflows/workflow/{quiet.pk}/change/")
        page.wait_for_selector(".react-flow__node[data-id=vip]")
        page.get_by_role("button", name="Publish", exact=True).click()
        page.wait_for_selector(".canvas-message.success")
        said = page.inner_text(".canvas-message.success")

    assert not errors
    assert "diff-added" in marked["hello"] and "diff-changed" in marked["engaged"] and "diff-changed" in marked["vip"]
    assert "diff-" not in marked["wait"]  # only moved on the canvas
    assert sorted(badges) == ["Added", "Changed", "Changed"]
    assert removed == ["Not engaged (done) — End"]
    assert listed == [
        "Added “Say hello” (Log a line).",
        "Removed “Not engaged” (End).",
        "Changed “Engaged?” (Yes/no branch): where “No” leads.",
        "Changed “Tag as VIP” (Add tags): “Tags”.",
    ]
    assert compared.startswith("Comparing version 1 with the draft.")
    assert not sideways and not publish_sideways
    assert unmarked == 0
    assert heading == "Publish “Running”" and asked
    assert on_publish_page == listed
    running.refresh_from_db()
    moved = next(s for s in running.draft_definition["steps"] if s["id"] == "hello")["position"]
    assert moved != {"x": 340, "y": 280}  # saved before leaving for the publish page
    assert running.live_version.number == 1  # nothing published until the page is answered
    quiet.refresh_from_db()
    assert quiet.live_version.number == 2
    assert said.startswith("Published as version 2; new runs start on it (no runs were going).")
