"""The embedded mode's outbox sweeper sends held messages once their window opens, without beat."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from channels_app import embedded_runner
from channels_app.models import Message
from channels_app.outbox import message_enqueue


@pytest.mark.django_db(transaction=True)
def test_the_sweeper_sends_a_held_message_when_its_window_opens(org, contact, template, smtp):
    message = message_enqueue(org=org, contact=contact, template=template, idempotency_key="held-1", enqueue_send=False)
    Message.objects.filter(pk=message.pk).update(status="held", next_attempt_at=timezone.now() + timedelta(seconds=1))
    runner = embedded_runner.start(interval_s=0.1)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and Message.objects.get(pk=message.pk).status != "sent":
            time.sleep(0.1)
    finally:
        runner.stop()
    assert Message.objects.get(pk=message.pk).status == "sent"
    assert len(smtp.received) == 1
