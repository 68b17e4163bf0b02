"""Triggers: events (with filters) through the dispatch, segments, schedules, dates, manual."""

from datetime import UTC, datetime, timedelta

import pytest
from django_celery_beat.models import PeriodicTask

from marketing.dispatch import dispatch_batch_run
from marketing.ingestion import events_ingest, events_validate
from marketing.models import DispatchBatch, Event, PropertyDefinition
from marketing.segments import segment_add_contacts
from marketing.tenancy import no_org, org_context
from tests.factories import ContactFactory, SegmentFactory
from workflows.models import ScheduledJob, WorkflowInstance
from workflows.scheduled_jobs import scheduled_job_run
from workflows.services import date_triggers_enrol, workflow_create, workflow_enrol_manually, workflow_publish

LOG = [{"id": "log", "type": "action", "action": "log", "config": {"message": "hi"}, "next": None}]


def ingest(org, *items):
    parsed, errors = events_validate(list(items))
    events_ingest(org=org, items=parsed, errors=errors, source="api")


def dispatch_all(*, again: bool = False):
    for batch in DispatchBatch.objects.all():
        if again:
            DispatchBatch.objects.filter(pk=batch.pk).update(status="pending")
        dispatch_batch_run(batch_id=batch.pk)


def test_an_event_trigger_enrols_once_per_matching_event(org, publish):
    workflow = publish(
        LOG,
        trigger={
            "type": "event",
            "event": "form_submitted",
            "filter": {"==": [{"var": "event.properties.form"}, "demo"]},
        },
        settings={"reenrollment": "always"},
    )
    ingest(
        org,
        {"type": "form_submitted", "email": "a@example.com", "properties": {"form": "demo"}},
        {"type": "form_submitted", "email": "b@example.com", "properties": {"form": "newsletter"}},
        {"type": "page_view", "email": "c@example.com"},
    )
    dispatch_all()
    dispatch_all(again=True)  # the same events delivered twice
    instance = WorkflowInstance.objects.get(workflow=workflow)
    assert instance.contact.email == "a@example.com"
    assert instance.trigger_data["properties"] == {"form": "demo"}
    assert instance.context["trigger"]["type"] == "form_submitted"


def test_an_event_filter_may_read_the_contact(org, publish):
    publish(LOG, trigger={"type": "event", "event": "signup", "filter": {"==": [{"var": "country"}, "DE"]}})
    ContactFactory(org=org, email="de@example.com", country="DE")
    ContactFactory(org=org, email="fr@example.com", country="FR")
    ingest(org, {"type": "signup", "email": "de@example.com"}, {"type": "signup", "email": "fr@example.com"})
    dispatch_all()
    assert list(WorkflowInstance.objects.values_list("contact__email", flat=True)) == ["de@example.com"]


def test_paused_and_draft_workflows_start_nothing(org, publish):
    from workflows.services import workflow_pause

    workflow = publish(LOG, trigger={"type": "event", "event": "signup"})
    workflow_pause(workflow=workflow)
    ingest(org, {"type": "signup", "email": "x@example.com"})
    dispatch_all()
    assert not WorkflowInstance.objects.exists()


@pytest.mark.parametrize("kind", ["segment_entered", "segment_exited"])
def test_segment_triggers_start_a_run_when_a_contact_enters_or_leaves(org, publish, kind):
    from marketing.segments import segment_remove_contacts

    segment = SegmentFactory(org=org, slug="vips", kind="static", rule=None)
    other = SegmentFactory(org=org, slug="others", kind="static", rule=None)
    publish(LOG, trigger={"type": kind, "segment": "vips"})
    contact = ContactFactory(org=org)
    segment_add_contacts(segment=segment, contacts=[contact])
    segment_add_contacts(segment=other, contacts=[contact])
    if kind == "segment_exited":
        segment_remove_contacts(segment=segment, contacts=[contact])
    dispatch_all()
    assert WorkflowInstance.objects.filter(contact=contact).count() == 1


