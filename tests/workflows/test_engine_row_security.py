"""The engine under row-level security (docs/tenancy.md): a worker acting as the app role claims
due runs of every org as its login role (``system_role``), then runs each org's group as app in
that org's context."""

import contextlib
from datetime import UTC, datetime

import pytest
from django.db import connection

from marketing.models import Tag
from marketing.tenancy import org_context
from tests.database_roles import become_unprivileged
from tests.factories import ContactFactory
from workflows.engine import advance_batch
from workflows.services import workflow_create, workflow_enrol, workflow_publish

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
TAG_STEP = [{"id": "t", "type": "action", "action": "add_tag", "config": {"tags": ["x"]}, "next": None}]


@pytest.fixture(autouse=True)
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("row-level security is PostgreSQL's")


def _due_run(org):
    with org_context(org):
        workflow = workflow_create(
            org=org, name="w", slug="w", definition={"trigger": {"type": "manual"}, "steps": TAG_STEP}
        )
        workflow_publish(workflow=workflow)
        workflow.refresh_from_db()
        contact = ContactFactory(org=org)
        workflow_enrol(workflow=workflow, contact_ids=[contact.pk], trigger_type="manual", trigger_key="k", now=T0)


def test_a_worker_acting_as_app_claims_every_orgs_runs_and_runs_each_in_its_org(db, other_org):
    from tests.factories import OrganizationFactory

    org = OrganizationFactory()
    _due_run(org)
    _due_run(other_org)
    become_unprivileged()
    assert advance_batch(now=T0) == 2
    for each in (org, other_org):  # each tag made in its own org, and seen there
        with org_context(each):
            assert Tag.objects.filter(name="x").count() == 1


def test_without_the_login_role_the_claim_sees_no_run(db, other_org, monkeypatch):
    _due_run(other_org)
    become_unprivileged()
    monkeypatch.setattr("workflows.engine.system_role", contextlib.nullcontext)
    assert advance_batch(now=T0) == 0  # the app role with no org: row-level security hides every run
