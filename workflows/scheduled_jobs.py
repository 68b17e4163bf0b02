"""Scheduled jobs: a ``ScheduledJob`` row kept in step with a django-celery-beat ``PeriodicTask``
(clocked for once, interval for every N seconds, crontab for cron), so beat runs it and an
operator sees it under Periodic tasks too. Each firing enrols the job's segment members in its
workflow, once per member per firing (the firing time is the trigger key)."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask

from workflows.models import ScheduledJob
from workflows.triggers.builtin import cron_problem, segment_member_batches

TASK = "workflows.tasks.scheduled_job_run"


def scheduled_job_save(*, job: ScheduledJob, **fields) -> ScheduledJob:
    """Saves the job and its PeriodicTask together; errors name the field."""
    for name, value in fields.items():
        setattr(job, name, value)
    if job.kind == ScheduledJob.Kind.CRON and (problem := cron_problem(job.cron)):
        raise ValidationError({"cron": problem})
    if job.kind == ScheduledJob.Kind.RECURRING and not job.every_seconds:
        raise ValidationError({"every_seconds": "Give the interval in seconds."})
    if job.kind == ScheduledJob.Kind.ONCE and job.run_at is None:
        raise ValidationError({"run_at": "Give the time to run at."})
    with transaction.atomic():
        job.save()
        task = job.periodic_task or PeriodicTask(name=f"workflow job {job.pk}: {job.name}"[:200], task=TASK)
        task.kwargs = f'{{"job_id": {job.pk}}}'
        task.enabled = job.enabled
        task.interval = task.crontab = task.clocked = None
        task.one_off = False
        if job.kind == ScheduledJob.Kind.CRON:
            minute, hour, day, month, weekday = job.cron.split()
            task.crontab, _ = CrontabSchedule.objects.get_or_create(
                minute=minute,
                hour=hour,
                day_of_month=day,
                month_of_year=month,
                day_of_week=weekday,
                timezone=job.time_zone,
            )
        elif job.kind == ScheduledJob.Kind.RECURRING:
            task.interval, _ = IntervalSchedule.objects.get_or_create(
                every=job.every_seconds, period=IntervalSchedule.SECONDS
            )
        else:
            task.clocked, _ = ClockedSchedule.objects.get_or_create(clocked_time=job.run_at)
            task.one_off = True
        task.save()
        if job.periodic_task_id != task.pk:
            job.periodic_task = task
            job.save(update_fields=["periodic_task"])
    return job


def scheduled_job_delete(*, job: ScheduledJob) -> None:
    """Deletes the job and its PeriodicTask."""
    with transaction.atomic():
        if job.periodic_task_id:
            PeriodicTask.objects.filter(pk=job.periodic_task_id).delete()
        job.delete()


def scheduled_job_run(*, job: ScheduledJob, now=None) -> int:
    """One firing: enrols the segment's current members; returns how many runs started."""
    from workflows.services import workflow_enrol

    now = now or timezone.now()
    if job.segment is None or job.workflow.live_version_id is None:
        return 0
    started = 0
    for contact_ids, key in segment_member_batches(job.segment, f"schedule:{job.pk}:{now:%Y-%m-%dT%H:%M}"):
        started += workflow_enrol(
            workflow=job.workflow,
            contact_ids=contact_ids,
            trigger_type="schedule",
            trigger_key=key,
            trigger_data={"job": job.name, "at": now.isoformat()},
        )
    ScheduledJob.objects.filter(pk=job.pk).update(last_run_at=now, last_enrolled=started)
    return started
