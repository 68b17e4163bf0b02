"""Publishing a new version and moving running runs to it with a step map: from each kind of wait
(delay, event, approval, parallel branches), the checks that refuse a map, a run a batch holds,
the idempotency keys after a move, the API and the console's publish page."""

import tempfile
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.browser import CHROMIUM, CHROMIUM_ARGS, playwright_or_skip
from tests.factories import ContactFactory
from tests.workflows.conftest import only_instance
from workflows.models import Approval, WorkflowInstance, WorkflowStepRun
from workflows.services import approval_decide, workflow_enrol, workflow_publish, workflow_update

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
SHOTS = Path(tempfile.gettempdir()) / "publish-moves-shots"  # kept after the run, to look at


def log(step_id: str, next_step=None) -> dict:
    return {"id": step_id, "type": "action", "action": "log", "config": {"message": step_id}, "next": next_step}


def delay(step_id: str, duration: str, next_step=None) -> dict:
    return {"id": step_id, "type": "delay", "config": {"duration": duration}, "next": next_step}


def enrol(workflow, *contacts, now=T0) -> None:
    workflow_enrol(
        workflow=workflow, contact_ids=[c.pk for c in contacts], trigger_type="manual", trigger_key="k", now=now
    )


def republish(workflow, steps, *, migrate=None, by=None):
    workflow_update(workflow=workflow, draft_definition={"trigger": {"type": "manual"}, "steps": steps})
    return workflow_publish(workflow=workflow, migrate=migrate, by=by)


def path(instance) -> list[str]:
    runs = WorkflowStepRun.objects.filter(instance=instance, status="completed").order_by("id")
    return list(runs.values_list("step_id", flat=True))


def test_a_delay_keeps_its_wake_time_and_goes_on_in_the_new_version(org, contact, publish, drain, marketer):
    workflow = publish([delay("wait", "PT2H", "old"), log("old")])
    enrol(workflow, contact)
    drain(T0)
    before = only_instance(workflow)
    assert before.wake_at == T0 + timedelta(hours=2)

    version = republish(workflow, [delay("wait", "PT9H", "new"), log("new")], migrate={}, by=marketer)

    moved = only_instance(workflow)
    assert moved.version_id == version.pk and moved.wake_at == before.wake_at
    assert moved.tokens[0]["wait"] == before.tokens[0]["wait"]  # still wakes at T0 + 2 h, not 9 h
    [record] = moved.moves
    assert (record["from"], record["to"], record["map"], record["by"]) == (before.version_id, version.pk, {}, "mara")
    drain(T0 + timedelta(hours=1))
    assert path(only_instance(workflow)) == []
    drain(T0 + timedelta(hours=2, seconds=1))
    done = only_instance(workflow)
    assert done.status == "completed" and path(done) == ["wait", "new"]


def test_without_migrate_running_runs_stay_on_their_version(org, contact, publish, drain):
    workflow = publish([delay("wait", "PT2H", "old"), log("old")])
    enrol(workflow, contact)
    drain(T0)
    first = only_instance(workflow).version_id
    republish(workflow, [delay("wait", "PT2H", "new"), log("new")])
    assert only_instance(workflow).version_id == first
    drain(T0 + timedelta(hours=3))
    assert path(only_instance(workflow)) == ["wait", "old"]


def _ingest_click(org, email: str) -> None:
    from marketing.dispatch import dispatch_batch_run
    from marketing.ingestion import events_ingest, events_validate
    from marketing.models import DispatchBatch

    parsed, errors = events_validate([{"type": "email_clicked", "email": email}])
    events_ingest(org=org, items=parsed, errors=errors, source="api")
    for batch in DispatchBatch.objects.all():
        dispatch_batch_run(batch_id=batch.pk)


def _wait_for_click(step_id: str, arrived: str, timed_out: str) -> dict:
    return {
        "id": step_id,
        "type": "wait_for_event",
        "event": "email_clicked",
        "timeout": "P3D",
        "next": arrived,
        "timeout_next": timed_out,
    }


