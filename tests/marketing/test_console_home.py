"""The console's home: each role's panels, with numbers counted from its org's rows only and
linked to the lists behind them; a sales rep's queue; a bounded number of queries; and the
marketer's and admin's home in chromium at 1366×768 without a sideways scroll."""

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled

from channels_app.models import Message
from marketing.models import DispatchBatch, Role
from marketing.tenancy import org_context
from scoring.handoffs import handoff_create
from tests.browser import CHROMIUM, CHROMIUM_ARGS, login, page_width, playwright_or_skip
from tests.factories import ContactFactory, UserFactory
from workflows.engine import instances_advance_due
from workflows.models import Approval
from workflows.services import workflow_create, workflow_enrol_manually, workflow_publish

SHOTS = Path("/tmp/console-shots")  # noqa: S108  screenshots to look at, not secrets
WIDTH = 1366
HOME = "/admin/"

WAITING = [
    {"id": "wait", "type": "delay", "config": {"duration": "P1D"}, "next": "done"},
    {"id": "done", "type": "action", "action": "log", "config": {"message": "done"}, "next": None},
]
# Not a two-letter country: the contact service refuses it, a permanent error with no on_error.
FAILING = [
    {"id": "bad", "type": "action", "action": "update_field", "config": {"field": "country", "value": "Germany"}}
]
APPROVAL = [
    {
        "id": "ok",
        "type": "approval",
        "approvers": {"role": "marketer"},
        "approved_next": None,
        "rejected_next": None,
        "timeout_next": None,
    }
]


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def published(org, slug: str, steps: list) -> object:
    with org_context(org):
        workflow = workflow_create(
            org=org, name=slug.title(), slug=slug, definition={"trigger": {"type": "manual"}, "steps": steps}
        )
        workflow_publish(workflow=workflow)
        workflow.refresh_from_db()
    return workflow


def messages(org, contact, **by_status) -> None:
    now = timezone.now()
    with org_context(org):
        for status, count in by_status.items():
            for n in range(count):
                Message.objects.create(
                    org=org,
                    contact=contact,
                    channel="email",
                    idempotency_key=f"{org.slug}:{status}:{n}",
                    to="a@example.com",
                    status=status,
                    sent_at=None if status in ("queued", "failed") else now - timedelta(days=1),
                )


@pytest.fixture
def week(org, other_org):
    """Org A: a workflow with 3 runs waiting, one with 2 failed runs, one with an approval
    waiting, 4 emails sent (2 opened, 1 of them clicked), 1 queued, 1 failed, a pending dispatch
    batch. Org B: the same workflow with 5 runs and 7 emails sent, which org A must not count."""
    contacts = ContactFactory.create_batch(3, org=org)
    waiting = published(org, "welcome", WAITING)
    failing = published(org, "broken", FAILING)
    approving = published(org, "review", APPROVAL)
    with org_context(org):
        workflow_enrol_manually(workflow=waiting, contact_ids=[c.pk for c in contacts])
        workflow_enrol_manually(workflow=failing, contact_ids=[c.pk for c in contacts[:2]])
        workflow_enrol_manually(workflow=approving, contact_ids=[contacts[0].pk])
    theirs = ContactFactory.create_batch(5, org=other_org)
    their_workflow = published(other_org, "welcome", WAITING)
    with org_context(other_org):
        workflow_enrol_manually(workflow=their_workflow, contact_ids=[c.pk for c in theirs])
    instances_advance_due(now=timezone.now())
    messages(org, contacts[0], sent=2, opened=1, clicked=1, queued=1, failed=1)
    messages(other_org, theirs[0], sent=7, failed=3)
    DispatchBatch.objects.create(org=org, event_ids=[])
    with org_context(other_org):
        DispatchBatch.objects.create(org=other_org, event_ids=[])
    return {"waiting": waiting, "failing": failing, "approving": approving}


def panel(html: str, slug: str) -> str:
    start = html.index(f'data-panel="{slug}"')
    end = html.find('data-panel="', start + 1)
    return html[start : end if end > 0 else len(html)]


def stat(html: str, panel_slug: str, stat_slug: str) -> str:
    block = panel(html, panel_slug)
    start = block.index(f'data-stat="{stat_slug}"')
    value = block.index('class="value"', start)
    return block[block.index(">", value) + 1 : block.index("<", value)]


