"""Data retention: each kind purges only its org's rows past the policy, keeps what is still
needed, counts in the dry run exactly what the purge removes, in batches; the command and the
nightly job."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.db import models
from django.db.models.deletion import get_candidate_relations_to_delete
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from channels_app.models import Message
from compliance.models import ConsentRecord, RetentionPolicy
from compliance.retention import retention_count, retention_policies_save, retention_purge, retention_purge_all
from marketing.models import AuditEntry, DispatchBatch, Event, ImportJob, ImportRowError, Organization
from marketing.retention import DATA_KINDS, retention_targets
from marketing.schedules import schedules_install
from marketing.tenancy import org_context
from scoring.models import ScoreLedger, ScoringModel
from tests.factories import ContactFactory
from workflows.models import (
    Approval,
    AutomationExecution,
    Delivery,
    WorkflowInstance,
    WorkflowStepRun,
)
from workflows.services import workflow_create, workflow_publish

NOW = timezone.now()
OLD = NOW - timedelta(days=100)  # past a 90-day policy
RECENT = NOW - timedelta(days=10)  # within it
_seq = iter(range(10**9))


def _key() -> str:
    return f"k{next(_seq)}"


def event(org, contact, at, **fields):
    return Event.objects.create(
        org=org, contact=contact, type="page_viewed", occurred_at=at, received_at=at, message_id=_key(), **fields
    )


def message(org, contact, at, status="delivered", content=None):
    return Message.objects.create(
        org=org,
        contact=contact,
        channel="email",
        idempotency_key=_key(),
        to=contact.email,
        content={"subject": "Hi", "html": "<p>Hi</p>", "text": "Hi"} if content is None else content,
        status=status,
        created_at=at,
        sent_at=at,
    )


def workflow(org):
    made = workflow_create(
        org=org,
        name=f"wf {_key()}",
        slug=f"wf-{_key()}",
        definition={"trigger": {"type": "manual"}, "steps": [{"id": "done", "type": "stop"}]},
    )
    workflow_publish(workflow=made)
    made.refresh_from_db()
    return made


def instance(org, flow, contact, status="completed", finished=OLD):
    active = status in ("pending", "running", "waiting", "paused")
    return WorkflowInstance.objects.create(
        org=org,
        workflow=flow,
        version=flow.live_version,
        contact=contact,
        status=status,
        trigger_type="manual",
        trigger_key=_key(),
        triggered_at=finished - timedelta(hours=1),
        finished_at=None if active else finished,
    )


def step_run(run, at):
    return WorkflowStepRun.objects.create(
        org=run.org,
        instance=run,
        workflow=run.workflow,
        step_id="done",
        step_type="stop",
        idempotency_key=_key(),
        started_at=at,
        completed_at=at,
    )


def import_job(org, at, status="done", name="old.csv"):
    job = ImportJob(org=org, kind="contacts", file_sha256="0" * 64, mapping={}, status=status, created_at=at)
    job.file.save(name, ContentFile(b"email\nana@example.com\n"), save=False)
    job.finished_at = at if status in ("done", "failed") else None
    job.save()
    ImportRowError.objects.create(job=job, row=1, column="email", reason="bad")
    return job


def policy(org, **days):
    with org_context(org):
        retention_policies_save(org=org, days=days)


def purge(org, kind, **kwargs):
    return retention_purge(org=org, kind=kind, now=NOW, **kwargs)


def count(org, kind, **kwargs):
    return retention_count(org=org, kind=kind, now=NOW, **kwargs)


@pytest.fixture
def contact(org):
    return ContactFactory(org=org, email="ana@example.com")


@pytest.fixture
def other(other_org):
    """The other org's contact (rows made in its own context)."""
    with org_context(other_org):
        return ContactFactory(org=other_org, email="ben@example.com")


def test_events_purge_only_old_rows_of_the_org(org, other_org, contact, other):
    old = [event(org, contact, OLD) for _ in range(3)]
    kept = event(org, contact, RECENT)
    with org_context(other_org):
        theirs = event(other_org, other, OLD)
    policy(org, events=90)
    policy(other_org, events=90)

    assert count(org, "events") == 3
    assert purge(org, "events") == 3
    assert list(Event.objects.filter(pk__in=[e.pk for e in [*old, kept]])) == [kept]
    with org_context(other_org):
        assert Event.objects.filter(pk=theirs.pk).exists()
    assert RetentionPolicy.objects.get(org=org, kind="events").last_purged_rows == 3
    purged = AuditEntry.objects.get(org=org, verb="purged")
    assert (purged.target_type, purged.fields, purged.count) == ("marketing.event", ["events"], 3)
    saved = AuditEntry.objects.get(org=org, verb="created", target_type="compliance.retentionpolicy")
    assert saved.fields == ["days"]


