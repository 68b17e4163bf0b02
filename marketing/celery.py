"""The Celery app. Workers: ``celery -A marketing worker``; beat: ``celery -A marketing beat``.

Schedules live in django-celery-beat's tables, so operators see and edit them in the console.
Without ``REDIS_URL`` tasks run inline (``task_always_eager``), so the embedded mode needs no
broker.
"""

import os

from celery import Celery
from django.db import transaction

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketing.settings")

app = Celery("marketing")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def enqueue_on_commit(task, /, **kwargs) -> None:
    """Sends ``task`` with ``kwargs`` once the current transaction commits (never before).

    A task enqueued inside a transaction could run before the rows it needs are visible, or
    for rows a rollback then removes.
    """
    transaction.on_commit(lambda: task.delay(**kwargs))
