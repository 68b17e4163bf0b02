"""Failure injection against real processes (docs/workflows.md): Celery workers killed with
SIGKILL mid-batch and mid-call, two workers racing over the same due rows, a trigger event
delivered twice, and the broker restarted with everything it held lost. Each test starts its
own worker subprocesses against the test database and waits on conditions with deadlines."""

from collections import Counter
from datetime import timedelta

import psycopg
import pytest
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from marketing.models import Contact, DispatchBatch, Event, Tag
from tests.workflows.processes import (
    HookServer,
    RedisServer,
    beat_tick,
    celery_beat,
    celery_worker,
    wait_until,
)
from workflows.models import AutomationExecution, Delivery, WorkflowInstance, WorkflowStepRun
from workflows.services import workflow_enrol, workflow_enrol_manually

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def services(settings, shared_database_url):
    """The test database's URL for subprocesses; skips in embedded mode; an empty queue."""
    if settings.EMBEDDED:
        pytest.skip("needs PostgreSQL and REDIS_URL: workers are separate processes")
    from marketing.celery import app

    app.control.purge()
    return shared_database_url


def make_contacts(org, n: int, prefix: str) -> list[int]:
    Contact.objects.bulk_create(
        [Contact(org=org, email=f"{prefix}{i}@example.com", country="DE") for i in range(n)], batch_size=5000
    )
    return list(Contact.objects.filter(email__startswith=prefix).order_by("pk").values_list("pk", flat=True))


def finished(workflow) -> int:
    return WorkflowInstance.objects.filter(workflow=workflow, status__in=["completed", "failed"]).count()


def assert_each_step_ran_once(workflow, *, instances: int, steps: int) -> None:
    runs = WorkflowStepRun.objects.filter(workflow=workflow)
    assert runs.count() == instances * steps
    assert not runs.exclude(attempt=1).exists()
    assert not runs.exclude(status="completed").exists()
    repeated = runs.values("idempotency_key").annotate(n=Count("id")).filter(n__gt=1)
    assert list(repeated) == []
    per_instance = runs.values("instance_id").annotate(n=Count("id")).filter(n__gt=0)
    assert {row["n"] for row in per_instance} == {steps}
    statuses = Counter(WorkflowInstance.objects.filter(workflow=workflow).values_list("status", flat=True))
    assert statuses == {"completed": instances}
    assert AutomationExecution.objects.filter(workflow=workflow).count() == instances


def assert_clean(*processes) -> None:
    for process in processes:
        output = process.output()
        assert "Traceback" not in output and "IntegrityError" not in output, output[-5000:]


def waiting_on_lock(conn: psycopg.Connection) -> list[int]:
    """Backends of the test database blocked on a lock (the stalled worker's). ``conn`` must be
    in autocommit: a transaction sees one snapshot of pg_stat_activity."""
    return [
        row[0]
        for row in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
            "AND pid <> pg_backend_pid()"
        ).fetchall()
    ]


def writes_of(conn: psycopg.Connection, pid: int) -> set[str]:
    """Tables the backend holds row-write or row-lock locks on (what its transaction touched)."""
    rows = conn.execute(
        "SELECT DISTINCT c.relname FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
        "WHERE l.pid = %s AND l.mode IN ('RowExclusiveLock', 'RowShareLock') AND c.relkind = 'r'",
        [pid],
    ).fetchall()
    return {row[0] for row in rows}


def backend_gone(conn: psycopg.Connection, pid: int) -> bool:
    return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()[0] == 0


# -- a: a worker killed in the middle of a side-effecting step -----------------------------------


