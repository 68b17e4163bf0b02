"""The data-subject request queue in the console: ordered by due date with days left or overdue
(highlighted), filters and search; the compliance role adds a request with a form (no JSON) and
answers it from its page (send the link again, extend, complete, reject), each through the
services; a marketer may read the queue but not act; the page fits 1366 px in Chromium."""

from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from compliance.data_subject_requests import request_receive, request_verify, request_verify_token
from compliance.models import ConsentRecord, DataSubjectRequest, RequestStatus
from marketing.models import Role
from tests.factories import ContactFactory

LIST = reverse("admin:compliance_datasubjectrequest_changelist")
ADD = reverse("admin:compliance_datasubjectrequest_add")


def page(pk) -> str:
    return reverse("admin:compliance_datasubjectrequest_change", args=[pk])


def step(pk, name) -> str:
    return reverse(f"admin:compliance_datasubjectrequest_{name}", args=[pk])


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def officer(org, member_factory):
    return member_factory(org, Role.COMPLIANCE, username="cora")


def make(org, email, *, due_in_days=None, confirmed=True, **fields):
    request = request_receive(org=org, email=email, source="api", **{"kind": "access", **fields})
    if confirmed:
        request = request_verify(token=request_verify_token(request))
    if due_in_days is not None:
        DataSubjectRequest.objects.filter(pk=request.pk).update(due_at=timezone.now() + timedelta(days=due_in_days))
    return request


def test_the_queue_is_by_due_date_with_days_left_and_overdue_highlighted(org, officer):
    later = make(org, "later@example.com", due_in_days=20.5)
    late = make(org, "late@example.com", due_in_days=-3.5)
    soon = make(org, "soon@example.com", due_in_days=2.5, kind="erasure", law="ccpa")
    closed = make(org, "closed@example.com", due_in_days=-9)
    DataSubjectRequest.objects.filter(pk=closed.pk).update(status=RequestStatus.COMPLETED)
    officer_console = client_for(officer)

    html = officer_console.get(LIST).content.decode()

    positions = [html.index(r.email) for r in (closed, late, soon, later)]
    assert positions == sorted(positions)
    assert '<span class="dsar-overdue"' in html and "overdue by 3 days" in html
    assert '<span class="dsar-soon"' in html and "2 days left" in html and "20 days left" in html
    assert "CCPA" in html and "API" in html
    assert late.email in officer_console.get(LIST, {"deadline": "overdue"}).content.decode()
    overdue_only = officer_console.get(LIST, {"deadline": "overdue"}).content.decode()
    assert soon.email not in overdue_only and closed.email not in overdue_only
    assert soon.email in officer_console.get(LIST, {"deadline": "soon"}).content.decode()
    assert [soon.email] == [r.email for r in officer_console.get(LIST, {"kind": "erasure"}).context["cl"].result_list]
    assert [later.email] == [r.email for r in officer_console.get(LIST, {"q": "LATER@"}).context["cl"].result_list]
    assert [closed.email] == [
        r.email for r in officer_console.get(LIST, {"status": "completed"}).context["cl"].result_list
    ]


def test_the_compliance_role_enters_a_request_with_a_form(org, officer, sent):
    contact = ContactFactory(org=org, email="pat@example.com")
    officer_console = client_for(officer)
    form = officer_console.get(ADD).content.decode()
    assert 'name="kind"' in form and 'name="email"' in form and 'name="law"' in form and "JSON" not in form

    bad = officer_console.post(ADD, {"kind": "access", "email": "not an address", "law": "gdpr"})
    assert bad.status_code == 200 and "Check the address" in bad.content.decode()
    assert not DataSubjectRequest.objects.exists()

    added = sent(
        lambda: officer_console.post(
            ADD, {"kind": "rectification", "email": "Pat@Example.com", "law": "gdpr", "details": "New surname"}
        )
    )

    request = DataSubjectRequest.objects.get()
    assert added.status_code == 302 and added["Location"] == page(request.pk)
    assert (request.source, request.contact, request.email, request.status) == (
        "console",
        contact,
        "pat@example.com",
        "unverified",
    )
    [email] = mail.outbox
    assert email.to == ["pat@example.com"] and "/privacy/requests/confirm/" in email.body


