"""System jobs, upserted by name into django-celery-beat's tables at every migrate.

Operators see them under Periodic tasks and may change their interval or disable them; a
migrate restores a deleted one but leaves an edited interval alone.
"""

from django.db import transaction

# name -> (task, every N seconds, description[, expire after N seconds]); other apps add theirs
# with ``system_jobs_register`` from their AppConfig.ready().
SYSTEM_JOBS: dict[str, tuple] = {
    "marketing: redeliver event batches": (
        "marketing.tasks.dispatch_sweep",
        30,
        "Sends again event batches whose dispatch task was lost or failed.",
    ),
    "marketing: recompute dynamic segments": (
        "marketing.tasks.segments_recompute_all",
        900,
        "Recomputes every dynamic segment, for rules that time changes (days_since, event windows).",
    ),
}


def system_jobs_register(jobs: dict[str, tuple]) -> None:
    """Adds an app's system jobs (same shape as SYSTEM_JOBS) before migrate installs them."""
    SYSTEM_JOBS.update(jobs)


def schedules_install(**kwargs) -> None:
    """Creates the system jobs that do not exist yet (post_migrate)."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    with transaction.atomic():
        for name, (task, seconds, description, *expire) in SYSTEM_JOBS.items():
            if PeriodicTask.objects.filter(name=name).exists():
                continue
            interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period=IntervalSchedule.SECONDS)
            PeriodicTask.objects.create(
                name=name,
                task=task,
                interval=interval,
                description=description,
                expire_seconds=expire[0] if expire else None,
            )
