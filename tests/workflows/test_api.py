"""REST API of workflows: CRUD through the services with per-field errors, the lifecycle,
validation, enrolment, runs and their controls, analytics, dry run; every endpoint scoped to
the key's org (another org's ids are 404) and closed to write keys."""

import pytest
from django.test import Client
from django_scopes import scopes_disabled

from marketing.models import SegmentMembership
from marketing.tenancy import org_context
from tests.factories import ContactFactory, SegmentFactory
from tests.workflows.conftest import only_instance
from workflows.models import Delivery, Workflow, WorkflowInstance, WorkflowStepRun
from workflows.services import workflow_create, workflow_enrol_manually, workflow_publish

WORKFLOWS = "/api/v1/workflows/"
INSTANCES = "/api/v1/workflow-instances/"
STEPS = [
    {"id": "tag", "type": "action", "action": "add_tag", "config": {"tags": ["api"]}, "next": "wait"},
    {"id": "wait", "type": "delay", "config": {"duration": "P1D"}, "next": "log"},
    {"id": "log", "type": "action", "action": "log", "config": {"message": "done"}, "next": None},
]
DEFINITION = {"trigger": {"type": "manual"}, "steps": STEPS}
BROKEN = {
    "trigger": {"type": "manual"},
    "steps": [
        {"id": "wait", "type": "delay", "config": {"duration": "soon"}, "next": "gone"},
        {"id": "tag", "type": "action", "action": "frobnicate", "next": None},
    ],
}


def post(client, url, body=None):
    return client.post(url, body or {}, content_type="application/json")


@pytest.fixture
def live(org, publish):
    return publish(STEPS, slug="live")


@pytest.fixture
def theirs(other_org):
    """Another org's published workflow with one run."""
    with org_context(other_org):
        workflow = workflow_create(org=other_org, name="Theirs", slug="theirs", definition=DEFINITION)
        workflow_publish(workflow=workflow)
        workflow.refresh_from_db()
        contact = ContactFactory(org=other_org)
        workflow_enrol_manually(workflow=workflow, contact_ids=[contact.pk])
        return workflow, WorkflowInstance.objects.get(workflow=workflow), contact


# -- CRUD -------------------------------------------------------------------------------------


def test_create_returns_the_workflow_with_its_webhook_details(org, api):
    response = post(api, WORKFLOWS, {"name": "Welcome", "slug": "welcome", "definition": DEFINITION})

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "draft" and body["live_version"] is None
    assert body["definition"] == DEFINITION
    assert body["webhook_url"].endswith(f"/hooks/workflows/{body['id']}/")
    assert body["webhook_secret"] == Workflow.objects.get(pk=body["id"]).webhook_secret
    assert "webhook_secret" not in api.get(WORKFLOWS).json()["results"][0]


def test_an_invalid_definition_is_a_400_naming_each_step_and_field(org, api):
    response = post(api, WORKFLOWS, {"name": "Broken", "slug": "broken", "definition": BROKEN})

    assert response.status_code == 400
    errors = response.json()["definition"]
    assert any(e.startswith("steps[wait].config.duration:") for e in errors)
    assert any(e.startswith("steps[tag].action:") and "frobnicate" in e for e in errors)
    assert not Workflow.objects.exists()


def test_fields_are_checked_and_slugs_are_unique(org, api, live):
    assert post(api, WORKFLOWS, {"slug": "x", "definition": DEFINITION}).json() == {"name": ["This field is required."]}
    taken = post(api, WORKFLOWS, {"name": "Again", "slug": "live", "definition": DEFINITION})
    assert taken.status_code == 400 and taken.json() == {"slug": ["A workflow with this slug already exists."]}
    other = post(api, WORKFLOWS, {"name": "Other", "slug": "other", "definition": DEFINITION}).json()
    renamed = api.patch(f"{WORKFLOWS}{other['id']}/", {"slug": "live"}, content_type="application/json")
    assert renamed.status_code == 400 and "slug" in renamed.json()


