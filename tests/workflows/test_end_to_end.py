"""Every step type and every trigger, end to end: PostgreSQL, Redis and a real Celery worker
process. The test plays beat (``instances_run_due`` every second) while it waits."""

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django_scopes import scopes_disabled

from marketing.models import Contact, PropertyDefinition
from marketing.segments import segment_add_contacts
from tests.factories import ContactFactory, SegmentFactory
from tests.workflows import processes
from tests.workflows.processes import beat_tick, celery_worker
from workflows.models import Approval, ScheduledJob, Workflow, WorkflowInstance, WorkflowStepRun
from workflows.outbound_http import signature
from workflows.services import workflow_create, workflow_enrol_manually, workflow_publish

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

EVERY_STEP = [
    {
        "id": "is_lead",
        "type": "condition",
        "condition": {"==": [{"var": "lifecycle_stage"}, "lead"]},
        "true_next": "by_country",
        "false_next": None,
    },
    {
        "id": "by_country",
        "type": "switch",
        "cases": [{"when": {"==": [{"var": "country"}, "DE"]}, "next": "ab"}],
        "default_next": "ab",
    },
    {
        "id": "ab",
        "type": "split",
        "branches": [{"name": "A", "weight": 1, "next": "both"}, {"name": "B", "weight": 1, "next": "both"}],
    },
    {"id": "both", "type": "parallel", "branches": ["pause", "tag"]},
    {"id": "pause", "type": "delay", "config": {"duration": "PT2S"}, "next": "join"},
    {"id": "tag", "type": "action", "action": "add_tag", "config": {"tags": ["e2e"]}, "next": "join"},
    {"id": "join", "type": "merge", "mode": "all", "next": "each"},
    {
        "id": "each",
        "type": "loop",
        "over": "workflow.trigger.properties.items",
        "as": "item",
        "max": 5,
        "body_next": "remember",
        "next": "click",
    },
    {
        "id": "remember",
        "type": "action",
        "action": "set_variable",
        "config": {"name": "last", "value_from": "workflow.vars.item"},
        "next": "each",
    },
    {
        "id": "click",
        "type": "wait_for_event",
        "event": "email_clicked",
        "timeout": "PT2S",
        "next": "ok",
        "timeout_next": "ok",
    },
    {
        "id": "ok",
        "type": "approval",
        "approvers": {"role": "marketer"},
        "timeout": "PT1M",
        "approved_next": "goal",
        "rejected_next": None,
        "timeout_next": None,
    },
    {"id": "goal", "type": "goal", "condition": {"==": [{"var": "lifecycle_stage"}, "customer"]}, "next": "end"},
    {"id": "end", "type": "stop", "reason": "all steps done"},
]
LOG = [{"id": "log", "type": "action", "action": "log", "config": {"message": "hi"}, "next": None}]


@pytest.fixture
def worker(settings, shared_database_url, tmp_path):
    if settings.EMBEDDED:
        pytest.skip("needs REDIS_URL: the worker reads tasks from Redis")
    from marketing.celery import app

    app.control.purge()
    process = celery_worker(tmp_path, database_url=shared_database_url, redis_url=settings.REDIS_URL)
    yield process
    process.stop()
    assert "Traceback" not in process.output(), process.output()


def wait_until(predicate, *, what: str, timeout: float = 60.0):
    """Polls ``predicate`` (unscoped, as a system job sees the rows) while playing beat."""

    def check():
        with scopes_disabled():
            return predicate()

    return processes.wait_until(check, timeout=timeout, what=what, tick=beat_tick)


def make(org, slug, steps, trigger, **settings):
    definition = {"trigger": trigger, "steps": steps, **({"settings": settings} if settings else {})}
    workflow = workflow_create(org=org, name=slug, slug=slug, definition=definition)
    workflow_publish(workflow=workflow)
    workflow.refresh_from_db()
    return workflow