def test_a_schedule_trigger_keeps_a_periodic_task_and_enrols_the_segment_per_firing(org, publish):
    segment = SegmentFactory(org=org, slug="weekly", kind="static", rule=None)
    members = [ContactFactory(org=org) for _ in range(3)]
    segment_add_contacts(segment=segment, contacts=members)
    workflow = publish(
        LOG,
        trigger={"type": "schedule", "segment": "weekly", "cron": "0 9 * * 1", "time_zone": "Europe/Berlin"},
        settings={"reenrollment": "always"},
    )
    job = ScheduledJob.objects.get(workflow=workflow)
    task = PeriodicTask.objects.get(pk=job.periodic_task_id)
    assert (task.task, task.enabled, str(task.crontab.timezone)) == (
        "workflows.tasks.scheduled_job_run",
        True,
        "Europe/Berlin",
    )
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("0", "9", "1")
    monday = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    assert scheduled_job_run(job=job, now=monday) == 3
    assert scheduled_job_run(job=job, now=monday) == 0  # the same firing delivered twice
    assert scheduled_job_run(job=job, now=monday + timedelta(days=7)) == 3


def test_a_date_relative_trigger_enrols_n_days_before_the_date_once(org, publish):
    PropertyDefinition.objects.create(
        org=org, subject="contact", key="trial_ends_at", label="Trial ends", type="datetime"
    )
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    due = ContactFactory(org=org, properties={"trial_ends_at": "2026-12-02T10:00:00Z"})  # 3 days before: 11-29 10:00
    later = ContactFactory(org=org, properties={"trial_ends_at": "2026-12-09T10:00:00Z"})
    ContactFactory(org=org, properties={})
    publish(LOG, trigger={"type": "date_relative", "field": "properties.trial_ends_at", "offset_days": -3})
    assert date_triggers_enrol(now=now) == 1
    assert date_triggers_enrol(now=now + timedelta(hours=1)) == 0  # hourly beat: still once
    assert list(WorkflowInstance.objects.values_list("contact_id", flat=True)) == [due.pk]
    assert date_triggers_enrol(now=datetime(2026, 12, 6, 11, 0, tzinfo=UTC)) == 1
    assert WorkflowInstance.objects.filter(contact=later).exists()


def test_a_date_relative_trigger_enrols_in_every_orgs_workflows_each_in_its_org(org, other_org, publish):
    """What the hourly beat does: run in no org, it finds the workflows of every org and
    enrols each org's contacts in its own org."""
    trigger = {"type": "date_relative", "field": "properties.trial_ends_at", "offset_days": -3}
    ends = {"trial_ends_at": "2026-12-02T10:00:00Z"}
    for each in (org, other_org):
        with org_context(each):
            PropertyDefinition.objects.create(
                org=each, subject="contact", key="trial_ends_at", label="Trial ends", type="datetime"
            )
            ContactFactory(org=each, properties=ends)
    publish(LOG, trigger=trigger)
    with org_context(other_org):
        theirs = workflow_create(
            org=other_org, name="Theirs", slug="theirs", definition={"trigger": trigger, "steps": LOG}
        )
        workflow_publish(workflow=theirs)

    with no_org():
        assert date_triggers_enrol(now=datetime(2026, 11, 29, 12, 0, tzinfo=UTC)) == 2

    for each in (org, other_org):
        with org_context(each):
            assert list(WorkflowInstance.objects.values_list("org_id", flat=True)) == [each.pk]


def test_manual_enrolment_of_a_selection(org, publish, marketer):
    workflow = publish(LOG)
    contacts = [ContactFactory(org=org) for _ in range(3)]
    assert workflow_enrol_manually(workflow=workflow, contact_ids=[c.pk for c in contacts], by=marketer) == 3
    assert workflow_enrol_manually(workflow=workflow, contact_ids=[c.pk for c in contacts], by=marketer) == 0  # never
    assert set(WorkflowInstance.objects.values_list("trigger_type", flat=True)) == {"manual"}


def test_an_unpublished_workflow_cannot_enrol(org):
    from django.core.exceptions import ValidationError

    from workflows.services import workflow_create

    workflow = workflow_create(org=org, name="d", slug="d", definition={"trigger": {"type": "manual"}, "steps": LOG})
    with pytest.raises(ValidationError):
        workflow_enrol_manually(workflow=workflow, contact_ids=[ContactFactory(org=org).pk])
    assert not Event.objects.exists()
