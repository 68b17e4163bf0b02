"""The embedded mode's in-process runner advances runs without a broker or beat."""

import time

import pytest

from tests.factories import ContactFactory
from workflows import embedded_runner
from workflows.models import WorkflowInstance
from workflows.services import workflow_enrol_manually


@pytest.mark.django_db(transaction=True)
def test_the_in_process_runner_finishes_a_delay_without_workers(org, publish, eager_tasks):
    workflow = publish(
        [
            {"id": "wait", "type": "delay", "config": {"duration": "PT1S"}, "next": "tag"},
            {"id": "tag", "type": "action", "action": "add_tag", "config": {"tags": ["woke"]}, "next": None},
        ]
    )
    contact = ContactFactory(org=org)
    workflow_enrol_manually(workflow=workflow, contact_ids=[contact.pk])
    assert WorkflowInstance.objects.get().status == "waiting"  # started inline (eager), parked at the delay
    runner = embedded_runner.start(interval_s=0.1)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and WorkflowInstance.objects.get().status != "completed":
            time.sleep(0.1)
    finally:
        runner.stop()
    assert WorkflowInstance.objects.get().status == "completed"
    assert list(contact.tags.values_list("name", flat=True)) == ["woke"]