def test_every_step_type_runs_on_a_worker(org, api, marketer, worker):
    workflow = make(
        org,
        "every-step",
        EVERY_STEP,
        {"type": "event", "event": "signup", "filter": {"==": [{"var": "event.properties.plan"}, "pro"]}},
    )
    response = api.post(
        "/api/v1/events/",
        {
            "events": [
                {"type": "signup", "email": "e2e@example.com", "properties": {"plan": "pro", "items": ["a", "b", "c"]}}
            ]
        },
        content_type="application/json",
    )
    assert response.status_code in (200, 201, 207), response.content
    wait_until(lambda: Approval.objects.filter(status="pending").exists(), what="the approval step")
    from workflows.services import approval_decide

    with scopes_disabled():
        approval_decide(approval=Approval.objects.get(), approved=True, by=marketer)
    wait_until(
        lambda: WorkflowInstance.objects.filter(workflow=workflow, finished_at__isnull=False).exists(), what="the end"
    )
    with scopes_disabled():
        instance = WorkflowInstance.objects.get(workflow=workflow)
        assert (instance.status, instance.result, instance.error) == ("completed", "stopped", "")
        ran = set(
            WorkflowStepRun.objects.filter(instance=instance, status="completed").values_list("step_id", flat=True)
        )
        assert ran == {step["id"] for step in EVERY_STEP}
        assert instance.context["vars"]["last"] == "c"
        assert list(instance.contact.tags.values_list("name", flat=True)) == ["e2e"]
        # Each visit's step ran once: one completed run per idempotency key.
        keys = list(
            WorkflowStepRun.objects.filter(instance=instance, status="completed").values_list(
                "idempotency_key", flat=True
            )
        )
        assert len(keys) == len(set(keys))


def test_every_trigger_starts_runs_on_a_worker(org, worker, settings):
    from workflows.tasks import date_triggers_run, scheduled_job_run

    segment = SegmentFactory(org=org, slug="vips", kind="static", rule=None)
    weekly = SegmentFactory(org=org, slug="weekly", kind="static", rule=None)
    PropertyDefinition.objects.create(org=org, subject="contact", key="renews_at", label="Renews", type="datetime")
    workflows = {
        "segment": make(org, "on-segment", LOG, {"type": "segment_entered", "segment": "vips"}),
        "manual": make(org, "by-hand", LOG, {"type": "manual"}),
        "schedule": make(org, "weekly", LOG, {"type": "schedule", "segment": "weekly", "every": "P7D"}),
        "date": make(
            org, "renewal", LOG, {"type": "date_relative", "field": "properties.renews_at", "offset_days": -2}
        ),
        "webhook": make(org, "from-crm", LOG, {"type": "webhook"}),
    }
    soon = (timezone.now() + timedelta(days=2) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    vip, member, renewing, anyone = (
        ContactFactory(org=org),
        ContactFactory(org=org),
        ContactFactory(org=org, properties={"renews_at": soon}),
        ContactFactory(org=org),
    )
    segment_add_contacts(segment=segment, contacts=[vip])  # emits segment_entered, dispatched on the worker
    segment_add_contacts(segment=weekly, contacts=[member])
    workflow_enrol_manually(workflow=workflows["manual"], contact_ids=[anyone.pk])
    scheduled_job_run.delay(job_id=ScheduledJob.objects.get(workflow=workflows["schedule"]).pk)
    date_triggers_run.delay()
    body = json.dumps({"id": "crm-1", "contact": {"email": "crm@example.com"}, "data": {"deal": 7}}).encode()
    response = Client().post(
        f"/hooks/workflows/{workflows['webhook'].pk}/",
        body,
        content_type="application/json",
        headers={"X-Signature": signature(workflows["webhook"].webhook_secret, body)},
    )
    assert response.status_code == 202, response.content
    expected = {
        "segment": vip,
        "manual": anyone,
        "schedule": member,
        "date": renewing,
        "webhook": Contact.objects.get(email="crm@example.com"),
    }

    def all_done():
        done = WorkflowInstance.objects.filter(status="completed")
        return all(done.filter(workflow=workflows[k], contact=c).exists() for k, c in expected.items())

    wait_until(all_done, what="a run per trigger")
    with scopes_disabled():
        assert WorkflowInstance.objects.count() == 5
        assert set(Workflow.objects.values_list("status", flat=True)) == {"active"}
