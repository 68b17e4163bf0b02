"""Project wiring: tasks wait for commit, and the configured channel layer carries messages."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from marketing.celery import app, enqueue_on_commit


class RecordingTask:
    def __init__(self):
        self.calls = []

    def delay(self, **kwargs):
        self.calls.append(kwargs)


def test_enqueue_on_commit_sends_only_after_commit(db, django_capture_on_commit_callbacks):
    task = RecordingTask()
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        enqueue_on_commit(task, contact_id=7)
        assert task.calls == []  # not while the transaction is open
    assert task.calls == [{"contact_id": 7}]


def test_enqueue_on_commit_sends_nothing_on_rollback(db, django_capture_on_commit_callbacks):
    task = RecordingTask()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                enqueue_on_commit(task, contact_id=7)
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
    assert callbacks == [] and task.calls == []


def test_celery_is_configured_for_reliability(settings):
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"
    assert app.conf.task_always_eager is settings.EMBEDDED


def test_channel_layer_round_trip(settings):
    layer = get_channel_layer()
    expected = "RedisChannelLayer" if not settings.EMBEDDED else "InMemoryChannelLayer"
    assert type(layer).__name__ == expected

    async def round_trip():
        channel = await layer.new_channel()
        await layer.group_add("wiring-test", channel)
        await layer.group_send("wiring-test", {"type": "status.update", "steps": 3})
        message = await layer.receive(channel)
        await layer.group_discard("wiring-test", channel)
        return message

    assert async_to_sync(round_trip)() == {"type": "status.update", "steps": 3}