def test_a_wait_for_an_event_moves_and_the_event_still_wakes_it(org, publish, drain, eager_tasks):
    workflow = publish([_wait_for_click("w", "clicked", "gave_up"), log("clicked"), log("gave_up")])
    clicker, silent = ContactFactory(org=org, email="c@example.com"), ContactFactory(org=org, email="s@example.com")
    now = datetime.now(UTC)
    enrol(workflow, clicker, silent, now=now)
    drain(now)
    deadline = WorkflowInstance.objects.get(contact=silent).wake_at

    version = republish(
        workflow,
        [_wait_for_click("w2", "clicked2", "gave_up2"), log("clicked2"), log("gave_up2")],
        migrate={"map": {"w": "w2"}},
    )

    assert set(WorkflowInstance.objects.values_list("version_id", "current_step")) == {(version.pk, "w2")}
    _ingest_click(org, "c@example.com")
    drain()
    assert path(WorkflowInstance.objects.get(contact=clicker)) == ["w2", "clicked2"]
    waiting = WorkflowInstance.objects.get(contact=silent)
    assert waiting.status == "waiting" and waiting.waits_for_event and waiting.wake_at == deadline  # timeout kept
    drain(deadline + timedelta(seconds=1))
    assert path(WorkflowInstance.objects.get(contact=silent)) == ["w2", "gave_up2"]


def _approval(step_id: str, suffix: str) -> dict:
    return {
        "id": step_id,
        "type": "approval",
        "approvers": {"role": "marketer"},
        "timeout": "P1D",
        "approved_next": f"yes{suffix}",
        "rejected_next": f"no{suffix}",
        "timeout_next": f"late{suffix}",
    }


def test_an_approval_moves_with_its_run_and_deciding_it_goes_on_in_the_new_version(
    org, contact, publish, drain, marketer
):
    workflow = publish([_approval("ok", ""), log("yes"), log("no"), log("late")])
    now = datetime.now(UTC)
    enrol(workflow, contact, now=now)
    drain(now)
    approval = Approval.objects.get()
    assert approval.step_id == "ok"

    version = republish(
        workflow, [_approval("check", "2"), log("yes2"), log("no2"), log("late2")], migrate={"map": {"ok": "check"}}
    )

    approval.refresh_from_db()
    assert approval.step_id == "check" and approval.status == "pending"
    approval_decide(approval=approval, approved=True, by=marketer)
    drain()
    instance = only_instance(workflow)
    assert instance.version_id == version.pk and instance.status == "completed"
    assert path(instance) == ["check", "yes2"]


def test_parallel_branches_both_move_and_meet_at_the_merge(org, contact, publish, drain):
    def steps(a: str, b: str, after: str) -> list[dict]:
        return [
            {"id": "fork", "type": "parallel", "branches": [a, b]},
            delay(a, "PT1H", "join"),
            delay(b, "PT2H", "join"),
            {"id": "join", "type": "merge", "mode": "all", "next": after},
            log(after),
        ]

    workflow = publish(steps("short", "long", "done"))
    enrol(workflow, contact)
    drain(T0)
    assert sorted(t["step"] for t in only_instance(workflow).tokens) == ["long", "short"]

    version = republish(
        workflow, steps("short2", "long2", "done2"), migrate={"map": {"short": "short2", "long": "long2"}}
    )

    moved = only_instance(workflow)
    assert sorted(t["step"] for t in moved.tokens) == ["long2", "short2"] and moved.version_id == version.pk
    drain(T0 + timedelta(hours=1, seconds=1))
    assert only_instance(workflow).status == "waiting"  # one branch at the merge, one still waiting
    drain(T0 + timedelta(hours=2, seconds=1))
    done = only_instance(workflow)
    assert done.status == "completed", done.error
    assert path(done)[-2:] == ["join", "done2"] and {"short2", "long2"} <= set(path(done))


def test_a_removed_step_without_a_target_is_refused_naming_it_and_nothing_moves(org, publish, drain):
    workflow = publish(
        [
            {"id": "fork", "type": "parallel", "branches": ["d1", "d2"]},
            delay("d1", "PT1H", "j"),
            delay("d2", "PT1H", "j"),
            {"id": "j", "type": "merge", "mode": "all", "next": None},
        ]
    )
    enrol(workflow, ContactFactory(org=org))
    drain(T0)
    with pytest.raises(ValidationError) as refused:
        republish(workflow, [delay("d3", "PT1H")], migrate={})
    [message] = refused.value.message_dict["migrate"]
    assert "“d1”" in message and "“d2”" in message
    workflow.refresh_from_db()
    assert workflow.live_version.number == 1 and only_instance(workflow).version_id == workflow.live_version_id


