"""GET /metrics: the token, the Prometheus text, gauges computed from the rows at scrape time and
counters shared through Redis by every process (docs/metrics.md)."""

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from channels_app.metrics import messages_in_flight
from channels_app.models import Message
from channels_app.outbox import messages_send
from marketing import metrics
from marketing.metrics import counter_incr, counters_read, dispatch_backlog
from marketing.models import DispatchBatch
from tests.factories import ContactFactory
from workflows.engine import advance_batch
from workflows.metrics import deliveries_in_flight, instances_due
from workflows.models import Delivery, WorkflowInstance
from workflows.services import workflow_create, workflow_enrol, workflow_publish

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "s3cret-metrics-token"
EVERY_METRIC = {
    "events_ingested": "counter",
    "workflow_step_runs": "counter",
    "outbox_sends": "counter",
    "workflow_instances_due": "gauge",
    "workflow_wake_lag_seconds": "gauge",
    "workflow_deliveries": "gauge",
    "workflow_deliveries_expired_leases": "gauge",
    "workflow_deliveries_oldest_due_age_seconds": "gauge",
    "dispatch_batches": "gauge",
    "dispatch_oldest_age_seconds": "gauge",
    "outbox_messages": "gauge",
    "outbox_oldest_due_age_seconds": "gauge",
    "outbox_failed_messages_recent": "gauge",
}
# Monday 30 November 2026, 10:00 UTC: no quiet hours anywhere near.
T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


@pytest.fixture
def scraper(token):
    return Client(headers={"Authorization": f"Bearer {token}"})