def test_a_backfilled_event_stays_until_it_has_been_stored_that_long(org, contact):
    backfilled = event(org, contact, OLD)
    Event.objects.filter(pk=backfilled.pk).update(received_at=RECENT)
    policy(org, events=90)
    assert count(org, "events") == 0 and purge(org, "events") == 0


def test_deleting_events_keeps_the_consent_records_and_score_history_that_name_them(org, contact):
    old = event(org, contact, OLD)
    record = ConsentRecord.objects.create(
        org=org, contact=contact, purpose="tracking", granted=True, source="form", event=old
    )
    model = ScoringModel.objects.create(org=org, slug="default", name="Default")
    entry = ScoreLedger.objects.create(
        org=org, contact=contact, model=model, delta=5, score_after=5, reason="rule", event=old
    )
    policy(org, events=90)
    assert purge(org, "events") == 1
    record.refresh_from_db()
    entry.refresh_from_db()
    assert (record.event_id, entry.event_id) == (None, None)


def test_batches_of_two_purge_five_rows_and_report_progress(org, contact):
    for _ in range(5):
        event(org, contact, OLD)
    policy(org, events=90)
    seen = []
    assert purge(org, "events", batch_size=2, progress=seen.append) == 5
    assert seen == [2, 4, 5]
    assert not Event.objects.exists()


def test_messages_purge_keeps_unsent_ones(org, other_org, contact, other):
    sent = [message(org, contact, OLD, status=s) for s in ("sent", "delivered", "bounced", "failed")]
    unsent = [message(org, contact, OLD, status=s) for s in ("queued", "held", "sending")]
    recent = message(org, contact, RECENT)
    with org_context(other_org):
        theirs = message(other_org, other, OLD)
    policy(org, messages=90)
    policy(other_org, messages=90)
    assert count(org, "messages") == 4
    assert purge(org, "messages") == 4
    left = set(Message.objects.values_list("pk", flat=True))
    assert left == {m.pk for m in [*unsent, recent]} and not left & {m.pk for m in sent}
    with org_context(other_org):
        assert Message.objects.filter(pk=theirs.pk).exists()


def test_messages_are_kept_at_least_thirty_days(org):
    with pytest.raises(ValidationError) as error:
        retention_policies_save(org=org, days={"messages": 7, "events": 0})
    assert set(error.value.message_dict) == {"days_messages", "days_events"}
    assert "at least 30" in error.value.message_dict["days_messages"][0]


def test_message_bodies_are_blanked_and_the_rows_stay(org, contact):
    old = message(org, contact, OLD)
    blanked_before = message(org, contact, OLD, content={})
    queued = message(org, contact, OLD, status="queued")
    recent = message(org, contact, RECENT)
    policy(org, message_bodies=90)
    assert count(org, "message_bodies") == 1
    assert purge(org, "message_bodies") == 1
    assert Message.objects.get(pk=old.pk).content == {}
    assert Message.objects.get(pk=old.pk).status == "delivered"
    assert Message.objects.get(pk=queued.pk).content["subject"] == "Hi"
    assert Message.objects.get(pk=recent.pk).content["subject"] == "Hi"
    assert Message.objects.filter(pk=blanked_before.pk).exists()
    assert count(org, "message_bodies") == 0


def test_step_runs_of_runs_still_going_are_kept(org, contact):
    flow = workflow(org)
    done = instance(org, flow, contact, "completed")
    going = instance(org, flow, contact, "waiting")
    old_done = [step_run(done, OLD) for _ in range(2)]
    recent_done = step_run(done, RECENT)
    old_going = step_run(going, OLD)
    policy(org, step_runs=90)
    assert count(org, "step_runs") == 2
    assert purge(org, "step_runs") == 2
    left = set(WorkflowStepRun.objects.values_list("pk", flat=True))
    assert left == {recent_done.pk, old_going.pk} and not left & {s.pk for s in old_done}
    assert WorkflowInstance.objects.count() == 2