def test_update_changes_the_draft_only(org, api, live):
    url = f"{WORKFLOWS}{live.pk}/"
    changed = {**DEFINITION, "steps": STEPS[2:]}

    patched = api.patch(url, {"description": "Now shorter", "definition": changed}, content_type="application/json")

    assert patched.status_code == 200, patched.content
    assert patched.json()["definition"] == changed
    assert patched.json()["name"] == "live" and patched.json()["description"] == "Now shorter"
    live.refresh_from_db()
    assert live.live_version.definition["steps"] == STEPS
    put = api.put(url, {"name": "Renamed", "slug": "live", "definition": DEFINITION}, content_type="application/json")
    assert put.status_code == 200 and put.json()["description"] == ""
    broken = api.patch(url, {"definition": BROKEN}, content_type="application/json")
    assert broken.status_code == 400 and "definition" in broken.json()


def test_list_filters_and_searches(org, api, live):
    post(api, WORKFLOWS, {"name": "Draft one", "slug": "draft-one", "definition": DEFINITION})

    assert [w["slug"] for w in api.get(WORKFLOWS, {"status": "active"}).json()["results"]] == ["live"]
    assert [w["slug"] for w in api.get(WORKFLOWS, {"search": "draft"}).json()["results"]] == ["draft-one"]
    assert api.get(WORKFLOWS, {"status": "nonsense"}).status_code == 400


def test_only_a_never_published_workflow_can_be_deleted(org, api, live):
    draft = post(api, WORKFLOWS, {"name": "Draft", "slug": "draft", "definition": DEFINITION}).json()

    assert api.delete(f"{WORKFLOWS}{draft['id']}/").status_code == 204
    refused = api.delete(f"{WORKFLOWS}{live.pk}/")
    assert refused.status_code == 400 and "archive" in refused.json()["status"][0]
    assert list(Workflow.objects.values_list("slug", flat=True)) == ["live"]


# -- lifecycle and validation -----------------------------------------------------------------


def test_publish_pause_resume_archive(org, api, contact):
    created = post(api, WORKFLOWS, {"name": "Flow", "slug": "flow", "definition": DEFINITION}).json()
    url = f"{WORKFLOWS}{created['id']}/"

    assert post(api, f"{url}pause/").json() == {"status": ["Only an active workflow can be paused; this one is draft."]}
    published = post(api, f"{url}publish/").json()
    assert published["status"] == "active" and published["live_version"]["number"] == 1
    assert post(api, f"{url}enrol/", {"contact_ids": [contact.pk]}).json()["enrolled"] == 1

    paused = post(api, f"{url}pause/").json()
    assert paused["workflow"]["status"] == "paused" and paused["instances"] == 1
    assert WorkflowInstance.objects.get().status == "paused"
    assert post(api, f"{url}pause/").status_code == 400
    resumed = post(api, f"{url}resume/").json()
    assert resumed["workflow"]["status"] == "active" and resumed["instances"] == 1
    archived = post(api, f"{url}archive/").json()
    assert archived["workflow"]["status"] == "archived" and archived["instances"] == 1
    assert WorkflowInstance.objects.get().status == "cancelled"
    assert post(api, f"{url}archive/").status_code == 400
    assert post(api, f"{url}publish/").json()["live_version"]["number"] == 2


def test_validate_returns_the_errors_without_saving(org, api):
    ok = post(api, f"{WORKFLOWS}validate/", {"definition": DEFINITION})
    bad = post(api, f"{WORKFLOWS}validate/", {"definition": BROKEN})

    assert ok.status_code == 200 and ok.json() == {"valid": True, "errors": []}
    assert bad.status_code == 400 and bad.json()["valid"] is False
    assert any(e.startswith("steps[wait].config.duration:") for e in bad.json()["errors"])
    assert post(api, f"{WORKFLOWS}validate/", {}).json() == {"definition": ["This field is required."]}
    assert not Workflow.objects.exists()


# -- enrolment and runs -----------------------------------------------------------------------


