"""Compliance → Audit log and Change history in the console: org admins and compliance officers
read them (their org's lines only), search and filter them; nobody adds, edits or deletes a line;
a marketer, an analyst and a sales rep are refused. Fits 1366 px in Chromium."""

import pytest
from django.contrib.admin.utils import quote
from django.db import connection
from django.test import Client

from marketing.audit import Source, audit_context, audit_record
from marketing.models import AuditEntry, Role
from marketing.tenancy import org_context
from tests.factories import ContactFactory

AUDIT = "/admin/marketing/auditentry/"
HISTORY = "/admin/marketing/changeevent/"
postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="pghistory's triggers")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def officer(org, member_factory):
    return member_factory(org, Role.COMPLIANCE, username="cora")


@pytest.fixture
def logged(org, officer, other_org, member_factory):
    """Entries of this org (a view by the officer, an API export) and one of another org."""
    contact = ContactFactory(org=org)
    with audit_context(source=Source.CONSOLE, user=officer):
        audit_record(verb="viewed", target=contact, fields=["email", "phone"])
    audit_record(org=org, verb="exported", target_type="marketing.segment", target_id=7, actor="nightly sync")
    outsider = member_factory(other_org, Role.ADMIN, username="olga")
    with org_context(other_org), audit_context(source=Source.CONSOLE, user=outsider):
        audit_record(verb="viewed", target_type="marketing.contact", target_id=99)
    return contact


def listed(response) -> list[tuple]:
    return [(e.actor_label, e.verb, e.target_type, e.target_id) for e in response.context["cl"].result_list]


@pytest.mark.parametrize("role", [Role.COMPLIANCE, Role.ADMIN])
def test_compliance_and_admins_read_their_orgs_log(org, logged, member_factory, role):
    client = client_for(member_factory(org, role, username=f"reader-{role}"))
    response = client.get(AUDIT)
    assert response.status_code == 200
    assert sorted(listed(response)) == [
        ("cora", "viewed", "marketing.contact", str(logged.pk)),
        ("nightly sync", "exported", "marketing.segment", "7"),
    ]
    page = response.content.decode()
    assert "email, phone" in page
    assert f"/admin/marketing/contact/{logged.pk}/change/" in page  # the target links to its page
    assert 'href="/admin/marketing/auditentry/add/"' not in page


def test_the_log_is_searched_by_actor_and_target_and_filtered_by_verb(org, officer, logged):
    client = client_for(officer)
    assert listed(client.get(AUDIT, {"q": "nightly"})) == [("nightly sync", "exported", "marketing.segment", "7")]
    assert listed(client.get(AUDIT, {"q": str(logged.pk)})) == [("cora", "viewed", "marketing.contact", str(logged.pk))]
    assert [e[1] for e in listed(client.get(AUDIT, {"verb__exact": "viewed"}))] == ["viewed"]
    assert [e[1] for e in listed(client.get(AUDIT, {"target_type": "marketing.segment"}))] == ["exported"]


def test_a_line_is_shown_but_cannot_be_changed_or_deleted(org, officer, logged):
    client = client_for(officer)
    entry = AuditEntry.objects.get(verb="viewed")
    page = f"{AUDIT}{entry.pk}/change/"
    shown = client.get(page)
    assert shown.status_code == 200
    assert "email, phone" in shown.content.decode()
    assert client.post(page, {"verb": "changed"}).status_code == 403
    assert client.post(f"{AUDIT}{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get(f"{AUDIT}add/").status_code == 403
    entry.refresh_from_db()
    assert entry.verb == "viewed"


@pytest.mark.parametrize("role", [Role.MARKETER, Role.ANALYST, Role.SALES])
def test_other_roles_are_refused(org, logged, member_factory, role):
    client = client_for(member_factory(org, role, username=f"nosy-{role}"))
    assert client.get(AUDIT).status_code == 403
    assert client.get(HISTORY).status_code == 403
    home = client.get("/admin/").content.decode()
    assert "Audit log" not in home and "Change history" not in home


def test_the_sidebar_shows_both_pages_to_compliance(org, officer):
    home = client_for(officer).get("/admin/").content.decode()
    assert "Audit log" in home and "Change history" in home


@postgres_only
def test_change_history_lists_a_workflow_change_with_who_made_it(org, officer, member_factory, other_org):
    from workflows.services import workflow_create

    definition = {"trigger": {"type": "manual"}, "steps": [{"id": "stop", "type": "stop"}]}
    admin_user = member_factory(org, Role.ADMIN, username="ada")
    with audit_context(source=Source.CONSOLE, user=admin_user):
        workflow = workflow_create(org=org, name="Welcome", slug="welcome", definition=definition)
        workflow.description = "Greets new sign-ups"
        workflow.save()
    with org_context(other_org):
        workflow_create(org=other_org, name="Theirs", slug="theirs", definition=definition)

    response = client_for(officer).get(HISTORY, {"model": "workflows.Workflow"})
    assert response.status_code == 200
    rows = [(e.pgh_obj_id, e.pgh_label, (e.pgh_context or {}).get("actor")) for e in response.context["cl"].result_list]
    assert rows == [(str(workflow.pk), "update", "ada"), (str(workflow.pk), "insert", "ada")]
    page = response.content.decode()
    assert "description" in page and "Theirs" not in page
    event = response.context["cl"].result_list[0]
    detail = client_for(officer).get(f"{HISTORY}{quote(event.pk)}/change/")
    assert detail.status_code == 200
    assert "Greets new sign-ups" in detail.content.decode()


@postgres_only
def test_the_pages_fit_1366_px_in_chromium(org, officer, logged, live_server):
    from tests.browser import WIDTH, assert_no_sideways_scroll, launch, login, shots_dir

    for n in range(30):
        audit_record(
            org=org,
            verb="exported",
            target_type="channels_app.messagetemplate",
            target_id=n,
            fields=["email", "first_name", "last_name", "company", "entered_at", "properties.plan"],
            count=12000,
            actor="a rather long task name that should wrap rather than push the page sideways",
        )
    from workflows.services import workflow_create

    with audit_context(source=Source.CONSOLE, user=officer):
        definition = {"trigger": {"type": "manual"}, "steps": [{"id": "stop", "type": "stop"}]}
        workflow = workflow_create(org=org, name="Welcome", slug="welcome", definition=definition)
        workflow.description, workflow.status = "Greets new sign-ups", "paused"
        workflow.save()
    shots = shots_dir("audit-shots")
    with launch() as browser:
        tab = browser.new_page(viewport={"width": WIDTH, "height": 900})
        login(tab, live_server.url, "cora")
        tab.goto(f"{live_server.url}{AUDIT}")
        assert_no_sideways_scroll(tab)
        tab.screenshot(path=str(shots / "audit-log.png"), full_page=False)
        text = tab.inner_text("body")
        tab.goto(f"{live_server.url}{HISTORY}")
        assert_no_sideways_scroll(tab)
        tab.screenshot(path=str(shots / "change-history.png"), full_page=False)
        history = tab.inner_text("#result_list")
    assert "Audit log" in text and "cora" in text
    assert "description, status" in history and "cora" in history