def scrape(client) -> dict[tuple, float]:
    """(sample name, sorted labels) → value, from a 200 answer parsed as Prometheus text."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.content
    families = text_string_to_metric_families(response.content.decode())
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families
        for sample in family.samples
    }


def counted(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0)


def workflow_with_runs(org, contacts, *, now):
    steps = [{"id": "a", "type": "action", "action": "log", "config": {"message": "hi"}, "next": None}]
    workflow = workflow_create(
        org=org, name="Metrics", slug="metrics", definition={"trigger": {"type": "manual"}, "steps": steps}
    )
    workflow_publish(workflow=workflow)
    workflow.refresh_from_db()
    workflow_enrol(
        workflow=workflow, contact_ids=[c.pk for c in contacts], trigger_type="manual", trigger_key="k", now=now
    )
    return workflow


def message(org, contact, *, channel, key, status="queued", due=T0, created=None):
    return Message.objects.create(
        org=org,
        contact=contact,
        channel=channel,
        purpose="transactional",
        idempotency_key=key,
        to=contact.email if channel == "email" else "+4915112345678",
        content={"subject": "Receipt", "text": "Thank you."},
        status=status,
        next_attempt_at=due,
        created_at=created or timezone.now(),
    )


# --- the endpoint --------------------------------------------------------------------------------


def test_without_the_token_or_with_another_the_answer_is_401_with_a_challenge(db, token):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {token}"}):
        response = Client(headers=headers).get("/metrics")

        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert b"METRICS_TOKEN" in response.content
        assert b"workflow_" not in response.content


def test_without_a_token_setting_the_endpoint_is_off(db, settings):
    settings.METRICS_TOKEN = ""

    assert Client().get("/metrics").status_code == 404
    assert Client(headers={"Authorization": "Bearer "}).get("/metrics").status_code == 404


def test_only_get_is_answered(db, scraper):
    assert scraper.post("/metrics").status_code == 405


def test_with_the_token_every_metric_is_there_in_prometheus_text(db, scraper):
    response = scraper.get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "no-cache" in response.get("Cache-Control", "") or "max-age=0" in response.get("Cache-Control", "")
    families = {f.name: f.type for f in text_string_to_metric_families(response.content.decode())}
    assert EVERY_METRIC.items() <= families.items()
    if django_settings.REDIS_URL:
        assert families["celery_queue_length"] == "gauge"


# --- gauges --------------------------------------------------------------------------------------


def test_due_runs_give_the_backlog_and_the_wake_lag(org, other_org, scraper):
    now = timezone.now()
    workflow_with_runs(org, ContactFactory.create_batch(3, org=org), now=now)
    WorkflowInstance.objects.update(wake_at=now - timedelta(minutes=10))
    later = WorkflowInstance.objects.order_by("pk").first()
    WorkflowInstance.objects.filter(pk=later.pk).update(wake_at=now + timedelta(hours=1))  # not due yet

    samples = scrape(scraper)

    assert counted(samples, "workflow_instances_due") == 2
    assert 600 <= counted(samples, "workflow_wake_lag_seconds") < 700
    assert instances_due(now=now, org=org)[0] == 2
    assert instances_due(now=now, org=other_org) == (0, None)


def test_no_due_runs_is_a_backlog_of_zero_and_no_lag(db, scraper):
    samples = scrape(scraper)

    assert counted(samples, "workflow_instances_due") == 0
    assert counted(samples, "workflow_wake_lag_seconds") == 0


def test_outbound_calls_in_flight_give_the_backlog_and_expired_leases(org, other_org, scraper):
    now = timezone.now()
    for key, status, due, lease in (
        ("d1", "queued", now - timedelta(minutes=2), None),
        ("d2", "queued", now + timedelta(hours=1), None),  # backing off, not due yet
        ("d3", "sending", now - timedelta(minutes=5), now - timedelta(seconds=10)),  # its sender died
        ("d4", "sent", now - timedelta(hours=1), None),
    ):
        Delivery.objects.create(
            org=org,
            idempotency_key=key,
            action="webhook",
            request={},
            status=status,
            next_attempt_at=due,
            lease_until=lease,
        )

    samples = scrape(scraper)

    assert counted(samples, "workflow_deliveries", status="queued") == 2
    assert counted(samples, "workflow_deliveries", status="sending") == 1
    assert counted(samples, "workflow_deliveries_expired_leases") == 1
    assert 120 <= counted(samples, "workflow_deliveries_oldest_due_age_seconds") < 180
    assert deliveries_in_flight(now=now, org=other_org)["queued"] == {"count": 0, "oldest_due": None, "expired": 0}


def test_messages_waiting_and_failed_are_counted_by_channel(org, other_org, scraper):
    contact = ContactFactory(org=org, email="ana@example.com")
    now = timezone.now()
    message(org, contact, channel="email", key="q1", due=now - timedelta(minutes=5))
    message(org, contact, channel="email", key="q2", due=now + timedelta(hours=1))
    message(org, contact, channel="sms", key="h1", status="held", due=now + timedelta(hours=8))
    message(org, contact, channel="sms", key="f1", status="failed")
    message(org, contact, channel="sms", key="f2", status="failed", created=now - timedelta(days=3))  # not recent
    message(org, contact, channel="email", key="s1", status="sent")

    samples = scrape(scraper)

    assert counted(samples, "outbox_messages", channel="email", status="queued") == 2
    assert counted(samples, "outbox_messages", channel="sms", status="held") == 1
    assert ("outbox_messages", (("channel", "email"), ("status", "sent"))) not in samples
    assert 300 <= counted(samples, "outbox_oldest_due_age_seconds", channel="email") < 400
    assert ("outbox_oldest_due_age_seconds", (("channel", "sms"),)) not in samples  # held, not due yet
    assert counted(samples, "outbox_failed_messages_recent", channel="sms") == 1
    assert messages_in_flight(now=now, org=other_org) == {}


def test_pending_dispatch_batches_give_the_backlog_and_its_age(org, other_org, scraper):
    now = timezone.now()
    DispatchBatch.objects.create(org=org, event_ids=[1], created_at=now - timedelta(minutes=3))
    DispatchBatch.objects.create(org=org, event_ids=[2], status="running", created_at=now - timedelta(minutes=1))
    DispatchBatch.objects.create(org=org, event_ids=[3], status="done", created_at=now - timedelta(days=1))

    samples = scrape(scraper)

    assert counted(samples, "dispatch_batches", status="pending") == 1
    assert counted(samples, "dispatch_batches", status="running") == 1
    assert 180 <= counted(samples, "dispatch_oldest_age_seconds") < 240
    assert dispatch_backlog(org=other_org) == {"pending": (0, None), "running": (0, None)}


@pytest.mark.skipif(not django_settings.REDIS_URL, reason="Celery queues are Redis lists")
def test_celery_queue_length_is_the_broker_list_length(db, scraper):
    import redis

    client = redis.Redis.from_url(django_settings.REDIS_URL)
    before = counted(scrape(scraper), "celery_queue_length", queue="celery")
    client.rpush("celery", "not-a-task-1", "not-a-task-2")
    client.rpush("celery\x06\x163", "not-a-task-3")  # a message sent with a priority
    try:
        assert counted(scrape(scraper), "celery_queue_length", queue="celery") == before + 3
    finally:
        client.lrem("celery", 0, "not-a-task-1")
        client.lrem("celery", 0, "not-a-task-2")
        client.lrem("celery\x06\x163", 0, "not-a-task-3")


# --- counters ------------------------------------------------------------------------------------


def test_ingested_events_count_by_source_once_committed(
    org, api, scraper, eager_tasks, django_capture_on_commit_callbacks
):
    before = counted(scrape(scraper), "events_ingested_total", source="api")
    events = [{"type": "page_view", "email": f"v{i}@example.com", "message_id": f"m-{i}"} for i in range(5)]

    with django_capture_on_commit_callbacks(execute=True):
        first = api.post("/api/v1/events/", {"events": events}, content_type="application/json")
    with django_capture_on_commit_callbacks(execute=True):
        again = api.post("/api/v1/events/", {"events": events}, content_type="application/json")  # duplicates

    assert (first.json()["stored"], again.json()["stored"]) == (5, 0)
    assert counted(scrape(scraper), "events_ingested_total", source="api") == before + 5


def test_the_engine_counts_step_runs_by_outcome_in_one_round_trip(
    org, scraper, django_capture_on_commit_callbacks, monkeypatch
):
    now = timezone.now()
    workflow_with_runs(org, ContactFactory.create_batch(4, org=org), now=now)
    before = counted(scrape(scraper), "workflow_step_runs_total", outcome="completed")
    pipelines = []
    if django_settings.REDIS_URL:
        client = metrics._redis()
        real_pipeline = client.pipeline

        def pipeline(*args, **kwargs):
            pipe = real_pipeline(*args, **kwargs)
            pipelines.append(pipe)
            return pipe

        monkeypatch.setattr(client, "pipeline", pipeline)
    with django_capture_on_commit_callbacks(execute=True):
        assert advance_batch(now=now) == 4
    monkeypatch.undo()

    if django_settings.REDIS_URL:
        assert len(pipelines) == 1  # one batch, one round trip, one HINCRBY per outcome
    assert counted(scrape(scraper), "workflow_step_runs_total", outcome="completed") == before + 4


def test_a_rolled_back_batch_counts_nothing(org, scraper, django_capture_on_commit_callbacks):
    before = counted(scrape(scraper), "workflow_step_runs_total", outcome="failed")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        counter_incr("workflow_step_runs", 3, outcome="failed")
        raise RuntimeError("the batch failed")

    assert counted(scrape(scraper), "workflow_step_runs_total", outcome="failed") == before


def test_the_outbox_counts_sends_by_channel_and_outcome(org, scraper, django_capture_on_commit_callbacks):
    contact = ContactFactory(org=org, email="ana@example.com")
    sent = message(org, contact, channel="email", key="e1")
    failed = message(org, contact, channel="sms", key="s1")  # SMS without Twilio settings: a permanent failure
    samples = scrape(scraper)
    before = (
        counted(samples, "outbox_sends_total", channel="email", outcome="sent"),
        counted(samples, "outbox_sends_total", channel="sms", outcome="failed"),
    )

    with django_capture_on_commit_callbacks(execute=True):
        results = messages_send(message_ids=[sent.pk, failed.pk], now=T0)

    assert results == {sent.pk: "sent", failed.pk: "failed"}
    samples = scrape(scraper)
    assert counted(samples, "outbox_sends_total", channel="email", outcome="sent") == before[0] + 1
    assert counted(samples, "outbox_sends_total", channel="sms", outcome="failed") == before[1] + 1


def test_a_count_made_in_another_process_shows_in_the_scrape(db, scraper, shared_database_url):
    if not django_settings.REDIS_URL:
        pytest.skip("without Redis each process keeps its own counts")
    before = counted(scrape(scraper), "events_ingested_total", source="other-process")
    code = "from marketing.metrics import counter_incr; counter_incr('events_ingested', 7, source='other-process')"

    subprocess.run(  # noqa: S603  our own interpreter and manage.py, fixed arguments
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": shared_database_url,
            "REDIS_URL": django_settings.REDIS_URL,
            "LOG_LEVEL": "WARNING",
        },
        check=True,
        timeout=60,
    )

    assert counted(scrape(scraper), "events_ingested_total", source="other-process") == before + 7


def test_without_redis_counters_live_in_the_process(
    db, scraper, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.REDIS_URL = ""
    monkeypatch.setattr(metrics, "_local_counts", {})

    with django_capture_on_commit_callbacks(execute=True):
        counter_incr("outbox_sends", 2, channel="push", outcome="sent")
        counter_incr("outbox_sends", 1, channel="push", outcome="sent")

    assert counters_read()["outbox_sends"][("push", "sent")] == 3
    assert counted(scrape(scraper), "outbox_sends_total", channel="push", outcome="sent") == 3


def test_an_unknown_label_is_refused_where_it_is_counted(db):
    with pytest.raises(ValueError, match="no label"):
        counter_incr("outbox_sends", channel="email", result="sent")