def test_the_steps_on_a_requests_page(org, officer, sent):
    contact = ContactFactory(org=org, email="pat@example.com")
    officer_console = client_for(officer)
    waiting = sent(lambda: make(org, "pat@example.com", confirmed=False, kind="opt_out_of_sale"))

    html = officer_console.get(page(waiting.pk)).content.decode()
    assert "Send the confirmation link again" in html and "Complete the request" not in html
    assert "Extend the deadline" in html and "Reject the request" in html

    sent(lambda: officer_console.post(step(waiting.pk, "resend")))
    assert len(mail.outbox) == 2
    early = officer_console.post(step(waiting.pk, "complete"), follow=True)
    assert "not confirmed yet" in early.content.decode()

    request_verify(token=request_verify_token(DataSubjectRequest.objects.get()))
    no_reason = officer_console.post(step(waiting.pk, "extend"), {"reason": ""}, follow=True)
    assert "Reason: This field is required." in no_reason.content.decode()
    sent(lambda: officer_console.post(step(waiting.pk, "extend"), {"reason": "Three systems to search"}))
    request = DataSubjectRequest.objects.get()
    assert request.extended and request.extension_reason == "Three systems to search"
    html = officer_console.get(page(waiting.pk)).content.decode()
    assert "Extend the deadline" not in html and "Complete the request" in html

    done = sent(lambda: officer_console.post(step(waiting.pk, "complete"), {"outcome": ""}, follow=True))
    assert "completed; the person was told" in done.content.decode()
    request.refresh_from_db()
    assert (request.status, request.handled_by) == (RequestStatus.COMPLETED, officer)
    assert ConsentRecord.objects.get(contact=contact).purpose == "sale_sharing"
    html = officer_console.get(page(waiting.pk)).content.decode()
    assert "This request is completed" in html and "Reject the request" not in html


def test_a_rejection_needs_a_reason(org, officer, sent):
    request = sent(lambda: make(org, "pat@example.com"))
    officer_console = client_for(officer)

    refused = officer_console.post(step(request.pk, "reject"), {"reason": "  "}, follow=True)
    assert "Reason:" in refused.content.decode()
    assert DataSubjectRequest.objects.get().status == RequestStatus.OPEN

    sent(lambda: officer_console.post(step(request.pk, "reject"), {"reason": "Not the account holder"}))
    request.refresh_from_db()
    assert (request.status, request.outcome) == (RequestStatus.REJECTED, "Not the account holder")


def test_an_admin_may_act_and_a_marketer_may_only_read(org, member_factory, sent):
    request = sent(lambda: make(org, "pat@example.com", kind="rectification"))
    marketer = client_for(member_factory(org, Role.MARKETER, username="mara"))
    admin = client_for(member_factory(org, Role.ADMIN, username="ada"))

    assert marketer.get(LIST).status_code == 200
    html = marketer.get(page(request.pk)).content.decode()
    assert "only the compliance team and admins act on it" in html and "Complete the request" not in html
    assert marketer.get(ADD).status_code == 403
    for name, body in (
        ("resend", {}),
        ("extend", {"reason": "x"}),
        ("complete", {"outcome": "x"}),
        ("reject", {"reason": "x"}),
    ):
        assert marketer.post(step(request.pk, name), body).status_code == 403
    request.refresh_from_db()
    assert (request.status, request.extended) == (RequestStatus.OPEN, False)
    assert (
        marketer.post(
            reverse("admin:compliance_datasubjectrequest_delete", args=[request.pk]), {"post": "yes"}
        ).status_code
        == 403
    )

    sent(lambda: admin.post(step(request.pk, "complete"), {"outcome": "Surname corrected"}))
    request.refresh_from_db()
    assert (request.status, request.outcome) == (RequestStatus.COMPLETED, "Surname corrected")


