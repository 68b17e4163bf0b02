"""Dispatch: every stored event reaches every consumer at least once, in batches, in order."""

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from django_scopes import scopes_disabled

from marketing import dispatch
from marketing.dispatch import EventConsumer, dispatch_batch_run, dispatch_batches_due
from marketing.models import Contact, DispatchBatch, Event
from marketing.tasks import dispatch_sweep

ROOT = Path(__file__).resolve().parents[2]
EVENTS = "/api/v1/events/"


@pytest.fixture
def recorder():
    """A consumer that records what it was given (registered for the test only)."""

    class Recorder(EventConsumer):
        name = "test_recorder"
        batches: list[list[tuple]] = []
        fail = False

        def consume(self, events):
            if Recorder.fail:
                raise RuntimeError("consumer down")
            Recorder.batches.append([(e.contact_id, e.type, e.occurred_at) for e in events])

    dispatch.consumers()  # discover the real ones first
    dispatch._consumers[Recorder.name] = Recorder()
    yield Recorder
    dispatch._consumers.pop(Recorder.name)


def send(api, events):
    return api.post(EVENTS, {"events": events}, content_type="application/json").json()


def test_one_task_per_batch_and_each_contacts_events_in_time_order(
    org, api, recorder, eager_tasks, django_capture_on_commit_callbacks
):
    events = [
        {"type": f"t{i}", "email": f"c{i % 2}@example.com", "occurred_at": f"2026-11-2{9 - i}T10:00:00Z"}
        for i in range(6)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        send(api, events)

    assert len(recorder.batches) == 1
    batch = recorder.batches[0]
    assert len(batch) == 6
    for contact_id in {c for c, _, _ in batch}:
        times = [t for c, _, t in batch if c == contact_id]
        assert times == sorted(times)
    assert DispatchBatch.objects.get().status == "done"


def test_last_activity_consumer_keeps_the_newest_time(org, api, eager_tasks, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        send(
            api,
            [
                {"type": "a", "email": "a@example.com", "occurred_at": "2026-11-20T10:00:00Z"},
                {"type": "b", "email": "a@example.com", "occurred_at": "2026-11-25T10:00:00Z"},
            ],
        )
    with django_capture_on_commit_callbacks(execute=True):  # an older, late event changes nothing
        send(api, [{"type": "c", "email": "a@example.com", "occurred_at": "2026-11-01T10:00:00Z"}])
    assert Contact.objects.get().last_activity_at.isoformat() == "2026-11-25T10:00:00+00:00"


def test_a_failing_consumer_leaves_the_batch_for_a_retry_and_the_others_still_run(org, api, recorder, monkeypatch):
    monkeypatch.setattr("marketing.tasks.dispatch_batch.delay", lambda **kw: None)  # the task is "lost"
    send(api, [{"type": "a", "email": "a@example.com", "occurred_at": "2026-11-20T10:00:00Z"}])
    batch = DispatchBatch.objects.get()

    recorder.fail = True
    assert dispatch_batch_run(batch_id=batch.pk)
    batch.refresh_from_db()
    assert (batch.status, batch.attempts) == ("pending", 1)
    assert "consumer down" in batch.last_error
    assert batch.next_attempt_at > timezone.now()
    assert Contact.objects.get().last_activity_at is not None  # the healthy consumer did its part

    recorder.fail = False
    assert dispatch_batches_due(now=timezone.now()) == []  # not before its backoff
    assert dispatch_batches_due(now=batch.next_attempt_at + timedelta(minutes=2)) == [batch.pk]
    assert dispatch_batch_run(batch_id=batch.pk)
    batch.refresh_from_db()
    assert (batch.status, batch.attempts) == ("done", 2)
    assert len(recorder.batches) == 1
    assert not dispatch_batch_run(batch_id=batch.pk)  # done: a redelivered task does nothing


def test_the_sweeper_resends_lost_and_abandoned_batches(org, api, monkeypatch):
    sent = []
    monkeypatch.setattr("marketing.tasks.dispatch_batch.delay", lambda **kw: sent.append(kw["batch_id"]))
    send(api, [{"type": "a", "email": "a@example.com"}])
    lost = DispatchBatch.objects.get()
    abandoned = DispatchBatch.objects.create(
        org=org, event_ids=[], status="running", lease_until=timezone.now() - timedelta(seconds=1)
    )
    DispatchBatch.objects.filter(pk__in=[lost.pk, abandoned.pk]).update(
        next_attempt_at=timezone.now() - timedelta(minutes=5)
    )

    assert dispatch_sweep() == 2
    assert sorted(sent) == sorted([lost.pk, abandoned.pk])


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_drains_dispatch_through_redis(org, api, settings, shared_database_url):
    if settings.EMBEDDED:
        pytest.skip("needs REDIS_URL: the worker reads tasks from Redis")
    from marketing.celery import app

    app.control.purge()
    env = {**os.environ, "DATABASE_URL": shared_database_url, "REDIS_URL": settings.REDIS_URL}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "marketing", "worker", "--pool", "solo", "--loglevel", "warning"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        body = send(
            api,
            [
                {"type": "page_view", "email": f"w{i}@example.com", "occurred_at": "2026-11-20T10:00:00Z"}
                for i in range(50)
            ],
        )
        assert body["stored"] == 50
        deadline = time.monotonic() + 60
        with scopes_disabled():
            while time.monotonic() < deadline and DispatchBatch.objects.exclude(status="done").exists():
                time.sleep(0.2)
            assert DispatchBatch.objects.filter(status="done").count() == 1
            assert Contact.objects.filter(org=org, last_activity_at__isnull=False).count() == 50
            assert Event.objects.filter(org=org).count() == 50
    finally:
        worker.terminate()
        output = worker.communicate(timeout=30)[0]
    assert "Traceback" not in output, output


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_sharing_contacts_wait_for_each_other_instead_of_deadlocking(org):
    """Two workers dispatch batches over the same contacts, each batch in its own order. Every
    batch locks its contacts in id order first, so the consumers' updates of them (last activity,
    the score mirror) never deadlock: every batch is done at its first attempt."""
    import random
    import threading

    from django.db import connection

    from marketing.tenancy import org_context
    from scoring.demo import lead_score_model

    if connection.vendor != "postgresql":
        pytest.skip("row locks and deadlocks are PostgreSQL's; SQLite takes one write lock")
    with org_context(org):
        lead_score_model(org=org)  # scoring writes Contact.score too
        contacts = [Contact.objects.create(org=org, email=f"c{i}@example.com") for i in range(30)]
    rng = random.Random(5)
    batches = []
    for b in range(16):
        events = []
        for i, contact in enumerate(rng.sample(contacts, len(contacts))):
            events.append(
                Event.objects.create(
                    org=org,
                    contact=contact,
                    type="page_view",
                    properties={"path": rng.choice(["/pricing", "/", "/blog/x"])},
                    occurred_at=timezone.now() - timedelta(minutes=rng.randrange(1, 600)),
                    message_id=f"b{b}-{i}",
                )
            )
        with scopes_disabled():
            batches.append(DispatchBatch.objects.create(org=org, event_ids=[e.pk for e in events]))

    def work(mine):
        try:
            for batch in mine:
                dispatch_batch_run(batch_id=batch.pk)
        finally:
            connection.close()

    workers = [threading.Thread(target=work, args=(batches[k::2],)) for k in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    with scopes_disabled():
        rows = list(DispatchBatch.objects.filter(pk__in=[b.pk for b in batches]).values_list("status", "attempts"))
    assert rows == [("done", 1)] * len(batches)