def test_finished_runs_go_with_their_steps_except_the_newest_per_contact(org, other_org, contact, other):
    flow = workflow(org)
    running = instance(org, flow, contact, "running")
    oldest = instance(org, flow, contact, "completed")
    failed = instance(org, flow, contact, "failed")
    newest = instance(org, flow, contact, "cancelled")  # the contact's newest run: kept
    Approval.objects.create(org=org, instance=oldest, step_id="done", idempotency_key=_key(), due_at=OLD)
    steps = [step_run(run, OLD) for run in (oldest, failed)]
    execution = AutomationExecution.objects.create(
        org=org, workflow=flow, instance=oldest, contact=contact, status="success", started_at=OLD, finished_at=OLD
    )
    mail = message(org, contact, RECENT)
    Message.objects.filter(pk=mail.pk).update(instance=failed)
    with org_context(other_org):
        their_flow = workflow(other_org)
        theirs = [instance(other_org, their_flow, other, "completed") for _ in range(2)]
    policy(org, instances=90)
    policy(other_org, instances=90)

    assert count(org, "instances") == 2
    assert purge(org, "instances") == 2
    assert set(WorkflowInstance.objects.values_list("pk", flat=True)) == {newest.pk, running.pk}
    assert not WorkflowStepRun.objects.filter(pk__in=[s.pk for s in steps]).exists()
    assert not Approval.objects.exists()
    execution.refresh_from_db()
    assert execution.instance_id is None  # the record of the run stays (it is a log)
    assert Message.objects.get(pk=mail.pk).instance_id is None
    with org_context(other_org):
        assert WorkflowInstance.objects.filter(pk__in=[t.pk for t in theirs]).count() == 2


def test_imports_go_with_their_rejected_rows_and_files_except_running_ones(org, django_capture_on_commit_callbacks):
    done = import_job(org, OLD, "done", "retention-done.csv")
    failed = import_job(org, OLD, "failed", "retention-failed.csv")
    running = import_job(org, OLD, "running", "retention-running.csv")
    recent = import_job(org, RECENT, "done", "retention-recent.csv")
    files = {job.pk: job.file.name for job in (done, failed, running, recent)}
    policy(org, imports=90)
    assert count(org, "imports") == 2
    with django_capture_on_commit_callbacks(execute=True):
        assert purge(org, "imports") == 2
    assert set(ImportJob.objects.values_list("pk", flat=True)) == {running.pk, recent.pk}
    assert ImportRowError.objects.count() == 2
    assert not default_storage.exists(files[done.pk]) and not default_storage.exists(files[failed.pk])
    assert default_storage.exists(files[running.pk]) and default_storage.exists(files[recent.pk])
    for job in (running, recent):
        default_storage.delete(job.file.name)


def test_logs_purge_dispatch_batches_run_records_and_calls_no_longer_due(org, contact):
    flow = workflow(org)
    done_batch = DispatchBatch.objects.create(org=org, event_ids=[1], status="done", created_at=OLD)
    pending_batch = DispatchBatch.objects.create(org=org, event_ids=[2], status="pending", created_at=OLD)
    record = AutomationExecution.objects.create(
        org=org, workflow=flow, contact=contact, status="success", started_at=OLD, finished_at=OLD
    )
    going = instance(org, flow, contact, "waiting")
    sent = Delivery.objects.create(org=org, idempotency_key=_key(), action="webhook", request={}, status="sent")
    queued = Delivery.objects.create(org=org, idempotency_key=_key(), action="webhook", request={}, status="queued")
    of_running = Delivery.objects.create(
        org=org, instance=going, idempotency_key=_key(), action="webhook", request={}, status="sent"
    )
    Delivery.objects.update(created_at=OLD)
    policy(org, logs=90)
    assert count(org, "logs") == 3
    assert purge(org, "logs", batch_size=1) == 3
    assert list(DispatchBatch.objects.values_list("pk", flat=True)) == [pending_batch.pk]
    assert not AutomationExecution.objects.filter(pk=record.pk).exists()
    assert set(Delivery.objects.values_list("pk", flat=True)) == {queued.pk, of_running.pk}
    assert not DispatchBatch.objects.filter(pk=done_batch.pk).exists() and not Delivery.objects.filter(pk=sent.pk)


def test_a_kind_kept_forever_purges_nothing(org, contact):
    event(org, contact, OLD)
    assert count(org, "events") == 0 and purge(org, "events") == 0
    policy(org, events=None)
    assert purge(org, "events") == 0 and Event.objects.count() == 1
    assert count(org, "events", days=90) == 1  # a preview of a period not saved