def test_a_target_of_another_type_is_refused_naming_the_step(org, contact, publish, drain):
    workflow = publish([delay("wait", "PT1H", "after"), log("after")])
    enrol(workflow, contact)
    drain(T0)
    with pytest.raises(ValidationError) as refused:
        republish(workflow, [log("wait")], migrate={})  # same id, now an action
    assert "“wait” is a delay step" in refused.value.message_dict["migrate"][0]
    with pytest.raises(ValidationError) as refused:
        republish(workflow, [delay("pause", "PT1H", "after"), log("after")], migrate={"map": {"wait": "after"}})
    assert "“after” in version 2 is a action step" in refused.value.message_dict["migrate"][0]


def test_idempotency_keys_after_a_move_never_repeat_earlier_ones(org, contact, publish, drain):
    workflow = publish([log("hello", "first"), delay("first", "PT1M", "second"), delay("second", "PT1H")])
    enrol(workflow, contact)
    drain(T0)
    drain(T0 + timedelta(minutes=2))  # passed "first" (visit 1), waits at "second"
    # "second" becomes "first" again, and "hello" runs again after it.
    republish(workflow, [delay("first", "PT1M", "hello"), log("hello")], migrate={"map": {"second": "first"}})
    assert only_instance(workflow).tokens[0]["visit"] == 2
    drain(T0 + timedelta(hours=2))
    instance = only_instance(workflow)
    keys = list(WorkflowStepRun.objects.filter(instance=instance).values_list("idempotency_key", flat=True))
    assert len(keys) == len(set(keys)) == 4  # hello, first, then first and hello again
    assert {k for k in keys if ":hello:" in k} == {f"{instance.pk}:hello:1", f"{instance.pk}:hello:2"}
    assert f"{instance.pk}:first:2" in keys


# -- the API -----------------------------------------------------------------------------------


def _post(client, url, body=None):
    return client.post(url, body if body is not None else {}, content_type="application/json")


def test_the_api_publishes_with_a_map_and_answers_400_naming_steps(org, contact, publish, drain, api):
    workflow = publish([delay("wait", "PT2H", "old"), log("old")])
    enrol(workflow, contact)
    drain(T0)
    url = f"/api/v1/workflows/{workflow.pk}/publish/"
    workflow_update(
        workflow=workflow, draft_definition={"trigger": {"type": "manual"}, "steps": [delay("pause", "PT1H")]}
    )

    refused = _post(api, url, {"migrate": {}})
    assert refused.status_code == 400 and "“wait”" in refused.json()["migrate"][0]
    assert _post(api, url, {"migrate": {"map": {"wait": 3}}}).status_code == 400
    assert _post(api, url, {"migrate": {"map": {"wait": "nowhere"}}}).json()["migrate"] == [
        "“wait” cannot move to “nowhere”: version 2 has no such step."
    ]
    assert only_instance(workflow).version.number == 1

    published = _post(api, url, {"migrate": {"map": {"wait": "pause"}}})
    assert published.status_code == 200 and published.json()["live_version"]["number"] == 2
    instance = only_instance(workflow)
    assert (instance.version.number, instance.current_step) == (2, "pause")
    assert _post(api, url).json()["live_version"]["number"] == 3  # no body: runs stay
    assert only_instance(workflow).version.number == 2


# -- a run a batch holds -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_run_a_batch_holds_gets_migrate_to_and_moves_at_its_next_claim(
    org, contact, publish, drain, shared_database_url
):
    workflow = publish([delay("wait", "PT2H", "old"), log("old")])
    now = datetime.now(UTC)
    enrol(workflow, contact, now=now)
    drain(now)
    instance = only_instance(workflow)
    locked, release = threading.Event(), threading.Event()

    def hold():  # what a claiming batch does to the row, from another connection
        with psycopg.connect(shared_database_url) as other:
            other.execute("SET LOCAL ROLE NONE")  # a claim runs as the worker's login (engine.advance_batch)
            other.execute("SELECT id FROM workflows_workflowinstance WHERE id = %s FOR UPDATE", [instance.pk])
            locked.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(10)
    threading.Timer(0.5, release.set).start()  # the batch commits while the publish waits for it
    version = republish(workflow, [delay("renamed", "PT2H", "new"), log("new")], migrate={"map": {"wait": "renamed"}})
    holder.join(10)

    deferred = only_instance(workflow)
    assert deferred.version_id == instance.version_id and deferred.moves == []
    assert deferred.migrate_to["version"] == version.pk and deferred.migrate_to["map"] == {"wait": "renamed"}
    drain(now + timedelta(minutes=1))  # claimed: moved before anything runs; the delay goes on
    moved = only_instance(workflow)
    assert moved.version_id == version.pk and moved.migrate_to is None and moved.current_step == "renamed"
    assert moved.wake_at == now + timedelta(hours=2) and len(moved.moves) == 1
    drain(now + timedelta(hours=2, seconds=1))
    assert path(only_instance(workflow)) == ["renamed", "new"]