def test_a_marketers_home_shows_the_weeks_workflows_sends_and_approvals_of_their_org_only(
    org, week, console, django_assert_max_num_queries
):
    with django_assert_max_num_queries(20):
        response = console.get(HOME)
    html = response.content.decode()
    assert response.status_code == 200
    workflows = panel(html, "active-workflows-last-7-days")
    waiting = week["waiting"]
    runs = reverse("admin:workflows_workflowinstance_changelist")
    # Welcome: 3 enrolled, 3 in progress, 0 failed; Broken: 2 enrolled, 2 failed.
    assert f'<a href="{reverse("admin:workflows_workflow_change", args=[waiting.pk])}">Welcome</a>' in workflows
    assert f'<a href="{runs}?workflow__id__exact={waiting.pk}&amp;enrolled=7">3</a>' in workflows
    failed = f"{runs}?workflow__id__exact={week['failing'].pk}&amp;status__exact=failed&amp;ended=7"
    assert f'<a href="{failed}">2</a>' in workflows
    sends = panel(html, "sends-by-channel-last-7-days")
    outbox = reverse("admin:channels_app_message_changelist")
    assert f'<a href="{outbox}?channel__exact=email&amp;sent=7">4</a>' in sends  # not org B's 7
    assert "2 (50 %)" in sends and "1 (25 %)" in sends
    approvals = panel(html, "waiting-for-approval")
    approval = Approval.objects.get(org=org)
    assert stat(html, "waiting-for-approval", "pending") == "1"
    assert reverse("admin:workflows_approval_change", args=[approval.pk]) in approvals
    assert 'data-panel="workflow-engine"' not in html  # system health is the admins'
    assert "app-list" not in html and "Periodic tasks" not in html  # the model list is in the sidebar


def test_an_admins_home_adds_system_health_for_their_org(org, week, member_factory, django_assert_max_num_queries):
    admin = client_for(member_factory(org, Role.ADMIN, username="ada"))
    with django_assert_max_num_queries(25):
        html = admin.get(HOME).content.decode()
    assert 'data-panel="active-workflows-last-7-days"' in html  # the marketer's view too
    assert stat(html, "workflow-engine", "failed-steps-7-days") == "2"
    assert stat(html, "outbox", "failed-24-h") == "1"  # not org B's 3
    assert stat(html, "outbox", "waiting-to-send") == "1"
    assert stat(html, "workflow-engine", "runs-due-now") == "0"
    assert stat(html, "dispatch-backlog", "pending") == "1"  # not org B's
    failed = reverse("admin:workflows_workflowsteprun_changelist") + "?status__exact=failed"
    assert failed in html and admin.get(failed).status_code == 200


def test_a_superusers_health_counts_every_org(org, other_org, week):
    root = client_for(UserFactory(is_superuser=True, username="root"))
    html = root.get(HOME).content.decode()
    assert stat(html, "outbox", "failed-24-h") == "4"  # 1 of org A, 3 of org B
    assert stat(html, "workflow-engine", "failed-steps-7-days") == "2"


def test_a_sales_rep_lands_on_their_queue_with_the_sla(org, member_factory, django_assert_max_num_queries):
    rep = member_factory(org, Role.SALES, username="rep")
    other = member_factory(org, Role.SALES, username="rep2")
    made = [
        handoff_create(org=org, contact=ContactFactory(org=org, first_name=f"Lead{n}"), reason="threshold")
        for n in range(4)
    ]
    with scopes_disabled():
        mine = [h for h in made if h.assignee_id == rep.pk]
        theirs = [h for h in made if h.assignee_id == other.pk]
        assert mine and theirs
        now = timezone.now()
        type(mine[0]).objects.filter(pk=mine[0].pk).update(sla_due_at=now - timedelta(hours=1))
    client = client_for(rep)
    with django_assert_max_num_queries(25):
        html = client.get(HOME).content.decode()
    queue = panel(html, "my-queue")
    assert stat(html, "my-queue", "open") == str(len(mine))
    assert stat(html, "my-queue", "overdue") == "1"
    for handoff in mine:
        assert reverse("admin:scoring_handoff_change", args=[handoff.pk]) in queue
    for handoff in theirs:
        assert reverse("admin:scoring_handoff_change", args=[handoff.pk]) not in queue
    assert "?sla=overdue" in queue and "Overdue" in queue
    assert 'data-panel="active-workflows-last-7-days"' not in html


def test_the_home_renders_for_a_superuser_of_no_org_and_sends_a_user_of_none_to_log_in(db):
    root = client_for(UserFactory(is_superuser=True, username="root"))
    response = root.get(HOME)
    assert response.status_code == 200 and 'data-panel="workflow-engine"' in response.content.decode()
    nobody = client_for(UserFactory(username="nobody"))
    response = nobody.get(HOME)
    assert response.status_code == 302 and reverse("admin:login") in response.url


