"""Celery tasks of the channels app: thin wrappers that take ids and call one outbox service."""

from celery import shared_task


@shared_task(acks_late=True)
def messages_send(*, message_ids: list[int]) -> int:
    """Sends these messages as one batch (each at most once at a time; a redelivered task finds
    them taken or done and does nothing); returns how many it claimed."""
    from channels_app.outbox import messages_send as send

    return len(send(message_ids=message_ids))


@shared_task(acks_late=True)
def messages_sweep() -> int:
    """Sends again messages whose sender died, whose task was lost, whose backoff is over or
    whose hold (quiet hours, frequency cap) has ended; beat sends it every 15 s."""
    from channels_app.outbox import SEND_BATCH, messages_due

    due = messages_due()
    for first in range(0, len(due), SEND_BATCH):
        messages_send.delay(message_ids=due[first : first + SEND_BATCH])
    return len(due)