def test_a_deferred_move_the_run_outgrew_leaves_it_on_its_version(org, contact, publish, drain):
    workflow = publish([delay("wait", "PT1H", "later"), delay("later", "PT1H")])
    enrol(workflow, contact)
    drain(T0)
    version = republish(workflow, [delay("wait", "PT1H")])
    drain(T0 + timedelta(hours=1, seconds=1))  # the batch that held it moved it on to "later"
    # What the publish left on the held row (checked when "wait" was where it stood).
    WorkflowInstance.objects.filter(workflow=workflow).update(
        migrate_to={"version": version.pk, "number": 2, "map": {}, "by": None}, wake_at=T0 + timedelta(hours=1)
    )
    drain(T0 + timedelta(hours=1, seconds=2))
    instance = only_instance(workflow)
    assert instance.version.number == 1 and instance.migrate_to is None and instance.current_step == "later"
    assert instance.wake_at == T0 + timedelta(hours=2, seconds=1)  # the claim put back the delay's wake time
    assert "“later”" in instance.moves[0]["skipped"]


# -- the console's publish page ------------------------------------------------------------------


def _publish_button(client, workflow, **fields):
    """What the change page's "Publish the draft" button posts (plus the confirmation's fields)."""
    data = {"action": "publish", "_selected_action": [workflow.pk], "_from_change_page": "1", **fields}
    return client.post(reverse("admin:workflows_workflow_changelist"), data, follow=True)


@pytest.fixture
def waiting_two(org, publish, drain):
    """A workflow with one run at a delay and one at an approval, and a draft that renames both."""
    workflow = publish(
        [
            {
                "id": "route",
                "type": "condition",
                "condition": {"==": [{"var": "country"}, "DE"]},
                "true_next": "pause",
                "false_next": "ok",
            },
            delay("pause", "P1D", "bye"),
            _approval("ok", ""),
            log("bye"),
            log("yes"),
            log("no"),
            log("late"),
        ],
        slug="welcome",
    )
    enrol(workflow, ContactFactory(org=org, country="DE"), ContactFactory(org=org, country="FR"), now=datetime.now(UTC))
    drain()
    workflow_update(
        workflow=workflow,
        draft_definition={
            "trigger": {"type": "manual"},
            "steps": [
                {
                    "id": "route",
                    "type": "condition",
                    "condition": {"==": [{"var": "country"}, "DE"]},
                    "true_next": "cool_off",
                    "false_next": "review",
                },
                {**delay("cool_off", "PT1H", "pause"), "name": "Cool off"},
                delay("pause", "P2D", "bye"),  # "pause" keeps its id and type: it maps by itself
                _approval("review", "2"),
                log("bye"),
                log("yes2"),
                log("no2"),
                log("late2"),
            ],
        },
    )
    return workflow


def test_the_console_asks_and_keeps_runs_on_their_version_by_default(org, console, waiting_two):
    page = _publish_button(console, waiting_two)
    form = page.context["form"]
    assert page.templates[0].name == "admin/workflows/publish.html"
    assert [(r["step"], r["type"], r["runs"]) for r in page.context["waiting"]] == [
        ("ok", "approval", 1),
        ("pause", "delay", 1),
    ]
    assert form["runs"].initial == "keep" and list(form.fields) == ["runs", "map_ok"]  # only the removed step asks
    assert [c[0] for c in form.fields["map_ok"].choices] == ["", "review"]  # approval steps of the draft only
    assert "Keep them on version 1" in page.content.decode()
    # Who publishes sees what the draft changes from the live version, in words.
    changes = page.context["changes"]
    assert "Added “Cool off” (Wait)." in changes and "Removed “ok” (Ask for approval)." in changes
    assert "Changed “pause” (Wait): “Wait for”." in changes
    assert "<li>Changed “route” (Yes/no branch): where “Yes” leads, where “No” leads.</li>" in page.content.decode()

    done = _publish_button(console, waiting_two, apply="1", runs="keep")
    assert done.redirect_chain[-1][0] == reverse("admin:workflows_workflow_change", args=[waiting_two.pk])
    assert "2 running run(s) keep the version they started on." in [str(m) for m in done.context["messages"]]
    assert set(WorkflowInstance.objects.values_list("version__number", flat=True)) == {1}


