"""Using a library template: the API's list and use (what it creates, a second use reusing it),
publish refusing drafts it made, and — in the seeded demo org — every template used, published
and run for a demo contact until each of its send steps is ``sent`` (email to a loopback SMTP
server, Slack and social to destinations that log)."""

import tempfile
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

import tests.channels_app.conftest as channel_fixtures
from channels_app.models import Destination, Message, MessageTemplate
from channels_app.outbox import messages_due, messages_send
from channels_app.template_versions import template_publish
from compliance.selectors import consent_states
from marketing.ingestion import events_ingest, events_validate
from marketing.models import Contact, Organization, Segment, User
from marketing.tenancy import org_context
from tests.browser import CHROMIUM, CHROMIUM_ARGS, login, page_width, playwright_or_skip
from workflows.engine import instances_advance_due
from workflows.library import SEND_ACTIONS, library_install, library_templates, template_needs
from workflows.models import Approval, Workflow, WorkflowInstance, WorkflowStepRun, WorkflowTemplate
from workflows.services import approval_decide, library_use, workflow_enrol, workflow_publish

TEMPLATES = "/api/v1/workflow-templates/"


@pytest.fixture
def library(org):
    library_install(org=org)
    return {t.slug: t for t in WorkflowTemplate.objects.filter(org=org)}


