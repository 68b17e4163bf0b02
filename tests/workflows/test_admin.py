"""The workflow pages of the console: every page loads (in a bounded number of queries), the
definition is checked on save with errors at the field naming the step, the actions call the
services and are refused without the change permission, other orgs' rows are out of reach, and
contacts and segments are enrolled by hand."""

import json

import pytest
from django.test import Client
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from marketing.models import Role
from marketing.segments import segment_add_contacts
from marketing.tenancy import org_context
from tests.factories import ContactFactory, SegmentFactory
from workflows.models import (
    Approval,
    AutomationExecution,
    Delivery,
    ScheduledJob,
    Workflow,
    WorkflowInstance,
    WorkflowTemplate,
)
from workflows.scheduled_jobs import scheduled_job_save
from workflows.services import workflow_create, workflow_enrol_manually, workflow_publish

HELLO_WAIT_BYE = [
    {"id": "hello", "type": "action", "action": "log", "config": {"message": "hello"}, "next": "wait"},
    {"id": "wait", "type": "delay", "config": {"duration": "P1D"}, "next": "bye"},
    {"id": "bye", "type": "action", "action": "log", "config": {"message": "bye"}, "next": None},
]
ASK = [
    {
        "id": "ask",
        "type": "approval",
        "approvers": {"role": "marketer"},
        "timeout": "P1D",
        "approved_next": "yes",
        "rejected_next": "no",
        "timeout_next": None,
    },
    {"id": "yes", "type": "action", "action": "log", "config": {"message": "approved"}, "next": None},
    {"id": "no", "type": "action", "action": "log", "config": {"message": "rejected"}, "next": None},
]


def url(name: str, *args) -> str:
    return reverse(f"admin:workflows_{name}", args=args)


def client_for(member_factory, org, role) -> Client:
    client = Client()
    client.force_login(member_factory(org, role))
    return client


def act(client, model: str, action: str, objects, **extra):
    """Runs a changelist action on ``objects`` (following the redirect)."""
    data = {"action": action, "_selected_action": [o.pk for o in objects], **extra}
    return client.post(url(f"{model}_changelist"), data, follow=True)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def definition(steps, trigger=None) -> str:
    return json.dumps({"trigger": trigger or {"type": "manual"}, "steps": steps})


def enrol(workflow, contacts) -> int:
    return workflow_enrol_manually(workflow=workflow, contact_ids=[c.pk for c in contacts])


@pytest.fixture
def contacts(org):
    return ContactFactory.create_batch(3, org=org)


@pytest.fixture
def running(org, publish, contacts, drain):
    """A published workflow whose three runs said hello and wait a day."""
    workflow = publish(HELLO_WAIT_BYE, slug="welcome")
    enrol(workflow, contacts)
    drain()
    return workflow


@pytest.fixture
def theirs(other_org):
    """A published workflow of org B, with a run, that org A's users must never reach."""
    from marketing.tenancy import org_context

    with org_context(other_org):
        workflow = workflow_create(
            org=other_org, name="Globex secret", slug="globex", definition=json.loads(definition(HELLO_WAIT_BYE))
        )
        workflow_publish(workflow=workflow)
        workflow.refresh_from_db()
        enrol(workflow, [ContactFactory(org=other_org, email="secret@globex.example")])
    return workflow


# --- pages ---------------------------------------------------------------------------------------


@pytest.fixture
def everything(org, publish, drain, marketer):
    """A few rows of every workflow model, so each list has something to show per row."""
    contacts = ContactFactory.create_batch(12, org=org)
    running = publish(HELLO_WAIT_BYE, slug="welcome")
    asking = publish(ASK, slug="asking")
    enrol(running, contacts)
    enrol(asking, contacts)
    drain()
    instances = list(WorkflowInstance.objects.filter(workflow=running))
    for n, instance in enumerate(instances):
        Delivery.objects.create(
            org=org,
            instance=instance,
            step_id="hello",
            idempotency_key=f"{instance.pk}:hook:1",
            action="webhook",
            request={"url": "https://hooks.example/x", "secret": "s3cret", "n": n},
        )
    WorkflowInstance.objects.filter(workflow=asking).update(status="cancelled")  # so the list has executions
    for instance in WorkflowInstance.objects.filter(workflow=asking):
        AutomationExecution.objects.create(
            org=org,
            workflow=asking,
            instance=instance,
            contact_id=instance.contact_id,
            status="cancelled",
            started_at=instance.triggered_at,
            finished_at=instance.triggered_at,
        )
    for n in range(12):
        WorkflowTemplate.objects.create(
            org=org, slug=f"t{n}", name=f"Template {n}", category="campaign", definition={"steps": []}
        )
        scheduled_job_save(
            job=ScheduledJob(org=org, workflow=running, name=f"job {n}"),
            kind="recurring",
            every_seconds=3600,
            segment=SegmentFactory(org=org),
        )
    return {"workflow": running, "instance": instances[0], "approval": Approval.objects.first()}


