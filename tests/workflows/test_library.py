"""The template library: ten valid templates (but for actions other apps register), installed
idempotently per org; the install command; and the workflows demo seeder."""

import copy
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils.module_loading import autodiscover_modules
from django_scopes import scopes_disabled

from marketing.demo import _seeders
from tests.factories import ContactFactory, SegmentFactory
from workflows.actions import actions
from workflows.definitions import definition_errors
from workflows.demo import demo_workflows
from workflows.library import PLUGIN_ACTIONS, library_install, library_templates
from workflows.models import Workflow, WorkflowInstance, WorkflowTemplate
from workflows.services import workflow_from_template, workflow_publish

DESIGN_LIST = {
    "welcome-series",
    "lead-qualification",
    "customer-onboarding",
    "product-launch-drip",
    "lead-nurture",
    "crisis-response",
    "influencer-campaign-lifecycle",
    "weekly-performance-report",
    "churn-prevention",
    "trial-to-paid",
}


@pytest.fixture
def prerequisites(org):
    """What templates name in ``requires`` (segments), the message templates (and Slack or social
    destinations) their send steps use, and a default scoring model, made in ``org``."""
    from channels_app.actions import SendTemplate
    from channels_app.models import Destination, MessageTemplate
    from scoring.models import ScoringModel

    ScoringModel.objects.create(org=org, slug="lead-score", name="Lead score", is_default=True)

    for template in library_templates():
        for slug in template.requires.get("segments", []):
            SegmentFactory(org=org, slug=slug)
        for step in template.definition["steps"]:
            sender = actions().get(step.get("action", ""))
            if not isinstance(sender, SendTemplate):
                continue
            slug = step["config"]["template"]
            MessageTemplate.objects.get_or_create(
                org=org, slug=slug, defaults={"name": slug, "channel": sender.channel}
            )
            if "destination" in step["config"]:
                Destination.objects.get_or_create(
                    org=org,
                    slug=step["config"]["destination"],
                    defaults={"name": slug, "channel": sender.channel, "url": "https://hooks.example/x"},
                )


def unregistered(name: str) -> bool:
    return name in PLUGIN_ACTIONS and name not in actions()


def with_plugin_actions_replaced(definition: dict) -> dict:
    """The definition with each not-yet-registered action step turned into a log step."""
    replaced = copy.deepcopy(definition)
    for step in replaced["steps"]:
        if step["type"] == "action" and unregistered(step["action"]):
            step["action"], step["config"] = "log", {"message": f"stands in for {step['action']}"}
    return replaced


def test_the_library_has_the_ten_templates_design_lists():
    templates = library_templates()

    assert {t.slug for t in templates} == DESIGN_LIST
    assert len(templates) == 10
    for template in templates:
        assert template.name and len(template.description) > 40
        assert template.category in WorkflowTemplate.Category.values
        assert template.tags and all(isinstance(tag, str) for tag in template.tags)
    assert {t.category for t in templates} == set(WorkflowTemplate.Category.values)


@pytest.mark.parametrize("template", library_templates(), ids=lambda t: t.slug)
def test_every_template_is_valid_but_for_actions_not_yet_registered(org, prerequisites, template):
    errors = definition_errors(template.definition, org=org)
    plugin_errors = [e for e in errors if any(f"unknown action “{name}”" in e for name in PLUGIN_ACTIONS)]

    assert errors == plugin_errors, errors
    assert definition_errors(with_plugin_actions_replaced(template.definition), org=org) == []


def test_install_is_idempotent_and_keeps_usage_counts(org, other_org):
    assert library_install(org=org) == 10
    assert library_install(org=org) == 0
    welcome = WorkflowTemplate.objects.get(org=org, slug="welcome-series")
    assert welcome.trigger == welcome.definition["trigger"] == {"type": "event", "event": "signed_up"}

    workflow = workflow_from_template(template=welcome)
    welcome.refresh_from_db()
    assert welcome.usage_count == 1
    WorkflowTemplate.objects.filter(pk=welcome.pk).update(name="Edited", definition={"steps": []})

    assert library_install(org=org) == 1
    welcome.refresh_from_db()
    assert welcome.name == "Welcome series" and welcome.definition["steps"][0]["id"] == "welcome"
    assert welcome.usage_count == 1
    assert workflow.draft_definition == welcome.definition
    with scopes_disabled():
        assert not WorkflowTemplate.objects.filter(org=other_org).exists()


def test_a_workflow_from_a_template_publishes_only_once_the_drafts_it_made_are_published(org):
    library_install(org=org)
    workflow = workflow_from_template(template=WorkflowTemplate.objects.get(org=org, slug="welcome-series"))

    with pytest.raises(ValidationError) as error:
        workflow_publish(workflow=workflow)

    messages = error.value.message_dict["definition"]
    # Using the template made its four emails as drafts: each is named until someone publishes it.
    assert len(messages) == 4 and all("is not published; review and publish it first." in m for m in messages)
    assert "steps[welcome].template: the message template “welcome-1”" in messages[0]


def test_install_command(org):
    out = StringIO()
    call_command("install_workflow_templates", "--org", org.slug, stdout=out)
    assert "10 added or updated, 0 up to date" in out.getvalue()
    call_command("install_workflow_templates", "--org", org.slug, stdout=out)
    assert "0 added or updated, 10 up to date" in out.getvalue()
    with pytest.raises(CommandError, match="No organisation with slug 'nope'"):
        call_command("install_workflow_templates", "--org", "nope")


def test_demo_seeder_installs_the_library_and_live_demo_workflows(org, member_factory):
    ContactFactory.create_batch(25, org=org)
    users = {"marketer": member_factory(org, username="marketer")}
    out = StringIO()

    demo_workflows(org=org, users=users, stdout=out)
    demo_workflows(org=org, users=users, stdout=out)  # idempotent

    autodiscover_modules("demo")  # what run_demo_seeders does: the seeder is found and registered
    assert demo_workflows in _seeders
    assert WorkflowTemplate.objects.filter(org=org).count() == 10
    follow_up = Workflow.objects.get(org=org, slug="demo-request-follow-up")
    welcome = Workflow.objects.get(org=org, slug="welcome-tagging")
    assert follow_up.status == welcome.status == Workflow.Status.ACTIVE
    assert follow_up.trigger_type == "event" and follow_up.trigger_event == "demo_requested"
    assert WorkflowInstance.objects.filter(workflow=follow_up).count() == 12
    assert WorkflowInstance.objects.filter(workflow=welcome).count() == 8
    assert "workflows already there" in out.getvalue()