def test_the_console_moves_runs_with_the_steps_chosen_and_says_what_is_missing(org, console, marketer, waiting_two):
    missing = _publish_button(console, waiting_two, apply="1", runs="move")
    assert missing.context["form"].errors == {"map_ok": ["Choose where the runs waiting at “ok” go."]}
    waiting_two.refresh_from_db()
    assert waiting_two.live_version.number == 1

    done = _publish_button(console, waiting_two, apply="1", runs="move", map_ok="review")
    assert "2 running run(s) moved to version 2." in [str(m) for m in done.context["messages"]]
    steps = dict(WorkflowInstance.objects.values_list("current_step", "version__number"))
    assert steps == {"pause": 2, "review": 2}
    assert Approval.objects.get().step_id == "review"
    assert {i.moves[0]["by"] for i in WorkflowInstance.objects.all()} == {"mara"}


def test_the_publish_page_counts_runs_per_step_in_one_query_however_many_there_are(org, console, waiting_two):
    with CaptureQueriesContext(connection) as few:
        page = _publish_button(console, waiting_two)
    assert [(r["step"], r["runs"]) for r in page.context["waiting"]] == [("ok", 1), ("pause", 1)]

    at_pause = WorkflowInstance.objects.get(workflow=waiting_two, current_step="pause")
    for n in range(12):  # more runs at both steps; one of them waits at "pause" on two branches
        at_pause.pk, at_pause.trigger_key = None, f"more-{n}"
        at_pause.contact = ContactFactory(org=org)
        if n == 0:
            at_pause.tokens = [*at_pause.tokens, *at_pause.tokens]
        at_pause.save()
    with CaptureQueriesContext(connection) as many:
        page = _publish_button(console, waiting_two)
    assert [(r["step"], r["runs"]) for r in page.context["waiting"]] == [("ok", 1), ("pause", 13)]
    assert len(many) == len(few)  # nothing per run or per step
    grouped = [q["sql"] for q in many if "jsonb_array_elements" in q["sql"]]
    assert len(grouped) == 1 and "GROUP BY" in grouped[0]


@pytest.mark.slow
def test_moving_runs_in_chromium_from_the_publish_button(org, marketer, live_server, waiting_two):
    sync_playwright = playwright_or_skip()
    change = reverse("admin:workflows_workflow_change", args=[waiting_two.pk])
    SHOTS.mkdir(exist_ok=True)
    client = Client()
    client.force_login(marketer)  # the login form is the theme's to test
    session = {"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value}
    session["url"] = live_server.url
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            page.context.add_cookies([session])
            page.goto(live_server.url + change)
            with page.expect_navigation():
                page.get_by_role("button", name="Publish the draft").click()
            waiting = page.locator("#publish-waiting tbody tr").all_inner_texts()
            sideways = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
            page.screenshot(path=str(SHOTS / "1-ask.png"), full_page=True)
            page.get_by_label("Move them to the new version").check()
            with page.expect_navigation():
                page.get_by_role("button", name="Publish version 2").click()
            refused = page.inner_text(".errorlist")  # the approval step still needs its target
            page.get_by_label("Runs waiting at “ok” (approval) go to").select_option("review")
            with page.expect_navigation():
                page.get_by_role("button", name="Publish version 2").click()
            page.screenshot(path=str(SHOTS / "2-moved.png"), full_page=True)
            message = page.get_by_text("running run(s)").inner_text()
        finally:
            browser.close()

    assert [row.split("\t") for row in waiting] == [["v1", "ok", "approval", "1"], ["v1", "pause", "delay", "1"]]
    assert not sideways
    assert refused == "Choose where the runs waiting at “ok” go."
    assert message == "2 running run(s) moved to version 2."
    assert dict(WorkflowInstance.objects.values_list("current_step", "version__number")) == {"pause": 2, "review": 2}