@pytest.mark.slow
def test_the_marketers_and_admins_home_fit_1366_pixels(org, week, live_server, member_factory):
    sync_playwright = playwright_or_skip()
    SHOTS.mkdir(parents=True, exist_ok=True)
    for role in (Role.MARKETER, Role.ADMIN):
        member_factory(org, role, username=f"home-{role}")
    widths = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for role in (Role.MARKETER, Role.ADMIN):
                page = browser.new_page(viewport={"width": WIDTH, "height": 768})
                login(page, live_server.url, f"home-{role}")
                page.goto(f"{live_server.url}{HOME}")
                page.screenshot(path=str(SHOTS / f"home-{role}.png"), full_page=True)
                widths[role] = page_width(page)
                assert page.locator(".home-panel").count() >= (5 if role == Role.ADMIN else 3)
                # A number opens the list behind it.
                with page.expect_navigation():
                    page.locator('[data-panel="waiting-for-approval"] [data-stat="pending"] a').click()
                assert "/admin/workflows/approval/" in page.url and "status__exact=pending" in page.url
                page.close()
        finally:
            browser.close()
    assert all(width <= WIDTH for width in widths.values()), widths


def test_each_workflow_number_opens_the_list_of_exactly_the_runs_it_counts(org, week, console):
    from workflows.models import WorkflowInstance

    # Runs of an earlier week: neither enrolled nor failed this week, so neither number counts them.
    old = timezone.now() - timedelta(days=10)
    WorkflowInstance.objects.filter(workflow=week["failing"]).update(triggered_at=old, finished_at=old)
    html = console.get(HOME).content.decode()
    workflows = panel(html, "active-workflows-last-7-days")
    links = [
        (href.replace("&amp;", "&"), int(number))
        for href, number in re.findall(r'<a href="([^"]*workflowinstance[^"]*)">(\d+)</a>', workflows)
    ]
    assert len(links) >= 6  # enrolled, in progress and failed for two workflows at least
    for href, number in links:
        listed = console.get(href).context["cl"].result_count
        assert listed == number, href


FIGURE_LINK = re.compile(r'<a (?:class="value" )?href="([^"]+)">(\d+)(?: \([^)]*\))?</a>')


def test_every_figure_on_each_roles_home_opens_the_list_of_exactly_what_it_counts(org, week, member_factory):
    from workflows.models import WorkflowInstance, WorkflowStepRun

    now = timezone.now()
    old = now - timedelta(days=10)
    contact = ContactFactory(org=org)
    # Rows a list without the right filter would count too: an email clicked and one opened
    # ten days ago, one held (waiting like the queued one), one that failed two days ago.
    for n, status in enumerate(("clicked", "opened", "held", "failed")):
        Message.objects.create(
            org=org,
            contact=contact,
            channel="email",
            idempotency_key=f"older:{n}",
            to="b@example.com",
            status=status,
            sent_at=old if status in ("clicked", "opened") else None,
            created_at=now - timedelta(days=2) if status == "failed" else old,
        )
    due = WorkflowInstance.objects.filter(workflow=week["waiting"]).order_by("pk").first()
    WorkflowInstance.objects.filter(pk=due.pk).update(wake_at=now - timedelta(minutes=1))  # one run due now
    stale = WorkflowStepRun.objects.filter(workflow=week["failing"], status="failed").order_by("pk").first()
    WorkflowStepRun.objects.filter(pk=stale.pk).update(completed_at=old)  # failed before this week
    rep = member_factory(org, Role.SALES, username="rep")
    for n in range(2):
        handoff_create(org=org, contact=ContactFactory(org=org, first_name=f"Lead{n}"), reason="threshold")

    followed = {}
    for role in (Role.MARKETER, Role.ADMIN, Role.SALES):
        client = client_for(rep if role == Role.SALES else member_factory(org, role, username=f"{role}-home"))
        html = client.get(HOME).content.decode()
        links = [(href.replace("&amp;", "&"), int(number)) for href, number in FIGURE_LINK.findall(html)]
        for href, number in links:
            listed = client.get(href).context["cl"].result_count
            assert listed == number, (role, href, number, listed)
        followed[role] = [href for href, _ in links]

    marketer = followed[Role.MARKETER]
    assert any("engagement=opened" in href for href in marketer)  # Opened and Clicked are links
    assert any("engagement=clicked" in href for href in marketer)
    assert sum("message" in href for href in marketer) == 3  # sent, opened and clicked of email
    admin = followed[Role.ADMIN]
    assert {"progress=due", "completed=7", "outbox=waiting", "created=1"} <= {
        part for href in admin for part in href.split("?")[1].split("&")
    }
    assert len(followed[Role.SALES]) == 3  # open, due soon, overdue