def test_another_orgs_request_is_not_found(org, other_org, officer):
    from marketing.tenancy import org_context

    with org_context(other_org):
        theirs = make(other_org, "pat@example.com")
    officer_console = client_for(officer)

    assert officer_console.post(step(theirs.pk, "reject"), {"reason": "x"}).status_code == 404
    assert officer_console.get(page(theirs.pk)).status_code in (302, 404)
    with org_context(other_org):
        assert DataSubjectRequest.objects.get(pk=theirs.pk).status == RequestStatus.OPEN


def test_the_queue_the_add_form_and_a_requests_page_in_chromium(org, officer, live_server, eager_tasks):
    from tests.browser import WIDTH, assert_no_sideways_scroll, launch, login, shots_dir

    ContactFactory(org=org, email="pat@example.com")
    late = make(org, "late-with-a-rather-long-address@example-company.example", due_in_days=-4.5, kind="portability")
    make(org, "soon@example.com", due_in_days=3.5, kind="erasure", law="ccpa")
    request = make(org, "pat@example.com", due_in_days=12.5, kind="rectification", details="My surname is Okafor")
    waiting = make(org, "wait@example.com", confirmed=False, kind="erasure")
    confirm = reverse("compliance:dsar-verify", args=[request_verify_token(waiting)])
    shots = shots_dir("dsar-shots")
    with launch() as browser:
        person = browser.new_page(viewport={"width": 390, "height": 800})
        person.goto(f"{live_server.url}{confirm}")
        person.screenshot(path=str(shots / "confirm.png"), full_page=True)
        assert_no_sideways_scroll(person, 390)
        with person.expect_navigation():
            person.click("text=Confirm my request")
        confirmed = person.inner_text("body")
        person.screenshot(path=str(shots / "confirmed.png"), full_page=True)

        tab = browser.new_page(viewport={"width": WIDTH, "height": 800})
        login(tab, live_server.url, "cora")
        tab.goto(f"{live_server.url}{LIST}")
        overdue = tab.inner_text(".dsar-overdue")
        tab.screenshot(path=str(shots / "queue.png"), full_page=True)
        assert_no_sideways_scroll(tab)

        tab.goto(f"{live_server.url}{ADD}")
        tab.screenshot(path=str(shots / "add.png"), full_page=True)
        assert_no_sideways_scroll(tab)

        tab.goto(f"{live_server.url}{page(request.pk)}")
        tab.fill("#dsar-complete-outcome", "Last name corrected to Okafor")
        tab.screenshot(path=str(shots / "request.png"), full_page=True)
        assert_no_sideways_scroll(tab)
        with tab.expect_navigation():
            tab.click("text=Complete the request")
        message = tab.inner_text("body")
        tab.screenshot(path=str(shots / "completed.png"), full_page=True)

    assert "Your request is confirmed" in confirmed
    assert overdue == "overdue by 4 days" and late.pk
    assert "completed; the person was told" in message


def test_the_queue_does_not_query_per_row(org, officer, django_assert_max_num_queries):
    for n in range(3):
        make(org, f"first{n}@example.com")
    officer_console = client_for(officer)
    officer_console.get(LIST)  # warm the session and the content types
    with django_assert_max_num_queries(30) as few:
        officer_console.get(LIST)
    for n in range(20):
        make(org, f"more{n}@example.com", confirmed=False)
    with django_assert_max_num_queries(len(few.captured_queries)):
        html = officer_console.get(LIST).content.decode()
    assert "more19@example.com" in html


def test_the_demo_fills_the_queue_once(org, officer):
    import io

    from compliance.demo import demo_data_subject_requests

    for n in range(4):
        ContactFactory(org=org, email=f"demo{n}@example.com")
    demo_data_subject_requests(org=org, users={}, stdout=io.StringIO())
    demo_data_subject_requests(org=org, users={}, stdout=io.StringIO())

    assert DataSubjectRequest.objects.count() == 4
    html = client_for(officer).get(LIST).content.decode()
    assert "overdue by" in html and "days left" in html and "Waiting for the person to confirm" in html
    assert DataSubjectRequest.objects.filter(status=RequestStatus.UNVERIFIED).count() == 1