def test_enrol_contacts_or_a_segment(org, api, live, other_org):
    contacts = ContactFactory.create_batch(3, org=org)
    segment = SegmentFactory(org=org, slug="vips")
    for contact in contacts[1:]:
        SegmentMembership.objects.create(org=org, segment=segment, contact=contact)
    with scopes_disabled():
        stranger = ContactFactory(org=other_org)
    url = f"{WORKFLOWS}{live.pk}/enrol/"

    assert post(api, url, {"contact_ids": [contacts[0].pk]}).json() == {"enrolled": 1, "requested": 1}
    assert post(api, url, {"segment": "vips"}).json() == {"enrolled": 2, "requested": 2}
    assert post(api, url, {"segment": "vips"}).json() == {"enrolled": 0, "requested": 2}  # reenrolment: never
    assert post(api, url, {"contact_ids": [stranger.pk]}).json() == {
        "contact_ids": [f"No contact with id {stranger.pk}."]
    }
    assert post(api, url, {"segment": "nope"}).json() == {"segment": ["No segment with slug “nope”."]}
    assert post(api, url, {}).json() == {"non_field_errors": ["Send either contact_ids or segment."]}
    assert post(api, url, {"contact_ids": [1], "segment": "vips"}).status_code == 400
    assert WorkflowInstance.objects.filter(workflow=live).count() == 3


def test_enrol_refuses_an_inactive_workflow(org, api, contact):
    draft = post(api, WORKFLOWS, {"name": "Draft", "slug": "draft", "definition": DEFINITION}).json()

    response = post(api, f"{WORKFLOWS}{draft['id']}/enrol/", {"contact_ids": [contact.pk]})

    assert response.status_code == 400
    assert response.json() == {"workflow": ["“Draft” is draft: only an active workflow takes new runs."]}


def test_instances_are_listed_filtered_and_shown_with_their_steps(org, api, live, drain, django_assert_max_num_queries):
    contacts = ContactFactory.create_batch(5, org=org)
    workflow_enrol_manually(workflow=live, contact_ids=[c.pk for c in contacts])
    drain()
    WorkflowInstance.objects.filter(contact=contacts[0]).update(status="paused", paused_status="waiting")

    with django_assert_max_num_queries(6):
        listed = api.get(f"{WORKFLOWS}{live.pk}/instances/").json()
    assert listed["count"] == 5 and listed["results"][0]["version"] == 1
    waiting = api.get(f"{WORKFLOWS}{live.pk}/instances/", {"status": "waiting"}).json()
    assert waiting["count"] == 4 and {r["current_step"] for r in waiting["results"]} == {"wait"}
    assert api.get(f"{WORKFLOWS}{live.pk}/instances/", {"status": "bogus"}).status_code == 400
    assert api.get(INSTANCES, {"contact": contacts[0].pk}).json()["count"] == 1

    instance = WorkflowInstance.objects.get(contact=contacts[1])
    detail = api.get(f"{INSTANCES}{instance.pk}/").json()
    assert detail["status"] == "waiting" and detail["contact"] == contacts[1].pk
    assert [(r["step_id"], r["status"]) for r in detail["step_runs"]] == [("tag", "completed")]
    assert detail["tokens"][0]["step"] == "wait"


def test_run_controls(org, api, publish, contact, drain):
    bad = {"id": "bad", "type": "action", "action": "update_field", "config": {"field": "country", "value": "Nope"}}
    broken = publish([bad], slug="broken")
    workflow_enrol_manually(workflow=broken, contact_ids=[contact.pk])
    drain()
    failed = only_instance(broken)
    url = f"{INSTANCES}{failed.pk}/"
    assert failed.status == "failed"

    assert post(api, f"{url}pause/").json() == {
        "status": ["Only a pending or waiting run can be paused; this one is failed."]
    }
    retried = post(api, f"{url}retry/")
    assert retried.status_code == 200 and retried.json()["status"] == "waiting"
    assert post(api, f"{url}pause/").json()["status"] == "paused"
    assert post(api, f"{url}retry/").status_code == 400
    assert post(api, f"{url}resume/").json()["status"] == "waiting"
    assert post(api, f"{url}cancel/").json()["status"] == "cancelled"
    assert post(api, f"{url}cancel/").json() == {
        "status": ["Only an active run can be cancelled; this one is cancelled."]
    }
    assert post(api, f"{url}resume/").status_code == 400


