"""Fixtures of the workflow tests: a contact, and helpers to publish and drain workflows."""

from datetime import datetime

import pytest
from django.utils import timezone

from tests.factories import ContactFactory
from workflows.engine import instances_advance_due
from workflows.models import WorkflowInstance
from workflows.services import workflow_create, workflow_publish


@pytest.fixture
def contact(org):
    return ContactFactory(org=org, email="ana@example.com", first_name="Ana", country="DE", time_zone="Europe/Berlin")


@pytest.fixture
def publish(org):
    """Creates and publishes a workflow from a definition (steps may be given alone)."""
    made = []

    def make(steps=None, *, trigger=None, settings=None, slug=None, definition=None):
        definition = definition or {
            "trigger": trigger or {"type": "manual"},
            "steps": steps,
            **({"settings": settings} if settings else {}),
        }
        workflow = workflow_create(
            org=org, name=slug or f"wf{len(made)}", slug=slug or f"wf{len(made)}", definition=definition
        )
        workflow_publish(workflow=workflow)
        workflow.refresh_from_db()
        made.append(workflow)
        return workflow

    return make


@pytest.fixture
def drain(org):
    """Advances every due run at ``now`` (default: the real now) until none is due."""

    def run(now: datetime | None = None) -> int:
        return instances_advance_due(now=now or timezone.now())

    return run


def only_instance(workflow) -> WorkflowInstance:
    return WorkflowInstance.objects.get(workflow=workflow)