def test_a_worker_killed_mid_batch_leaves_no_internal_side_effect_and_a_restart_does_each_once(
    org, publish, services, settings, tmp_path
):
    """The worker is stalled inside its batch transaction (the test holds a lock the
    ``enrol_in_workflow`` action needs, after ``add_tag`` already wrote for the first run) and
    SIGKILLed there. Nothing of the batch may survive; after a restart every run completes and
    each tag and each enrolment exists exactly once."""
    n = 300
    target = publish([{"id": "hello", "type": "action", "action": "log", "config": {"message": "hi"}, "next": None}])
    source = publish(
        [
            {"id": "tag", "type": "action", "action": "add_tag", "config": {"tags": ["chaos"]}, "next": "enrol"},
            {
                "id": "enrol",
                "type": "action",
                "action": "enrol_in_workflow",
                "config": {"workflow": target.slug},
                "next": None,
            },
        ]
    )
    contacts = make_contacts(org, n, "kill")
    with psycopg.connect(services) as blocker, psycopg.connect(services, autocommit=True) as observer:
        # The blocker acts for the org (what org_context sets): as the app role, row-level
        # security shows a session no row without it, and there would be nothing to lock.
        blocker.execute("SELECT set_config('app.org_id', %s, true)", [str(org.pk)])
        locked = blocker.execute("SELECT id FROM workflows_workflow WHERE id = %s FOR UPDATE", [target.pk])
        assert locked.fetchall() == [(target.pk,)]
        # The observer watches as the login: pg_stat_activity shows what another session waits
        # on only to a role with that session's login's privileges, which app acting has not.
        observer.execute("SET ROLE NONE")
        assert workflow_enrol_manually(workflow=source, contact_ids=contacts) == n
        first = celery_worker(tmp_path, database_url=services, redis_url=settings.REDIS_URL, name="first")
        try:
            stalled = wait_until(
                lambda: waiting_on_lock(observer), timeout=30, what="the worker to block inside its batch"
            )
            # It stalls after the batch's first add_tag wrote (uncommitted), holding the claim.
            assert writes_of(observer, stalled[0]) >= {"marketing_contact_tags", "workflows_workflowinstance"}
            first.kill()
        finally:
            first.stop()
        # The killed worker's transaction never committed: no tag, no step run, no enrolment.
        assert WorkflowStepRun.objects.filter(workflow=source).count() == 0
        assert not Tag.objects.filter(name="chaos", contacts__isnull=False).exists()
        assert WorkflowInstance.objects.filter(workflow=target).count() == 0
        blocker.rollback()  # the orphaned backend gets its lock, finds its client gone, rolls back
        wait_until(lambda: backend_gone(observer, stalled[0]), timeout=30, what="the killed worker's backend to end")
    assert WorkflowStepRun.objects.filter(workflow=source).count() == 0
    assert WorkflowInstance.objects.filter(workflow=source, status="pending").count() == n  # due again at once

    second = celery_worker(tmp_path, database_url=services, redis_url=settings.REDIS_URL, name="second")
    try:
        wait_until(lambda: finished(source) == n, timeout=45, what="every run to finish", tick=beat_tick)
        wait_until(lambda: finished(target) == n, timeout=30, what="every enrolled run to finish", tick=beat_tick)
    finally:
        second.stop()

    assert_each_step_ran_once(source, instances=n, steps=2)
    assert Tag.objects.get(name="chaos").contacts.count() == n
    enrolments = WorkflowInstance.objects.filter(workflow=target)
    assert enrolments.count() == n
    assert set(enrolments.values_list("contact_id", flat=True)) == set(contacts)
    keys = {
        f"step:{key}"
        for key in WorkflowStepRun.objects.filter(step_id="enrol").values_list("idempotency_key", flat=True)
    }
    assert set(enrolments.values_list("trigger_key", flat=True)) == keys
    assert_clean(second)


