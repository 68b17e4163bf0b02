"""The analytics views (migration 0002) and their selectors, on a completed and a failed run;
always one org's rows; the migration's reverse drops the views."""

import importlib
from datetime import datetime, timedelta

import pytest
from django.db import connection, connections, transaction
from django.db.utils import DatabaseError
from django.utils import timezone

from marketing.tenancy import org_context
from tests.factories import ContactFactory
from tests.workflows.conftest import only_instance
from workflows.analytics import automation_performance, workflow_timeline
from workflows.models import WorkflowStepRun
from workflows.services import instances_cancel, workflow_create, workflow_enrol_manually, workflow_publish

migration = importlib.import_module("workflows.migrations.0002_analytics_views")

STEPS = [
    {"id": "tag", "type": "action", "action": "add_tag", "config": {"tags": ["seen"]}, "next": "wait"},
    {"id": "wait", "type": "delay", "config": {"duration": "PT1H"}, "next": "done"},
    {"id": "done", "type": "action", "action": "log", "config": {"message": "done"}, "next": None},
]
FAILING = [
    {"id": "tag", "type": "action", "action": "add_tag", "config": {"tags": ["seen"]}, "next": "bad"},
    # Not a two-letter country: the contact service refuses it, a permanent error with no on_error.
    {
        "id": "bad",
        "type": "action",
        "action": "update_field",
        "config": {"field": "country", "value": "Germany"},
        "next": None,
    },
]


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.fixture
def runs(org, contact, publish, drain):
    """A workflow with one completed run (an hour long) and one failed run (instant)."""
    workflow = publish(STEPS, slug="onboarding", settings={"reenrollment": "always"})
    failing = publish(FAILING, slug="broken")
    workflow_enrol_manually(workflow=workflow, contact_ids=[contact.pk])
    workflow_enrol_manually(workflow=failing, contact_ids=[contact.pk])
    start = timezone.now()
    drain(start)
    drain(start + timedelta(hours=1))
    return workflow, failing, start


def test_performance_counts_successes_failures_and_durations(org, contact, runs):
    workflow, failing, _ = runs
    workflow_enrol_manually(workflow=workflow, contact_ids=[contact.pk])  # one more, then cancelled
    instances_cancel(instances=workflow.instances.filter(status__in=["pending", "waiting"]))
    idle = publish_idle(org)

    rows = {row["workflow_id"]: row for row in automation_performance(org=org)}

    assert rows[workflow.pk] == {
        "workflow_id": workflow.pk,
        "name": "onboarding",
        "executions": 2,
        "successes": 1,
        "failures": 0,
        "cancelled": 1,
        "success_rate": 0.5,
        "avg_duration_ms": 1_800_000,
    }
    assert rows[failing.pk]["executions"] == 1
    assert rows[failing.pk]["failures"] == 1
    assert rows[failing.pk]["success_rate"] == 0.0
    assert rows[failing.pk]["avg_duration_ms"] == 0
    assert rows[idle.pk]["executions"] == 0
    assert rows[idle.pk]["success_rate"] is None and rows[idle.pk]["avg_duration_ms"] is None
    assert [r["workflow_id"] for r in automation_performance(org=org, workflow_id=failing.pk)] == [failing.pk]


def publish_idle(org):
    workflow = workflow_create(
        org=org,
        name="idle",
        slug="idle",
        definition={"trigger": {"type": "manual"}, "steps": [STEPS[-1]]},
    )
    workflow_publish(workflow=workflow)
    return workflow


def test_timeline_of_a_completed_run_lists_its_steps_in_time_order(org, contact, runs):
    workflow, _, start = runs
    instance = only_instance(workflow)

    [row] = workflow_timeline(org=org, workflow_id=workflow.pk)

    assert row["instance_id"] == instance.pk
    assert row["contact_id"] == contact.pk
    assert row["status"] == "completed"
    assert row["started_at"] == instance.started_at == start
    assert row["finished_at"] == instance.finished_at == start + timedelta(hours=1)
    assert [(s["step"], s["status"]) for s in row["steps"]] == [
        ("tag", "completed"),
        ("wait", "completed"),
        ("done", "completed"),
    ]
    stored = list(WorkflowStepRun.objects.filter(instance=instance).order_by("started_at", "completed_at", "id"))
    for step, run in zip(row["steps"], stored, strict=True):
        assert abs(moment(step["started_at"]) - run.started_at) < timedelta(milliseconds=2)
        assert abs(moment(step["completed_at"]) - run.completed_at) < timedelta(milliseconds=2)
    assert moment(row["steps"][1]["completed_at"]) - moment(row["steps"][1]["started_at"]) == timedelta(hours=1)


def test_timeline_of_a_failed_run_ends_with_the_failed_step(org, contact, runs):
    _, failing, _ = runs

    [row] = workflow_timeline(org=org, workflow_id=failing.pk)

    assert row["status"] == "failed"
    assert row["finished_at"] is not None
    assert [(s["step"], s["status"]) for s in row["steps"]] == [("tag", "completed"), ("bad", "failed")]
    assert workflow_timeline(org=org, status="failed") == [row]


def test_the_views_show_one_org_only(org, other_org, runs):
    with org_context(other_org):
        theirs = ContactFactory(org=other_org)
        workflow = workflow_create(
            org=other_org, name="theirs", slug="theirs", definition={"trigger": {"type": "manual"}, "steps": STEPS}
        )
        workflow_publish(workflow=workflow)
        workflow.refresh_from_db()
        workflow_enrol_manually(workflow=workflow, contact_ids=[theirs.pk])
        instances_cancel(instances=workflow.instances.all())

    ours = {r["workflow_id"] for r in automation_performance(org=org)}
    assert workflow.pk not in ours and len(ours) == 2
    assert all(r["contact_id"] != theirs.pk for r in workflow_timeline(org=org))
    assert automation_performance(org=org, workflow_id=workflow.pk) == []
    with org_context(other_org):
        assert [r["workflow_id"] for r in automation_performance(org=other_org)] == [workflow.pk]
        assert [r["contact_id"] for r in workflow_timeline(org=other_org.pk)] == [theirs.pk]


class _Editor:
    """The one method of a schema editor the migration's functions use, on the connection that
    migrates: the views' owner's. That is the test's own when the suite runs as the owner (the
    default). With the production roles (tests/database_roles.py) the test acts as the app, which
    may not drop the owner's views: a session of the owner's own, in autocommit as a migration's
    statements commit, runs them (the ``owner`` alias's session is inside the test's transaction,
    whose uncommitted drop would lock the test's reads out)."""

    def __init__(self):
        self.own = "owner" in connections.settings
        self.connection = connections.create_connection("owner") if self.own else connection

    def execute(self, sql, params=None):
        with self.connection.cursor() as cursor:
            cursor.execute(sql)

    def close(self):
        if self.own:
            self.connection.close()


def test_the_migration_reverse_drops_the_views_and_forward_makes_them(org, runs):
    editor = _Editor()
    migration.drop_views(None, editor)
    try:
        for view in ("v_automation_performance", "v_workflow_timeline"):
            # A savepoint, so that PostgreSQL's transaction goes on after the failed statement.
            with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"SELECT COUNT(*) FROM {view}")  # noqa: S608  a fixed name
    finally:
        migration.create_views(None, editor)  # committed on the owner's own session: there for later tests
        editor.close()
    assert len(automation_performance(org=org)) == 2
