"""The outbox under a killed sender (docs/workflows.md): a real Celery worker sends 200 emails to a
loopback SMTP server that takes its time over each DATA, is SIGKILLed mid-batch, and a new worker
finishes the job. Every message must arrive; only those in flight at the kill may arrive twice,
and then with the same Message-ID."""

from collections import Counter
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from channels_app.models import Message
from channels_app.outbox import LOST_AFTER, message_enqueue
from channels_app.providers.email import message_id_for
from channels_app.tasks import messages_sweep
from compliance.models import ConsentRecord
from marketing.models import Contact
from tests.workflows.processes import celery_worker, wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

N = 200


@pytest.fixture
def services(settings, shared_database_url):
    """The test database's URL for subprocesses; skips in embedded mode; an empty queue."""
    if settings.EMBEDDED:
        pytest.skip("needs PostgreSQL and REDIS_URL: workers are separate processes")
    from marketing.celery import app

    app.control.purge()
    return shared_database_url


def test_a_sender_killed_mid_batch_loses_nothing_and_duplicates_only_what_was_in_flight(
    org, template, smtp_server, services, settings, tmp_path
):
    org.from_email = "news@acme.io"
    org.save()
    smtp_server.handler.data_delay = 0.03
    Contact.objects.bulk_create([Contact(org=org, email=f"c{i}@example.com") for i in range(N)])
    contacts = list(Contact.objects.filter(email__startswith="c", email__endswith="@example.com").order_by("pk"))
    ConsentRecord.objects.bulk_create(
        [ConsentRecord(org=org, contact=c, purpose="email_marketing", granted=True, source="form") for c in contacts]
    )
    with transaction.atomic():  # one commit: the sends go out as batch tasks after it
        for contact in contacts:
            message_enqueue(org=org, contact=contact, template=template, idempotency_key=f"chaos:{contact.pk}")

    env = {"EMAIL_URL": f"smtp://127.0.0.1:{smtp_server.port}"}
    received = smtp_server.handler.received
    worker = celery_worker(tmp_path, database_url=services, redis_url=settings.REDIS_URL, **env)
    try:
        wait_until(lambda: len(received) >= N // 4, timeout=90, what="a quarter of the emails to arrive")
        worker.kill()
    finally:
        worker.stop()
    in_flight = set(Message.objects.filter(status="sending").values_list("idempotency_key", flat=True))
    assert len(received) < N, "the worker finished before it was killed"

    # The dead sender's leases run out, and its unclaimed batch is as old as a lost task.
    past = timezone.now() - LOST_AFTER - timedelta(seconds=1)
    Message.objects.filter(status="sending").update(lease_until=past)
    Message.objects.filter(status="queued").update(next_attempt_at=past)
    worker = celery_worker(tmp_path, database_url=services, redis_url=settings.REDIS_URL, name="w2", **env)
    try:
        wait_until(
            lambda: not Message.objects.exclude(status="sent").exists(),
            timeout=150,
            what="every message to be sent",
            tick=messages_sweep.delay,  # what beat does every 15 s
        )
    finally:
        worker.stop()

    expected = {message_id_for(f"chaos:{c.pk}", "news@acme.io") for c in contacts}
    arrived = Counter(smtp_server.handler.message_ids())
    assert set(arrived) == expected  # nothing lost, nothing foreign
    twice = {mid for mid, n in arrived.items() if n > 1}
    assert twice <= {message_id_for(key, "news@acme.io") for key in in_flight}
    assert max(arrived.values()) <= 2
    assert set(Message.objects.values_list("provider_message_id", flat=True)) == expected
    assert "Traceback" not in worker.output(), worker.output()[-5000:]