def _old_rows_of_every_kind(org, contact):
    event(org, contact, OLD)
    message(org, contact, OLD)
    flow = workflow(org)
    for _ in range(2):
        step_run(instance(org, flow, contact, "completed"), OLD)
    import_job(org, OLD, "done", f"retention-{org.slug}.csv")
    DispatchBatch.objects.create(org=org, event_ids=[1], status="done", created_at=OLD)
    AutomationExecution.objects.create(org=org, workflow=flow, status="success", started_at=OLD, finished_at=OLD)
    Delivery.objects.create(
        org=org, idempotency_key=_key(), action="webhook", request={}, status="sent", created_at=OLD
    )


TABLES = (Event, Message, WorkflowInstance, WorkflowStepRun, ImportJob, DispatchBatch, AutomationExecution, Delivery)


def _counts(org):
    with org_context(org):
        counts = {model.__name__: model.objects.filter(org=org).count() for model in TABLES}
        counts["bodies"] = Message.objects.filter(org=org).exclude(content={}).count()
    return counts


def test_every_kind_purges_what_its_dry_run_counted_and_leaves_the_other_orgs_rows(org, other_org, contact, other):
    _old_rows_of_every_kind(org, contact)
    with org_context(other_org):
        _old_rows_of_every_kind(other_org, other)
    everything = {kind: DATA_KINDS[kind].min_days for kind in DATA_KINDS}
    policy(org, **everything)
    policy(other_org, **everything)
    theirs = _counts(other_org)
    for kind in sorted(DATA_KINDS, key=lambda k: k != "message_bodies"):  # bodies before their messages
        expected = count(org, kind)  # the dry run counts exactly what the purge removes
        assert expected > 0 and purge(org, kind) == expected, kind
    assert _counts(other_org) == theirs
    assert _counts(org) == {**dict.fromkeys(theirs, 0), "WorkflowInstance": 1}  # the contact's newest run
    with org_context(other_org):
        for job in ImportJob.objects.all():
            default_storage.delete(job.file.name)


@pytest.mark.parametrize("kind", list(DATA_KINDS))
def test_every_kind_has_tables_and_no_relation_that_would_stop_its_purge(kind):
    targets = retention_targets(kind)
    assert targets
    handled = (models.CASCADE, models.SET_NULL, models.DO_NOTHING)
    for target in targets:
        for relation in get_candidate_relations_to_delete(target.model._meta):
            assert relation.field.remote_field.on_delete in handled, (
                f"{relation.related_model._meta.label}.{relation.field.name}"
            )


def test_the_command_dry_runs_then_purges(org, contact, other_org):
    for _ in range(3):
        event(org, contact, OLD)
    policy(org, events=90)
    out = StringIO()
    call_command("retention_purge", "--org", "org-a", "--kind", "events", "--dry-run", stdout=out, stderr=StringIO())
    assert out.getvalue().splitlines() == ["org-a events: 3 rows would be deleted"]
    assert Event.objects.count() == 3
    out = StringIO()
    call_command("retention_purge", "--org", "org-a", "--batch-size", "2", stdout=out, stderr=StringIO())
    lines = out.getvalue().splitlines()
    assert "org-a events: purged 3 rows" in lines and "org-a messages: kept forever" in lines
    assert lines[-1] == "purged 3 rows in all"
    assert Event.objects.count() == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--org", "nope"], "No organisation with slug 'nope'."),
        (["--kind", "emails"], "Unknown kind 'emails': one of events, messages,"),
        (["--batch-size", "0"], "--batch-size must be a whole number above 0."),
    ],
)
def test_the_command_refuses_bad_input_in_one_line(org, args, message):
    with pytest.raises(CommandError, match=message) as error:
        call_command("retention_purge", *args, stdout=StringIO(), stderr=StringIO())
    assert "\n" not in str(error.value)


def test_the_nightly_job_purges_every_org_and_is_registered(org, other_org, contact, other, eager_tasks):
    from compliance.tasks import retention_purge_all as nightly

    event(org, contact, OLD)
    with org_context(other_org):
        event(other_org, other, OLD)
        event(other_org, other, OLD)
    policy(org, events=90)
    policy(other_org, events=90, messages=None)
    assert retention_purge_all(now=NOW) == 3
    event(org, contact, OLD)
    assert nightly.delay().get() == 1  # the beat job's task: the same service for every org
    schedules_install()
    job = PeriodicTask.objects.get(name="compliance: purge data past retention")
    assert job.task == "compliance.tasks.retention_purge_all"
    assert (job.interval.every, job.interval.period) == (86400, "seconds")
    assert Organization.objects.count() == 2