def _use(api, template) -> dict:
    response = api.post(f"{TEMPLATES}{template.pk}/use/", {}, content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()


def test_the_api_lists_the_library(api, library, other_org):
    with org_context(other_org):
        library_install(org=other_org)

    response = api.get(TEMPLATES)

    assert response.status_code == 200
    rows = response.json()["results"]
    assert {r["slug"] for r in rows} == {t.slug for t in library_templates()}
    assert {r["id"] for r in rows} == {t.pk for t in library.values()}  # the key's org only
    assert all(r["name"] and r["description"] for r in rows)


def test_use_creates_the_workflow_and_what_it_names_as_drafts(api, org, library):
    body = _use(api, library["customer-onboarding"])

    workflow = Workflow.objects.get(pk=body["workflow"]["id"])
    assert (workflow.slug, workflow.status, workflow.template_id) == (
        "customer-onboarding",
        Workflow.Status.DRAFT,
        library["customer-onboarding"].pk,
    )
    assert body["workflow"]["slug"] == "customer-onboarding"
    needs = template_needs(library["customer-onboarding"].definition)
    assert body["created"] == {
        "message_templates": [{"slug": s, "reused": False} for s in needs["message_templates"]],
        "segments": [],
        "destinations": [{"slug": "customer-success", "reused": False}],
    }
    made = MessageTemplate.objects.get(org=org, slug="onboarding-welcome")
    assert made.live_version_id is None and made.library_template == "customer-onboarding"
    variant = made.variants[0]
    assert "{{ org.name }}" in variant["text"] and "default:" in variant["subject"] + variant["html"]
    assert variant["preheader"] and variant["html"].startswith("<p>")
    destination = Destination.objects.get(org=org, slug="customer-success")
    assert (destination.active, destination.url, destination.library_template) == (
        False,
        "",
        "customer-onboarding",
    )
    assert WorkflowTemplate.objects.get(pk=library["customer-onboarding"].pk).usage_count == 1


def test_a_second_use_makes_slug_2_and_reuses_what_exists(api, org, library):
    first = _use(api, library["weekly-performance-report"])
    second = _use(api, library["weekly-performance-report"])

    assert first["created"]["segments"] == [{"slug": "report-recipients", "reused": False}]
    assert second["workflow"]["slug"] == "weekly-performance-report-2"
    assert second["created"] == {
        "message_templates": [
            {"slug": "weekly-performance-report", "reused": True},
            {"slug": "weekly-report-sent", "reused": True},
        ],
        "segments": [{"slug": "report-recipients", "reused": True}],
        "destinations": [{"slug": "marketing", "reused": True}],
    }
    assert MessageTemplate.objects.filter(org=org, slug="weekly-performance-report").count() == 1
    assert Segment.objects.get(org=org, slug="report-recipients").library_template == "weekly-performance-report"


def test_use_keeps_what_the_org_made_itself(org, library):
    mine = MessageTemplate.objects.create(
        org=org, slug="we-miss-you", name="Ours", channel="email", variants=[{"name": "A", "weight": 1, "text": "x"}]
    )

    _, created = library_use(template=library["churn-prevention"])

    assert {"slug": "we-miss-you", "reused": True} in created["message_templates"]
    mine.refresh_from_db()
    assert (mine.name, mine.library_template) == ("Ours", "")


def test_use_of_another_orgs_template_is_a_404(api, other_org):
    with org_context(other_org):
        library_install(org=other_org)
        theirs = WorkflowTemplate.objects.filter(org=other_org).first()

    assert api.post(f"{TEMPLATES}{theirs.pk}/use/", {}, content_type="application/json").status_code == 404
    with org_context(other_org):
        assert not Workflow.objects.filter(org=other_org).exists()


def test_publish_refuses_an_unpublished_template_and_an_inactive_destination_by_name(api, org, library):
    from scoring.models import ScoringModel

    ScoringModel.objects.create(org=org, slug="lead-score", name="Lead score", is_default=True)
    body = _use(api, library["churn-prevention"])
    url = f"/api/v1/workflows/{body['workflow']['id']}/publish/"

    response = api.post(url, {}, content_type="application/json")

    assert response.status_code == 400
    errors = " ".join(response.json()["definition"])
    assert "steps[miss_you].template: the message template “we-miss-you” is not published" in errors
    assert "“win-back-offer” is not published" in errors
    assert "steps[csm].destination: the destination “customer-success” is inactive" in errors
    assert Workflow.objects.get(pk=body["workflow"]["id"]).live_version_id is None

    for template in MessageTemplate.objects.filter(org=org, library_template="churn-prevention"):
        template_publish(template=template)
    still = api.post(url, {}, content_type="application/json")
    assert still.status_code == 400
    assert still.json()["definition"] == [
        "steps[csm].destination: the destination “customer-success” is inactive; activate it first."
    ]

    Destination.objects.filter(org=org, slug="customer-success").update(active=True)
    assert api.post(url, {}, content_type="application/json").status_code == 200


# -- the demo ---------------------------------------------------------------------------------

# How each template's run starts for a demo contact: an event through ingestion (its properties),
# or an enrolment as its trigger would make it.
STARTS = {
    "welcome-series": ("event", "signed_up", {}),
    "lead-qualification": ("event", "form_submitted", {"form": "contact-sales"}),
    "customer-onboarding": ("event", "subscription_started", {}),
    "product-launch-drip": ("enrol", "manual", {}),
    "lead-nurture": ("event", "content_downloaded", {"kind": "guide"}),
    "crisis-response": ("event", "social_mention", {"sentiment": "negative", "reach": 25000}),
    "influencer-campaign-lifecycle": ("event", "influencer_signed", {"deliverables": ["post", "story"]}),
    "weekly-performance-report": ("enrol", "schedule", {}),
    "churn-prevention": ("enrol", "date_relative", {}),
    "trial-to-paid": ("event", "trial_started", {}),
}


# The loopback SMTP server of the channel tests (taken from their conftest: a pytest_plugins line
# would register that conftest a second time when the channel tests run in the same session).
smtp_server = channel_fixtures.smtp_server
smtp = channel_fixtures.smtp


@pytest.fixture
def demo(db, settings):
    """The seeded demo org (``seed_demo`` at a small size), in its org context."""
    settings.DEBUG = True
    call_command("seed_demo", contacts=60, companies=8, stdout=StringIO())
    acme = Organization.objects.get(slug="acme")
    with org_context(acme):
        yield acme


def _demo_contact(org, slug: str) -> Contact:
    """A demo contact with an email address who consented to email marketing (a customer for the
    churn template, whose first step asks; at a large company for lead qualification)."""
    contacts = Contact.objects.filter(org=org, email__isnull=False).order_by("pk")
    if slug == "churn-prevention":
        contacts = contacts.filter(lifecycle_stage="customer")
    if slug == "lead-qualification":  # routed to sales (and Slack) as an enterprise
        contacts = contacts.filter(company__size__gte=500)
    ids = list(contacts.values_list("pk", flat=True))
    consenting = consent_states(org=org, contact_ids=ids, purpose="email_marketing")
    return Contact.objects.get(pk=next(pk for pk in ids if consenting.get(pk)))


def _start(org, workflow, contact, slug: str, now, on_commit) -> None:
    how, kind, properties = STARTS[slug]
    if how == "event":
        items, errors = events_validate([{"type": kind, "contact_id": contact.pk, "properties": properties}])
        with on_commit(execute=True):  # the trigger's dispatch runs after the ingestion commits
            events_ingest(org=org, items=items, errors=errors, source="test")
    else:
        workflow_enrol(
            workflow=workflow, contact_ids=[contact.pk], trigger_type=kind, trigger_key=f"test:{slug}", now=now
        )


def _run_to_the_end(instance: WorkflowInstance, marketer: User, start) -> None:
    """Advances the engine through every delay and timeout (calling it at each wake time), approves
    what waits for approval, and sends what the outbox holds at each step."""
    now = start
    for _ in range(60):
        instances_advance_due(now=now)
        for approval in Approval.objects.filter(instance=instance, status=Approval.Status.PENDING):
            approval_decide(approval=approval, approved=True, by=marketer)
        instances_advance_due(now=now)
        messages_send(message_ids=messages_due(now=now + timedelta(minutes=5)), now=now + timedelta(minutes=5))
        instance.refresh_from_db()
        if instance.status not in ("pending", "running", "waiting"):
            return
        now = max(now + timedelta(minutes=1), instance.wake_at or now)
    raise AssertionError(f"{instance.workflow.slug}: still {instance.status} at {instance.current_step}")


@pytest.mark.slow
@pytest.mark.parametrize("slug", sorted(STARTS))
def test_every_library_template_is_used_published_and_sends_in_the_demo(
    demo, smtp, eager_tasks, django_capture_on_commit_callbacks, slug
):
    marketer = User.objects.get(username="marketer")
    template = WorkflowTemplate.objects.get(org=demo, slug=slug)

    workflow, created = library_use(template=template, by=marketer)
    workflow_publish(workflow=workflow, by=marketer)  # no edit: the demo has what it names
    workflow.refresh_from_db()

    assert all(row["reused"] for rows in created.values() for row in rows)
    contact = _demo_contact(demo, slug)
    start = timezone.now()
    _start(demo, workflow, contact, slug, start, django_capture_on_commit_callbacks)
    instance = WorkflowInstance.objects.get(workflow=workflow, contact=contact)
    _run_to_the_end(instance, marketer, start)

    assert instance.status == "completed", (instance.status, instance.error if hasattr(instance, "error") else "")
    sends = {
        s["id"]: s["action"]
        for s in workflow.live_version.definition["steps"]
        if s.get("type") == "action" and s.get("action") in SEND_ACTIONS
    }
    ran = set(WorkflowStepRun.objects.filter(instance=instance, step_id__in=sends).values_list("step_id", flat=True))
    assert ran, "the run passed no send step"
    messages = Message.objects.filter(workflow=workflow)
    assert {m.step_id for m in messages} == ran
    assert {(m.step_id, m.status) for m in messages} == {(step, "sent") for step in ran}, [
        (m.step_id, m.status, m.error, m.status_history) for m in messages
    ]
    emails = [m for m in messages if m.channel == "email"]
    # (a handoff also mails the sales rep it is assigned to: not a message of the workflow)
    assert len([r for r in smtp.received if r.rcpt_tos == [contact.email]]) == len(emails)


# -- the console ------------------------------------------------------------------------------

TEMPLATE_LIST = "/admin/workflows/workflowtemplate/"
SHOTS = Path(tempfile.gettempdir()) / "library-shots"  # kept after the run, to look at


def test_the_console_use_button_opens_the_new_workflow_and_says_what_it_made(console, org, library):
    template = library["churn-prevention"]
    page = console.get(TEMPLATE_LIST)
    assert f'formaction="{TEMPLATE_LIST}{template.pk}/use/"' in page.content.decode()

    response = console.post(f"{TEMPLATE_LIST}{template.pk}/use/", follow=True)

    workflow = Workflow.objects.get(org=org, slug="churn-prevention")
    assert response.redirect_chain[-1][0] == f"/admin/workflows/workflow/{workflow.pk}/change/"
    [message] = [str(m) for m in response.context["messages"]]
    assert message.startswith("Created the draft workflow “Churn prevention” from “Churn prevention”; made 3 ")
    assert "(drafts to publish: we-miss-you, win-back-offer, churn-risk)" in message
    assert "1 destination (inactive until you activate them: customer-success)" in message


def test_the_console_action_on_one_template_opens_it_and_on_a_second_use_says_what_it_reused(console, org, library):
    template = library["weekly-performance-report"]
    library_use(template=template)
    data = {"action": "create_workflow", "_selected_action": [template.pk]}

    response = console.post(TEMPLATE_LIST, data, follow=True)

    workflow = Workflow.objects.get(org=org, slug="weekly-performance-report-2")
    assert response.redirect_chain[-1][0] == f"/admin/workflows/workflow/{workflow.pk}/change/"
    [message] = [str(m) for m in response.context["messages"]]
    assert "made nothing else; reused 2 message templates" in message and "1 segment (report-recipients)" in message


def test_the_console_use_is_a_post_and_needs_permission(org, library, member_factory):
    from django.test import Client

    from marketing.models import Role

    client = Client()
    client.force_login(member_factory(org, Role.ANALYST))
    template = library["welcome-series"]

    assert client.post(f"{TEMPLATE_LIST}{template.pk}/use/").status_code == 403
    assert not Workflow.objects.filter(org=org).exists()


def test_library_lists_show_where_things_came_from(console, org, library):
    library_use(template=library["weekly-performance-report"])
    MessageTemplate.objects.create(org=org, slug="mine", name="Mine", channel="email", variants=[])

    made = console.get("/admin/channels_app/messagetemplate/?library_template=weekly-performance-report")
    assert made.status_code == 200
    assert set(made.context["cl"].result_list.values_list("slug", flat=True)) == {
        "weekly-performance-report",
        "weekly-report-sent",
    }
    for url in ("/admin/channels_app/destination/", "/admin/marketing/segment/"):
        page = console.get(url)
        assert page.status_code == 200 and "weekly-performance-report" in page.content.decode()


@pytest.mark.slow
def test_using_a_template_in_chromium_opens_the_workflow(org, library, live_server, member_factory):
    from marketing.models import Role

    sync_playwright = playwright_or_skip()
    member_factory(org, Role.MARKETER, username="mara")
    with sync_playwright() as playwright:
        SHOTS.mkdir(exist_ok=True)
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            login(page, live_server.url, "mara", next_url=TEMPLATE_LIST)
            page.screenshot(path=str(SHOTS / "1-library.png"), full_page=True)
            list_width = page_width(page)
            with page.expect_navigation():
                page.click("[data-use-template=trial-to-paid]")
            page.screenshot(path=str(SHOTS / "2-used.png"), full_page=True)
            url, text = page.url, page.inner_text("body")
        finally:
            browser.close()

    workflow = Workflow.objects.get(org=org, slug="trial-to-paid")
    assert url.endswith(f"/admin/workflows/workflow/{workflow.pk}/change/")
    assert "Created the draft workflow “Trial to paid”" in text and "trial-need-help" in text
    assert list_width <= 1366
