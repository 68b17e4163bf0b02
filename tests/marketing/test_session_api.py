"""The console's session on the REST API: CSRF on writes, the session's current org, the role's
model permissions (403 with a sentence), guardian on handoffs, who acted; keys keep working."""

import tempfile
from pathlib import Path

import pytest
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client
from django_scopes import scopes_disabled

from marketing.models import Contact, Role
from marketing.services import api_key_create
from marketing.tenancy import SESSION_KEY, org_context
from scoring.handoffs import handoff_create
from scoring.models import Handoff
from tests.browser import CHROMIUM, CHROMIUM_ARGS, login, playwright_or_skip
from tests.factories import ContactFactory, MembershipFactory, UserFactory
from workflows.models import WorkflowVersion
from workflows.services import workflow_create

CONTACTS = "/api/v1/contacts/"
SHOTS = Path(tempfile.gettempdir()) / "session-api-shots"  # kept after the run, to look at
JSON = "application/json"


def session_for(user, *, org=None) -> Client:
    """A logged-in browser that checks CSRF as a real one does, holding its token cookie."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    if org is not None:
        session = client.session
        session[SESSION_KEY] = org.pk
        session.save()
    client.csrf = _get_new_csrf_string()
    client.cookies["csrftoken"] = client.csrf
    return client


def send(client, method: str, url: str, data=None, *, token: bool = True):
    headers = {"X-CSRFToken": client.csrf} if token else {}
    return getattr(client, method)(url, data, content_type=JSON, headers=headers)


@pytest.fixture
def theirs(other_org):
    with scopes_disabled():
        return ContactFactory(org=other_org, email="secret@globex.example")


def test_a_marketers_session_writes_with_the_csrf_token_and_is_refused_without(org, marketer):
    browser = session_for(marketer)

    refused = send(browser, "post", CONTACTS, {"email": "ana@example.com"}, token=False)
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    assert not Contact.objects.filter(org=org, email="ana@example.com").exists()

    created = send(browser, "post", CONTACTS, {"email": "ana@example.com", "first_name": "Ana"})
    assert created.status_code == 201, created.content
    contact = Contact.objects.get(org=org, email="ana@example.com")
    assert send(browser, "patch", f"{CONTACTS}{contact.pk}/", {"last_name": "Lima"}).status_code == 200
    assert send(browser, "patch", f"{CONTACTS}{contact.pk}/", {"last_name": "X"}, token=False).status_code == 403
    assert browser.get(CONTACTS).json()["results"][0]["last_name"] == "Lima"  # a read needs no token
    assert send(browser, "delete", f"{CONTACTS}{contact.pk}/").status_code == 204


def test_the_sessions_current_org_is_the_one_used_and_switching_switches_data(org, other_org, marketer, theirs):
    with scopes_disabled():
        MembershipFactory(org=other_org, user=marketer, role=Role.MARKETER)
    ours = ContactFactory(org=org, email="ours@example.com")
    browser = session_for(marketer, org=org)

    assert [c["email"] for c in browser.get(CONTACTS).json()["results"]] == ["ours@example.com"]
    assert browser.get(f"{CONTACTS}{theirs.pk}/").status_code == 404
    assert send(browser, "patch", f"{CONTACTS}{theirs.pk}/", {"first_name": "Hacked"}).status_code == 404

    session = browser.session  # what the console's org switcher stores
    session[SESSION_KEY] = other_org.pk
    session.save()
    assert [c["email"] for c in browser.get(CONTACTS).json()["results"]] == ["secret@globex.example"]
    assert browser.get(f"{CONTACTS}{ours.pk}/").status_code == 404
    assert send(browser, "post", CONTACTS, {"email": "new@globex.example"}).status_code == 201
    with org_context(other_org):
        assert Contact.objects.get(email="new@globex.example").org_id == other_org.pk


def test_an_analyst_reads_but_every_write_is_a_403_saying_why(org, member_factory):
    contact = ContactFactory(org=org)
    browser = session_for(member_factory(org, Role.ANALYST, username="ann"))

    assert browser.get(CONTACTS).status_code == 200
    assert browser.get("/api/v1/workflows/").status_code == 200
    created = send(browser, "post", CONTACTS, {"email": "x@example.com"})
    assert created.status_code == 403
    assert created.json()["detail"].startswith("Your role (analyst) may not add contacts in Org A")
    assert send(browser, "patch", f"{CONTACTS}{contact.pk}/", {"first_name": "X"}).status_code == 403
    assert send(browser, "delete", f"{CONTACTS}{contact.pk}/").status_code == 403
    assert Contact.objects.filter(pk=contact.pk, first_name=contact.first_name).exists()
    # A check that computes and writes nothing needs only to read.
    assert send(browser, "post", "/api/v1/conditions/validate/", {"rule": {"==": [1, 1]}}).status_code == 200


def test_a_sales_rep_is_refused_where_the_roles_say(org, member_factory):
    contact = ContactFactory(org=org)
    browser = session_for(member_factory(org, Role.SALES, username="sam"))

    assert browser.get(CONTACTS).status_code == 200
    assert send(browser, "patch", f"{CONTACTS}{contact.pk}/", {"job_title": "CTO"}).status_code == 200
    assert send(browser, "post", CONTACTS, {"email": "x@example.com"}).status_code == 403
    assert send(browser, "delete", f"{CONTACTS}{contact.pk}/").status_code == 403
    refused = browser.get("/api/v1/workflows/")
    assert refused.status_code == 403
    assert "may not view workflows" in refused.json()["detail"]
    assert browser.get("/api/v1/segments/").status_code == 403


def test_a_rep_acts_on_their_own_handoff_only_and_a_key_on_any(org, member_factory, api):
    reps = [member_factory(org, Role.SALES, username=f"rep{i}") for i in range(2)]
    mine = handoff_create(org=org, contact=ContactFactory(org=org), reason="manual")
    theirs = handoff_create(org=org, contact=ContactFactory(org=org), reason="manual")
    holder = {h.assignee_id for h in (mine, theirs)}
    assert holder == {r.pk for r in reps}, "round robin gives each rep one"
    rep = next(r for r in reps if r.pk == mine.assignee_id)
    browser = session_for(rep)

    assert [h["id"] for h in browser.get("/api/v1/handoffs/").json()["results"]] == [mine.pk]
    assert send(browser, "post", f"/api/v1/handoffs/{theirs.pk}/accept/").status_code == 404
    accepted = send(browser, "post", f"/api/v1/handoffs/{mine.pk}/accept/")
    assert accepted.status_code == 200, accepted.content
    assert accepted.json()["status"] == Handoff.Status.ACCEPTED
    # The org's server key acts as a manager would.
    assert api.post(f"/api/v1/handoffs/{theirs.pk}/accept/").status_code == 200


def test_publishing_through_the_session_records_who(org, marketer):
    workflow = workflow_create(
        org=org,
        name="Welcome",
        slug="welcome",
        definition={
            "trigger": {"type": "manual"},
            "steps": [{"id": "note", "type": "action", "action": "log", "config": {"message": "hi"}, "next": None}],
        },
    )
    browser = session_for(marketer)

    response = send(browser, "post", f"/api/v1/workflows/{workflow.pk}/publish/")

    assert response.status_code == 200, response.content
    assert WorkflowVersion.objects.get(workflow=workflow).published_by == marketer


def test_a_superuser_acts_on_the_sessions_current_org(org, other_org, theirs):
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    browser = session_for(root, org=other_org)

    assert [c["email"] for c in browser.get(CONTACTS).json()["results"]] == ["secret@globex.example"]
    assert send(browser, "post", CONTACTS, {"email": "root@globex.example"}).status_code == 201
    with org_context(other_org):
        assert Contact.objects.get(email="root@globex.example").org_id == other_org.pk


def test_a_user_of_no_org_and_an_anonymous_caller_are_refused(db):
    lost = session_for(UserFactory(username="lost"))
    response = lost.get(CONTACTS)
    assert response.status_code == 403
    assert "not a member of any organisation" in response.json()["detail"]
    assert Client().get(CONTACTS).status_code == 401


def test_keys_keep_working_and_a_key_wins_over_the_session(org, marketer):
    write_key = api_key_create(org=org, name="web", scope="write")[1]
    server_key = api_key_create(org=org, name="server")[1]
    browser = session_for(marketer)

    # A write key sent from a logged-in browser has the key's rights, not the session's.
    as_write_key = browser.get(CONTACTS, headers={"Authorization": f"Bearer {write_key}"})
    assert as_write_key.status_code == 403
    # A server key needs no CSRF token: it is not a cookie a page could send without asking.
    created = browser.post(
        CONTACTS, {"email": "k@example.com"}, content_type=JSON, headers={"Authorization": f"Bearer {server_key}"}
    )
    assert created.status_code == 201


def test_a_sessions_contact_list_has_bounded_queries(org, marketer, django_assert_max_num_queries):
    for _ in range(20):
        ContactFactory(org=org)
    browser = session_for(marketer)
    browser.get(CONTACTS)  # warm: the session, the user

    with django_assert_max_num_queries(12):
        response = browser.get(CONTACTS, {"page_size": 20})

    assert len(response.json()["results"]) == 20


@pytest.mark.slow
def test_a_console_page_in_chromium_calls_the_api_with_its_session_and_csrf_cookie(org, live_server, marketer):
    sync_playwright = playwright_or_skip()
    ContactFactory(org=org, country="DE", email="ana@example.com")
    call = """async ([method, url, body, withToken]) => {
        const token = (document.cookie.match(/csrftoken=([^;]+)/) || [])[1] || "";
        const headers = {"Content-Type": "application/json", ...(withToken ? {"X-CSRFToken": token} : {})};
        const response = await fetch(url, {method, headers, credentials: "same-origin",
                                           body: body === null ? undefined : JSON.stringify(body)});
        return [response.status, await response.json()];
    }"""

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            login(page, live_server.url, "mara", next_url="/admin/")
            rule = {"rule": {"==": [{"var": "country"}, "DE"]}}
            preview_without = page.evaluate(call, ["POST", "/api/v1/segments/preview/", rule, False])
            preview = page.evaluate(call, ["POST", "/api/v1/segments/preview/", rule, True])
            created = page.evaluate(call, ["POST", "/api/v1/contacts/", {"email": "bo@example.com"}, True])
            members = page.evaluate(call, ["GET", "/api/v1/members/", None, False])
            page.goto(f"{live_server.url}/api/v1/conditions/fields/")
            SHOTS.mkdir(exist_ok=True)
            page.screenshot(path=str(SHOTS / "conditions-fields.png"))
        finally:
            browser.close()

    assert preview_without[0] == 403 and "CSRF" in preview_without[1]["detail"]
    assert preview[0] == 200 and preview[1]["count"] == 1
    assert preview[1]["sample"][0]["email"] == "ana@example.com"
    assert created[0] == 201
    assert Contact.objects.filter(org=org, email="bo@example.com").exists()
    assert members[0] == 200 and [m["id"] for m in members[1]["results"]] == [marketer.pk]