def test_a_worker_killed_mid_call_resends_only_the_call_in_flight_with_the_same_key(
    org, publish, services, settings, tmp_path
):
    """The first webhook call is held open by the server; the worker making it is SIGKILLed.
    After a restart (and the lease running out) every run completes, the server has seen one
    key per run, and only the key in flight at the kill arrived twice (docs/workflows.md)."""
    n = 5
    with HookServer(hold_first=True) as hook:
        workflow = publish(
            [
                {"id": "call", "type": "action", "action": "webhook", "config": {"url": hook.url}, "next": "after"},
                {
                    "id": "after",
                    "type": "action",
                    "action": "set_variable",
                    "config": {"name": "status", "value_from": "workflow.steps.call.result.status"},
                    "next": None,
                },
            ]
        )
        contacts = make_contacts(org, n, "hook")
        env = {"OUTBOUND_HTTP_ALLOWED_HOSTS": "127.0.0.1"}
        first = celery_worker(tmp_path, database_url=services, redis_url=settings.REDIS_URL, name="first", **env)
        try:
            assert workflow_enrol_manually(workflow=workflow, contact_ids=contacts) == n
            wait_until(hook.first_arrived.is_set, timeout=30, what="the first webhook call", tick=beat_tick)
            first.kill()
        finally:
            first.stop()
        hook.release()
        in_flight = hook.keys()[0]
        deliveries = Delivery.objects.filter(instance__workflow=workflow)
        assert Counter(deliveries.values_list("status", flat=True)) == {"sending": 1, "queued": n - 1}
        assert deliveries.get(status="sending").idempotency_key == in_flight

        # Time passes: the dead sender's lease runs out and the others count as lost tasks.
        deliveries.update(lease_until=timezone.now() - timedelta(seconds=1))
        deliveries.update(next_attempt_at=timezone.now() - timedelta(minutes=2))
        from workflows.tasks import deliveries_sweep

        second = celery_worker(tmp_path, database_url=services, redis_url=settings.REDIS_URL, name="second", **env)
        try:
            deliveries_sweep.delay()  # what beat sends every 15 s
            wait_until(lambda: finished(workflow) == n, timeout=45, what="every run to finish", tick=beat_tick)
        finally:
            second.stop()

    keys = Counter(hook.keys())
    expected = {
        f"{pk}:call:1" for pk in WorkflowInstance.objects.filter(workflow=workflow).values_list("pk", flat=True)
    }
    assert set(keys) == expected  # one effect per run …
    assert keys[in_flight] == 2  # … and a repeat, with the same key, only for the call in flight
    assert all(count == 1 for key, count in keys.items() if key != in_flight)
    assert Counter(deliveries.values_list("status", "attempts")) == {("sent", 1): n - 1, ("sent", 2): 1}
    assert_each_step_ran_once(workflow, instances=n, steps=2)
    assert set(WorkflowInstance.objects.filter(workflow=workflow).values_list("context__vars__status", flat=True)) == {
        200
    }
    assert_clean(second)


# -- b: two workers racing over the same due rows ---------------------------------------------------


def test_two_workers_racing_over_ten_thousand_due_runs_run_each_step_once(org, publish, services, settings, tmp_path):
    n = 10_000
    workflow = publish(
        [
            {
                "id": "check",
                "type": "condition",
                "condition": {"==": [{"var": "country"}, "DE"]},
                "true_next": "mark",
                "false_next": "mark",
            },
            {"id": "mark", "type": "action", "action": "set_variable", "config": {"name": "seen", "value": 1}},
        ]
    )
    contacts = make_contacts(org, n, "race")
    assert workflow_enrol_manually(workflow=workflow, contact_ids=contacts) == n  # all due at one instant
    workers = [
        celery_worker(tmp_path, database_url=services, redis_url=settings.REDIS_URL, name=f"racer{i}", loglevel="info")
        for i in range(2)
    ]
    try:
        wait_until(lambda: finished(workflow) == n, timeout=90, what="every run to finish", tick=beat_tick, every=0.5)
    finally:
        for worker in workers:
            worker.stop()

    assert_each_step_ran_once(workflow, instances=n, steps=2)
    # Each worker logs how many runs each of its tasks advanced: both took part, and together
    # they advanced each run exactly once.
    advanced = [advanced_by(worker.output()) for worker in workers]
    assert all(advanced), advanced
    assert sum(advanced) == n
    assert_clean(*workers)


def advanced_by(log: str) -> int:
    import re

    return sum(
        int(m)
        for m in re.findall(r"Task workflows\.tasks\.instances_run_due\[[^\]]+\] succeeded in [\d.]+s: (\d+)", log)
    )


# -- c: the same trigger event delivered twice ------------------------------------------------------