def test_analytics(org, api, live, contact, drain):
    workflow_enrol_manually(workflow=live, contact_ids=[contact.pk])
    drain()

    body = api.get(f"{WORKFLOWS}{live.pk}/analytics/").json()

    assert body["enrolled"] == body["active"] == 1
    assert body["steps"]["tag"]["runs"] == 1
    assert body["performance"]["executions"] == 0 and body["performance"]["success_rate"] is None


def test_dry_run(org, api, live, contact, other_org):
    with scopes_disabled():
        stranger = ContactFactory(org=other_org)
    url = f"{WORKFLOWS}{live.pk}/dry-run/"

    response = post(api, url, {"contact_id": contact.pk, "start": "2026-12-01T09:00:00Z"})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "completed" and body["ended_at"] == "2026-12-02T09:00:00+00:00"
    assert [a["step"] for a in body["actions"]] == ["tag", "log"]
    assert not WorkflowInstance.objects.exists() and not WorkflowStepRun.objects.exists()
    assert not Delivery.objects.exists() and not contact.tags.exists()
    assert post(api, url, {"contact_id": stranger.pk}).json() == {"contact_id": [f"No contact with id {stranger.pk}."]}
    bad_event = post(api, url, {"contact_id": contact.pk, "events": [{"type": "x", "after": "later"}]})
    assert bad_event.status_code == 400 and "events[0].after" in bad_event.json()["events"][0]
    bad_approval = post(api, url, {"contact_id": contact.pk, "approvals": {"step": "maybe"}})
    assert bad_approval.status_code == 400 and "approvals" in bad_approval.json()


# -- isolation and keys -----------------------------------------------------------------------


def endpoints(workflow_id: int, instance_id: int) -> list[tuple[str, str]]:
    w, i = f"{WORKFLOWS}{workflow_id}/", f"{INSTANCES}{instance_id}/"
    return [
        ("get", w),
        ("patch", w),
        ("put", w),
        ("delete", w),
        *[("post", f"{w}{verb}/") for verb in ("publish", "pause", "resume", "archive", "enrol", "dry-run")],
        ("get", f"{w}instances/"),
        ("get", f"{w}analytics/"),
        ("get", i),
        *[("post", f"{i}{verb}/") for verb in ("pause", "resume", "cancel", "retry")],
    ]


def call(client, method: str, url: str):
    return getattr(client, method)(url, {"name": "Hacked", "contact_ids": [1]}, content_type="application/json")


def test_another_orgs_workflows_and_runs_are_404_everywhere(org, other_org, api, theirs):
    workflow, instance, _ = theirs

    for method, url in endpoints(workflow.pk, instance.pk):
        assert call(api, method, url).status_code == 404, (method, url)
    assert api.get(WORKFLOWS).json()["count"] == 0
    assert api.get(INSTANCES).json()["count"] == 0
    with org_context(other_org):
        workflow.refresh_from_db()
        instance.refresh_from_db()
    assert workflow.name == "Theirs" and workflow.status == "active"
    assert instance.status == "pending"


def test_write_keys_and_no_key_are_refused(org, write_key, live, contact):
    workflow_enrol_manually(workflow=live, contact_ids=[contact.pk])
    instance = only_instance(live)
    public = Client(headers={"Authorization": f"Bearer {write_key}"})
    anonymous = Client()

    for method, url in [*endpoints(live.pk, instance.pk), ("get", WORKFLOWS), ("post", f"{WORKFLOWS}validate/")]:
        assert call(public, method, url).status_code == 403, (method, url)
        assert call(anonymous, method, url).status_code == 401, (method, url)
    live.refresh_from_db()
    assert live.name == "live" and live.status == "active"


def test_the_schema_documents_the_endpoints(db):
    schema = Client().get("/api/schema/")

    assert schema.status_code == 200
    for path in (b"/api/v1/workflows/{id}/dry-run/", b"/api/v1/workflow-instances/{id}/retry/"):
        assert path in schema.content