LISTS = [  # deliveries are System internals: org admins only (below)
    "workflow",
    "workflowversion",
    "workflowinstance",
    "approval",
    "workflowtemplate",
    "scheduledjob",
    "automationexecution",
]


@pytest.mark.parametrize("model", LISTS)
def test_every_list_loads_for_a_marketer_in_few_queries(org, console, everything, model, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        response = console.get(url(f"{model}_changelist"))
    assert response.status_code == 200
    assert response.context["cl"].result_count >= 2


def test_every_change_and_add_page_loads(org, console, everything):
    workflow, instance, approval = everything["workflow"], everything["instance"], everything["approval"]
    pages = [
        url("workflow_add"),
        url("workflow_change", workflow.pk),
        url("workflowversion_change", workflow.live_version_id),
        url("workflowinstance_change", instance.pk),
        url("approval_change", approval.pk),
        url("workflowtemplate_add"),
        url("workflowtemplate_change", WorkflowTemplate.objects.first().pk),
        url("scheduledjob_add"),
        url("scheduledjob_change", ScheduledJob.objects.first().pk),
        url("automationexecution_change", AutomationExecution.objects.first().pk),
    ]
    for page in pages:
        assert console.get(page).status_code == 200, page


def test_a_runs_page_shows_its_state_and_step_runs_read_only(org, console, running):
    instance = WorkflowInstance.objects.filter(workflow=running).first()
    page = console.get(url("workflowinstance_change", instance.pk))
    html = page.content.decode()

    assert page.status_code == 200
    assert "hello" in html and "&quot;step&quot;: &quot;wait&quot;" in html  # the step run and the token
    assert 'name="_save"' not in html  # nothing to save: runs change through the actions
    assert [run.step_id for run in page.context["inline_admin_formsets"][0].formset.get_queryset()] == ["hello"]


def test_a_deliverys_signing_secret_is_not_shown(org, member_factory, everything):
    admin_client = Client()
    admin_client.force_login(member_factory(org, Role.ADMIN))
    page = admin_client.get(url("delivery_change", Delivery.objects.first().pk)).content.decode()
    assert "hooks.example" in page
    assert "s3cret" not in page


def test_deliveries_and_step_runs_are_read_only_for_org_admins_and_hidden_from_marketers(
    org, console, member_factory, everything
):
    admin_client = Client()
    admin_client.force_login(member_factory(org, Role.ADMIN))
    for model in ("delivery", "workflowsteprun"):
        listing = admin_client.get(url(f"{model}_changelist"))
        assert listing.status_code == 200 and listing.context["cl"].result_count >= 1
        assert not listing.context["has_add_permission"]
        assert console.get(url(f"{model}_changelist")).status_code == 403
    delivery = Delivery.objects.first()
    assert 'name="_save"' not in admin_client.get(url("delivery_change", delivery.pk)).content.decode()
    assert admin_client.post(url("delivery_delete", delivery.pk), {"post": "yes"}).status_code == 403


# --- the workflow form ---------------------------------------------------------------------------


def test_a_new_workflow_is_saved_through_the_service_as_a_draft(org, console, marketer):
    response = console.post(
        url("workflow_add"),
        {"name": "Welcome", "slug": "welcome", "description": "", "draft_definition": definition(HELLO_WAIT_BYE)},
    )

    assert response.status_code == 302
    workflow = Workflow.objects.get(slug="welcome")
    assert workflow.status == Workflow.Status.DRAFT
    assert workflow.created_by == marketer
    assert [s["id"] for s in workflow.draft_definition["steps"]] == ["hello", "wait", "bye"]


def test_the_add_page_starts_from_a_valid_definition(org, console):
    text = console.get(url("workflow_add")).context["adminform"].form["draft_definition"].value()
    response = console.post(url("workflow_add"), {"name": "S", "slug": "s", "draft_definition": text})
    assert response.status_code == 302


@pytest.mark.parametrize(
    ("steps", "named"),
    [
        (
            [{"id": "hello", "type": "action", "action": "log", "config": {"message": "hi"}, "next": "nowhere"}],
            "steps[hello].next",
        ),
        ([{"id": "nap", "type": "delay", "config": {"duration": "soon"}, "next": None}], "steps[nap].config.duration"),
        ([{"id": "boom", "type": "action", "action": "explode", "next": None}], "steps[boom]"),
    ],
)
def test_a_bad_definition_is_refused_at_the_definition_naming_the_step(org, console, steps, named):
    response = console.post(
        url("workflow_add"), {"name": "Bad", "slug": "bad", "description": "", "draft_definition": definition(steps)}
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["draft_definition"]
    assert any(error.startswith(named) for error in errors), errors
    assert named in response.content.decode()
    assert not Workflow.objects.filter(slug="bad").exists()


def test_editing_checks_the_definition_and_keeps_the_old_draft_on_error(org, console, running):
    change = url("workflow_change", running.pk)
    bad = [{"id": "hello", "type": "action", "action": "log", "config": {}, "next": None}]
    refused = console.post(change, {"name": "Renamed", "slug": "welcome", "draft_definition": definition(bad)})
    errors = refused.context["adminform"].form.errors["draft_definition"]
    running.refresh_from_db()

    assert any(e.startswith("steps[hello].config") for e in errors), errors
    assert running.name == "welcome"
    assert [s["id"] for s in running.draft_definition["steps"]] == ["hello", "wait", "bye"]

    saved = console.post(change, {"name": "Renamed", "slug": "welcome", "draft_definition": definition(ASK)})
    running.refresh_from_db()
    assert saved.status_code == 302
    assert running.name == "Renamed"
    assert running.draft_definition["steps"][0]["id"] == "ask"
    assert running.live_version.definition["steps"][0]["id"] == "hello"  # runs keep the published one


def test_a_taken_slug_is_refused_at_the_slug(org, console, publish):
    publish(HELLO_WAIT_BYE, slug="taken")
    mine = publish(HELLO_WAIT_BYE, slug="mine")
    for page in (url("workflow_add"), url("workflow_change", mine.pk)):
        response = console.post(page, {"name": "X", "slug": "taken", "draft_definition": definition(HELLO_WAIT_BYE)})
        assert response.status_code == 200
        assert response.context["adminform"].form.errors["slug"]


def test_the_change_page_shows_live_counts_analytics_and_versions(org, console, running, django_assert_max_num_queries):
    # A fixed cost beside the page's own: the sidebar's permission checks, the org switcher.
    with django_assert_max_num_queries(20):
        page = console.get(url("workflow_change", running.pk))
    steps = {step["id"]: step for step in page.context["live_steps"]}
    html = page.content.decode()

    assert list(steps) == ["hello", "wait", "bye"]
    assert steps["hello"]["counts"] == {"waiting": 0, "running": 0, "done": 3, "failed": 0}
    assert steps["wait"]["counts"] == {"waiting": 3, "running": 0, "done": 0, "failed": 0}
    assert page.context["analytics"]["enrolled"] == 3
    assert page.context["analytics"]["active"] == 3
    assert steps["hello"]["analytics"]["runs"] == 3
    assert [v.number for v in page.context["versions"]] == [1]
    # Rendered on load, and the script that keeps them current over the websocket.
    assert '<tr data-step="wait">' in html
    assert '<td data-count="waiting">3</td>' in html
    assert f"/ws/workflows/{running.pk}/" in html
    assert "workflows/live_status.js" in html


def test_the_counts_endpoint_gives_the_counts_now(org, console, running, other_org, theirs):
    assert console.get(url("workflow_counts", running.pk)).json()["counts"]["wait"]["waiting"] == 3
    assert console.get(url("workflow_counts", theirs.pk)).status_code == 404


# --- workflow actions ----------------------------------------------------------------------------


def test_publish_pause_resume_and_archive(org, console, marketer, running):
    draft = Workflow.objects.get(pk=running.pk)
    console.post(
        url("workflow_change", draft.pk), {"name": "welcome", "slug": "welcome", "draft_definition": definition(ASK)}
    )

    published = act(console, "workflow", "publish", [running], apply="1", runs="keep")  # its runs: keep them
    running.refresh_from_db()
    assert running.live_version.number == 2 and running.live_version.published_by == marketer
    assert "“welcome” published as version 2." in messages_of(published)

    act(console, "workflow", "pause", [running])
    running.refresh_from_db()
    assert running.status == Workflow.Status.PAUSED
    assert set(WorkflowInstance.objects.filter(workflow=running).values_list("status", flat=True)) == {"paused"}

    act(console, "workflow", "resume", [running])
    running.refresh_from_db()
    assert running.status == Workflow.Status.ACTIVE
    assert set(WorkflowInstance.objects.filter(workflow=running).values_list("status", flat=True)) == {"waiting"}

    archived = act(console, "workflow", "archive", [running])
    running.refresh_from_db()
    assert running.status == Workflow.Status.ARCHIVED
    assert set(WorkflowInstance.objects.filter(workflow=running).values_list("status", flat=True)) == {"cancelled"}
    assert "“welcome” archived; 3 run(s) cancelled." in messages_of(archived)


def test_a_draft_that_no_longer_validates_is_not_published_and_says_why(org, console, publish):
    workflow = publish(HELLO_WAIT_BYE, slug="stale")
    Workflow.objects.filter(pk=workflow.pk).update(draft_definition={"trigger": {"type": "manual"}, "steps": []})

    response = act(console, "workflow", "publish", [workflow])

    assert any(m.startswith("“stale” was not published: definition.steps") for m in messages_of(response))
    workflow.refresh_from_db()
    assert workflow.live_version.number == 1


def test_pause_and_resume_say_why_a_workflow_in_another_state_is_left_alone(org, console, running):
    draft = workflow_create(org=org, name="Draft", slug="draft", definition=json.loads(definition(HELLO_WAIT_BYE)))

    paused = messages_of(act(console, "workflow", "pause", [running, draft]))
    resumed = messages_of(act(console, "workflow", "resume", [draft]))

    draft.refresh_from_db()
    running.refresh_from_db()
    assert draft.status == Workflow.Status.DRAFT and running.status == Workflow.Status.PAUSED
    assert "“welcome” paused; 3 run(s) stopped." in paused
    assert any(m.startswith("“Draft” was not paused: Only active") for m in paused), paused
    assert any(m.startswith("“Draft” was not resumed: Only paused") for m in resumed), resumed


def test_only_a_workflow_never_published_is_deleted(org, console, running):
    draft = workflow_create(org=org, name="Draft", slug="draft", definition=json.loads(definition(HELLO_WAIT_BYE)))

    refused = console.post(url("workflow_delete", running.pk), {"post": "yes"}, follow=True)
    console.post(url("workflow_delete", draft.pk), {"post": "yes"})
    in_bulk = act(console, "workflow", "delete_selected", [running], post="yes")

    assert any("archive it instead" in m for m in messages_of(refused))
    assert any("archive it instead" in m for m in messages_of(in_bulk))
    assert list(Workflow.objects.values_list("slug", flat=True)) == ["welcome"]
    assert WorkflowInstance.objects.filter(workflow=running).count() == 3


def test_a_button_on_the_change_page_comes_back_to_it(org, console, running):
    page = console.get(url("workflow_change", running.pk)).content.decode()
    assert 'name="action" value="pause"' in page

    response = console.post(
        url("workflow_changelist"), {"action": "pause", "_selected_action": [running.pk], "_from_change_page": "1"}
    )

    assert response.status_code == 302 and response.url == url("workflow_change", running.pk)
    running.refresh_from_db()
    assert running.status == Workflow.Status.PAUSED


def test_an_analyst_may_look_but_not_act_and_sales_may_not_enter(org, member_factory, running):
    analyst = client_for(member_factory, org, Role.ANALYST)
    sales = client_for(member_factory, org, Role.SALES)

    page = analyst.get(url("workflow_change", running.pk))
    assert page.status_code == 200
    assert "Live status" in page.content.decode()
    assert 'name="action" value="pause"' not in page.content.decode()  # no buttons
    assert analyst.get(url("workflow_changelist")).context["action_form"] is None  # no actions at all
    refused = act(analyst, "workflow", "pause", [running])  # the list again: no such action for them
    assert refused.status_code == 200 and not messages_of(refused)
    analyst.post(url("workflow_change", running.pk), {"name": "x", "slug": "x", "draft_definition": "{}"})
    running.refresh_from_db()
    assert running.status == Workflow.Status.ACTIVE and running.name == "welcome"

    for page in ("workflow_changelist", "workflowinstance_changelist", "approval_changelist"):
        assert sales.get(url(page)).status_code == 403
    assert sales.get(url("workflow_change", running.pk)).status_code == 403
    assert sales.get(url("workflow_counts", running.pk)).status_code == 404


# --- runs ----------------------------------------------------------------------------------------


def test_run_actions_pause_resume_and_cancel(org, console, running):
    first, *others = WorkflowInstance.objects.filter(workflow=running).order_by("pk")

    act(console, "workflowinstance", "pause", [first])
    first.refresh_from_db()
    assert first.status == "paused"
    assert all(other.status == "waiting" for other in others)

    act(console, "workflowinstance", "resume", [first])
    first.refresh_from_db()
    assert first.status == "waiting"

    cancelled = act(console, "workflowinstance", "cancel", [first])
    first.refresh_from_db()
    assert first.status == "cancelled" and first.result == "cancelled"
    assert "Cancelled 1 run(s)." in messages_of(cancelled)


def test_retry_starts_a_failed_run_again_from_the_failed_step(org, console, publish, contact, drain, monkeypatch):
    from workflows.actions import PermanentError
    from workflows.actions.builtin import Log

    workflow = publish([HELLO_WAIT_BYE[0], dict(HELLO_WAIT_BYE[2], id="wait")], slug="flaky")

    def broken(self, ctx):
        raise PermanentError("the log is down")

    with monkeypatch.context() as patched:
        patched.setattr(Log, "run", broken)
        enrol(workflow, [contact])
        drain()
    instance = WorkflowInstance.objects.get(workflow=workflow)
    assert instance.status == "failed" and instance.current_step == "hello"

    response = act(console, "workflowinstance", "retry", [instance])
    drain()

    instance.refresh_from_db()
    assert "1 failed run(s) start again from the step that failed." in messages_of(response)
    assert instance.status == "completed", instance.error
    assert list(instance.step_runs.values_list("step_id", "status")) == [
        ("hello", "failed"),
        ("hello", "completed"),
        ("wait", "completed"),
    ]


def test_run_actions_are_refused_to_an_analyst(org, member_factory, running):
    analyst = client_for(member_factory, org, Role.ANALYST)
    instance = WorkflowInstance.objects.filter(workflow=running).first()

    act(analyst, "workflowinstance", "cancel", [instance])

    instance.refresh_from_db()
    assert instance.status == "waiting"


def test_runs_are_searched_by_contact_email_and_filtered(org, console, running, contacts):
    found = console.get(url("workflowinstance_changelist"), {"q": contacts[0].email})
    assert [i.contact_id for i in found.context["cl"].result_list] == [contacts[0].pk]
    waiting = console.get(url("workflowinstance_changelist"), {"status__exact": "waiting"})
    assert waiting.context["cl"].result_count == 3


# --- approvals -----------------------------------------------------------------------------------


def test_approve_and_reject_wake_the_runs(org, console, publish, contacts, drain, marketer):
    workflow = publish(ASK, slug="asking")
    enrol(workflow, contacts[:2])
    drain()
    yes, no = Approval.objects.order_by("pk")

    act(console, "approval", "approve", [yes])
    act(console, "approval", "reject", [no])
    drain()

    yes.refresh_from_db()
    assert yes.status == "approved" and yes.decided_by == marketer
    runs = {i.pk: i for i in WorkflowInstance.objects.filter(workflow=workflow)}
    assert runs[yes.instance_id].status == runs[no.instance_id].status == "completed"
    assert list(runs[yes.instance_id].step_runs.values_list("step_id", flat=True)) == ["ask", "yes"]
    assert list(runs[no.instance_id].step_runs.values_list("step_id", flat=True)) == ["ask", "no"]


def test_a_decision_the_service_refuses_is_reported(org, console, publish, contacts, drain):
    steps = [dict(ASK[0], approvers={"users": [999_999]}), *ASK[1:]]
    workflow = publish(steps, slug="not-mine")
    enrol(workflow, contacts[:1])
    drain()
    approval = Approval.objects.get()

    response = act(console, "approval", "approve", [approval])

    approval.refresh_from_db()
    assert approval.status == "pending"
    assert f"Approval #{approval.pk}: You are not one of this step's approvers." in messages_of(response)


def test_an_analyst_may_not_decide(org, member_factory, publish, contacts, drain):
    workflow = publish(ASK, slug="asking")
    enrol(workflow, contacts[:1])
    drain()
    analyst = client_for(member_factory, org, Role.ANALYST)

    act(analyst, "approval", "approve", [Approval.objects.get()])

    assert Approval.objects.get().status == "pending"


# --- templates and schedules ---------------------------------------------------------------------


def test_a_workflow_is_created_from_a_template(org, console, marketer):
    template = WorkflowTemplate.objects.create(
        org=org,
        slug="welcome-series",
        name="Welcome series",
        category="campaign",
        definition=json.loads(definition(HELLO_WAIT_BYE)),
    )

    response = act(console, "workflowtemplate", "create_workflow", [template])

    workflow = Workflow.objects.get(template=template)
    template.refresh_from_db()
    assert workflow.slug == "welcome-series" and workflow.status == Workflow.Status.DRAFT
    assert workflow.created_by == marketer
    assert template.usage_count == 1
    assert response.redirect_chain[-1][0] == url("workflow_change", workflow.pk)  # opened at once
    assert messages_of(response)[0].startswith("Created the draft workflow “Welcome series”")


def test_an_analyst_may_not_create_from_a_template(org, member_factory):
    template = WorkflowTemplate.objects.create(org=org, slug="t", name="T", category="campaign", definition={})
    act(client_for(member_factory, org, Role.ANALYST), "workflowtemplate", "create_workflow", [template])
    assert not Workflow.objects.exists()


def test_a_scheduled_job_is_saved_with_its_periodic_task_and_errors_show_at_the_field(org, console, running):
    segment = SegmentFactory(org=org)
    fields = {"name": "Mondays", "workflow": running.pk, "segment": segment.pk, "kind": "cron", "time_zone": "UTC"}
    fields["enabled"] = "on"

    refused = console.post(url("scheduledjob_add"), {**fields, "cron": "every monday"})
    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors["cron"]
    assert not ScheduledJob.objects.exists()

    saved = console.post(url("scheduledjob_add"), {**fields, "cron": "0 9 * * 1"})
    assert saved.status_code == 302
    job = ScheduledJob.objects.get()
    assert job.periodic_task.crontab.hour == "9" and job.periodic_task.enabled

    console.post(url("scheduledjob_change", job.pk), {**fields, "cron": "0 9 * * 1", "enabled": ""})
    job.periodic_task.refresh_from_db()
    assert not job.periodic_task.enabled

    task_id = job.periodic_task_id
    console.post(url("scheduledjob_delete", job.pk), {"post": "yes"})
    assert not ScheduledJob.objects.exists()
    assert not PeriodicTask.objects.filter(pk=task_id).exists()


# --- tenancy -------------------------------------------------------------------------------------


def test_another_orgs_workflows_and_runs_are_out_of_reach(org, other_org, console, running, theirs):
    with org_context(other_org):
        their_run = WorkflowInstance.objects.get(workflow=theirs)

    assert console.get(url("workflow_change", theirs.pk)).status_code == 302  # "does not exist"
    assert console.get(url("workflowinstance_change", their_run.pk)).status_code == 302
    lists = console.get(url("workflow_changelist")).content.decode()
    runs = console.get(url("workflowinstance_changelist")).content.decode()
    assert "Globex secret" not in lists and "secret@globex.example" not in runs
    act(console, "workflow", "archive", [theirs])
    act(console, "workflowinstance", "cancel", [their_run])
    with org_context(other_org):
        theirs.refresh_from_db()
        their_run.refresh_from_db()
    assert theirs.status == Workflow.Status.ACTIVE
    assert their_run.status == "pending"


# --- manual enrolment ----------------------------------------------------------------------------


def test_contacts_are_enrolled_by_hand_from_the_contact_list(org, console, running, publish, theirs):
    newcomers = ContactFactory.create_batch(2, org=org)
    draft = workflow_create(org=org, name="Draft", slug="draft", definition=json.loads(definition(HELLO_WAIT_BYE)))
    changelist = reverse("admin:marketing_contact_changelist")
    selection = {"action": "enrol_contacts", "_selected_action": [c.pk for c in newcomers]}

    page = console.post(changelist, selection)
    offered = list(page.context["form"].fields["workflow"].queryset)
    done = console.post(changelist, {**selection, "apply": "1", "workflow": running.pk}, follow=True)

    assert page.status_code == 200 and "2 selected contact(s)" in page.content.decode()
    assert running in offered and draft not in offered and theirs not in offered
    assert set(WorkflowInstance.objects.filter(workflow=running).values_list("contact_id", flat=True)) >= {
        c.pk for c in newcomers
    }
    assert "Enrolled 2 contact(s) in “welcome”." in messages_of(done)
    again = console.post(changelist, {**selection, "apply": "1", "workflow": running.pk}, follow=True)
    assert "Enrolled 0 contact(s) in “welcome” (2 left out by its re-enrolment policy)." in messages_of(again)


def test_a_segments_members_are_enrolled_by_hand_each_once(org, console, running):
    members = ContactFactory.create_batch(4, org=org)
    vips, germans = SegmentFactory(org=org, name="VIPs"), SegmentFactory(org=org, name="Germans")
    segment_add_contacts(segment=vips, contacts=members[:3])
    segment_add_contacts(segment=germans, contacts=members[2:])  # one contact is in both
    changelist = reverse("admin:marketing_segment_changelist")
    selection = {"action": "enrol_segment_members", "_selected_action": [vips.pk, germans.pk]}

    page = console.post(changelist, selection)
    done = console.post(changelist, {**selection, "apply": "1", "workflow": running.pk}, follow=True)

    assert "the current members of “Germans”, “VIPs”" in page.content.decode()
    assert "Enrolled 4 contact(s) in “welcome”." in messages_of(done)
    enrolled = list(WorkflowInstance.objects.filter(workflow=running).values_list("contact_id", flat=True))
    assert sorted(c for c in enrolled if c in {m.pk for m in members}) == sorted(m.pk for m in members)


def test_enrolling_by_hand_needs_the_change_permission_on_workflows(org, member_factory, running):
    newcomer = ContactFactory(org=org)
    sales = client_for(member_factory, org, Role.SALES)  # may change contacts, not workflows
    changelist = reverse("admin:marketing_contact_changelist")

    actions = dict(sales.get(changelist).context["action_form"].fields["action"].choices)
    sales.post(
        changelist,
        {"action": "enrol_contacts", "_selected_action": [newcomer.pk], "apply": "1", "workflow": running.pk},
    )

    assert "enrol_contacts" not in actions
    assert not WorkflowInstance.objects.filter(contact=newcomer).exists()


def test_publish_errors_are_separate_sentences(org, console, publish):
    workflow = publish(HELLO_WAIT_BYE, slug="stale")
    broken = {"trigger": {"type": "manual"}, "steps": [{"id": "a", "type": "nope"}, {"id": "b", "type": "nope"}]}
    Workflow.objects.filter(pk=workflow.pk).update(draft_definition=broken)

    [text] = [m for m in messages_of(act(console, "workflow", "publish", [workflow])) if "not published" in m]

    assert ".;" not in text and ".." not in text
    assert text.startswith("“stale” was not published: steps[a].type") and text.endswith(".")
    assert "wait_for_event. steps[b].type" in text  # one sentence per error


def test_the_canvas_page_embeds_the_workflow_and_the_catalog_and_preloads_elk_only_to_lay_out(org, console):
    from workflows.catalog import workflow_catalog

    placed = [{"id": "hello", "type": "stop", "position": {"x": 0, "y": 130}}]
    laid_out = workflow_create(
        org=org, name="Unplaced", slug="unplaced", definition=json.loads(definition(HELLO_WAIT_BYE))
    )
    positioned = workflow_create(
        org=org, name="Placed", slug="placed", definition={"trigger": {"type": "manual"}, "steps": placed}
    )

    unplaced_page = console.get(url("workflow_change", laid_out.pk))
    placed_page = console.get(url("workflow_change", positioned.pk))
    boot = unplaced_page.context["canvas_boot"]

    # The canvas draws from these without asking the API first.
    assert boot["workflow"]["id"] == laid_out.pk and boot["workflow"]["definition"] == laid_out.draft_definition
    assert boot["catalog"] == workflow_catalog()
    assert 'id="workflow-canvas-boot"' in unplaced_page.content.decode()
    assert "webhook_secret" not in boot["workflow"]  # the page's copy is the list's shape, without the secret
    # elkjs is fetched with the page's scripts only when a step has no position.
    assert "console/elk.js" in unplaced_page.content.decode()
    assert "console/elk.js" not in placed_page.content.decode()