def test_the_same_trigger_event_delivered_twice_enrols_once(org, api, publish, services, settings, tmp_path):
    from marketing.tasks import dispatch_batch
    from workflows.consumers import Workflows

    workflow = publish(
        [{"id": "hello", "type": "action", "action": "set_variable", "config": {"name": "hi", "value": 1}}],
        trigger={"type": "event", "event": "demo_requested"},
        settings={"reenrollment": "always"},  # only the event's key keeps a contact from a second run
    )
    worker = celery_worker(tmp_path, database_url=services, redis_url=settings.REDIS_URL)
    try:
        body = {"events": [{"type": "demo_requested", "email": "ana@example.com", "message_id": "m-1"}]}
        assert api.post("/api/v1/events/", body, content_type="application/json").status_code == 200
        batch = DispatchBatch.objects.get()
        wait_until(lambda: finished(workflow) == 1, timeout=30, what="the first delivery's run", tick=beat_tick)

        # A redelivered dispatch task (the ack was lost): the worker runs the batch again …
        DispatchBatch.objects.filter(pk=batch.pk).update(status="pending")
        dispatch_batch.delay(batch_id=batch.pk)
        wait_until(
            lambda: DispatchBatch.objects.filter(pk=batch.pk, status="done", attempts=2).exists(),
            timeout=30,
            what="the second delivery",
        )
        # … and the workflows consumer gets the event a third time, in this process.
        with transaction.atomic():
            Workflows().consume(list(Event.objects.filter(pk__in=batch.event_ids)))

        # A different event of the same type does start a second run (the policy allows it).
        body = {"events": [{"type": "demo_requested", "email": "ana@example.com", "message_id": "m-2"}]}
        assert api.post("/api/v1/events/", body, content_type="application/json").status_code == 200
        wait_until(lambda: finished(workflow) == 2, timeout=30, what="the second event's run", tick=beat_tick)
    finally:
        worker.stop()

    first_event = Event.objects.get(message_id="m-1")
    runs = WorkflowInstance.objects.filter(workflow=workflow)
    assert runs.filter(trigger_key=f"event:{first_event.pk}").count() == 1
    assert runs.count() == 2
    assert_each_step_ran_once(workflow, instances=2, steps=1)
    assert_clean(worker)


# -- d: the broker restarted mid-run, losing everything it held ---------------------------------------


def test_a_redis_restart_mid_run_loses_nothing(org, publish, services, tmp_path, monkeypatch):
    n = 200
    redis = RedisServer(tmp_path)
    redis.start()
    # Only beat drives the runs here (the enrolment's own task would go to the suite's Redis).
    monkeypatch.setattr("workflows.services._run_soon", lambda: None)
    workflow = publish(
        [
            {"id": "wait", "type": "delay", "config": {"duration": "PT5S"}, "next": "mark"},
            {"id": "mark", "type": "action", "action": "set_variable", "config": {"name": "done", "value": 1}},
        ]
    )
    contacts = make_contacts(org, n, "redis")
    worker = celery_worker(tmp_path, database_url=services, redis_url=redis.url)
    beat = celery_beat(tmp_path, database_url=services, redis_url=redis.url)
    try:
        assert workflow_enrol(workflow=workflow, contact_ids=contacts, trigger_type="manual", trigger_key="r") == n
        waiting = WorkflowInstance.objects.filter(workflow=workflow, status="waiting", current_step="wait")
        wait_until(lambda: waiting.count() == n, timeout=30, what="every run to wait at the delay")

        redis.kill()  # queued ticks, unacked tasks, cache and channel layer: all gone
        last_wake = max(waiting.values_list("wake_at", flat=True))
        wait_until(lambda: timezone.now() > last_wake + timedelta(seconds=1), timeout=10, what="the delays to end")
        assert finished(workflow) == 0  # nothing moves while the broker is down

        redis.start()  # the same port, empty
        wait_until(lambda: finished(workflow) == n, timeout=60, what="every run to finish after the restart")
        assert worker.alive() and beat.alive()
    finally:
        beat.stop()
        worker.stop()
        redis.kill()

    assert_each_step_ran_once(workflow, instances=n, steps=2)
    assert set(WorkflowInstance.objects.filter(workflow=workflow).values_list("context__vars__done", flat=True)) == {1}
