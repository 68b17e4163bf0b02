"""A workflow run end to end by a real Celery worker process: a delay that expires, an outbound
HTTP call to a loopback server (made after commit by the delivery sender), and a condition on
the response the call returned."""

import pytest
from django.utils import timezone

from tests.factories import ContactFactory
from tests.workflows.processes import HookServer, beat_tick, celery_worker, wait_until
from workflows.models import Delivery, WorkflowInstance, WorkflowStepRun
from workflows.services import workflow_enrol_manually

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def needs_services(settings):
    if settings.EMBEDDED:
        pytest.skip("needs PostgreSQL and REDIS_URL: the worker is a separate process")
    from marketing.celery import app

    app.control.purge()


def test_a_real_worker_runs_a_delay_a_call_and_a_condition_on_its_response(
    org, publish, needs_services, shared_database_url, settings, tmp_path
):
    with HookServer(response={"plan": "pro", "seats": 12}) as hook:
        workflow = publish(
            [
                {"id": "wait", "type": "delay", "config": {"duration": "PT2S"}, "next": "lookup"},
                {
                    "id": "lookup",
                    "type": "action",
                    "action": "http_request",
                    "config": {"url": hook.url, "method": "POST", "body": {"q": "plan"}},
                    "next": "is_pro",
                },
                {
                    "id": "is_pro",
                    "type": "condition",
                    "condition": {"==": [{"var": "workflow.steps.lookup.result.body.plan"}, "pro"]},
                    "true_next": "mark",
                    "false_next": None,
                },
                {
                    "id": "mark",
                    "type": "action",
                    "action": "set_variable",
                    "config": {"name": "seats", "value_from": "workflow.steps.lookup.result.body.seats"},
                    "next": None,
                },
            ]
        )
        contact = ContactFactory(org=org)
        worker = celery_worker(
            tmp_path,
            database_url=shared_database_url,
            redis_url=settings.REDIS_URL,
            OUTBOUND_HTTP_ALLOWED_HOSTS="127.0.0.1",
        )
        try:
            enrolled_at = timezone.now()
            assert workflow_enrol_manually(workflow=workflow, contact_ids=[contact.pk]) == 1
            instance = WorkflowInstance.objects.get(workflow=workflow)
            wait_until(
                lambda: WorkflowInstance.objects.filter(pk=instance.pk, status__in=["completed", "failed"]).exists(),
                timeout=45,
                what="the run to finish",
                tick=beat_tick,
            )
        finally:
            worker.stop()

    instance.refresh_from_db()
    assert (instance.status, instance.result) == ("completed", "completed"), instance.error
    runs = list(WorkflowStepRun.objects.filter(instance=instance).order_by("started_at", "id"))
    assert [r.step_id for r in runs] == ["wait", "lookup", "is_pro", "mark"]
    assert instance.context["vars"] == {"seats": 12}
    assert runs[2].output == {"result": True}

    # The delay really waited, and was woken by the worker soon after it ended.
    delay = runs[0]
    until = delay.output["until"]
    assert timezone.datetime.fromisoformat(until) >= enrolled_at + timezone.timedelta(seconds=2)
    assert (runs[1].started_at - timezone.datetime.fromisoformat(until)).total_seconds() < 5

    # One call, carrying the step's idempotency key, recorded as sent with the response.
    delivery = Delivery.objects.get(instance=instance)
    assert delivery.idempotency_key == f"{instance.pk}:lookup:1" == runs[1].idempotency_key
    assert (delivery.status, delivery.attempts) == ("sent", 1)
    assert hook.keys() == [delivery.idempotency_key]
    assert hook.calls[0]["body"] == {"q": "plan"}
    assert "Traceback" not in worker.output(), worker.output()
