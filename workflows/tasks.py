"""Celery tasks of the workflows app: thin wrappers that take ids and call one service."""

from celery import shared_task


@shared_task(acks_late=True)
def instances_run_due() -> int:
    """Claims batches of due workflow runs and advances them; beat sends it every second."""
    from workflows.engine import instances_advance_due

    return instances_advance_due()


@shared_task(acks_late=True)
def deliveries_send(*, delivery_ids: list[int]) -> int:
    """Makes the outbound calls of these deliveries (each at most once at a time)."""
    from workflows.deliveries import delivery_send

    return sum(delivery_send(delivery_id=pk) is not None for pk in delivery_ids)


@shared_task(acks_late=True)
def deliveries_sweep() -> int:
    """Sends again deliveries whose sender died, whose task was lost or whose backoff is over."""
    from workflows.deliveries import deliveries_due

    due = deliveries_due()
    for first in range(0, len(due), 20):
        deliveries_send.delay(delivery_ids=due[first : first + 20])
    return len(due)


@shared_task(acks_late=True)
def scheduled_job_run(*, job_id: int) -> int:
    """One firing of a scheduled job (beat sends it on the job's schedule). The job's org is
    looked up through the system alias (beat names only the job); the job is then read and run
    as the app role in that org's context."""
    from marketing.database_roles import org_of
    from marketing.tenancy import org_context
    from workflows.models import ScheduledJob
    from workflows.scheduled_jobs import scheduled_job_run as run

    org = org_of(ScheduledJob, job_id)
    if org is None:
        return 0
    with org_context(org):
        job = ScheduledJob.objects.filter(pk=job_id, enabled=True).first()
        return 0 if job is None else run(job=job)


@shared_task(acks_late=True)
def date_triggers_run() -> int:
    """Enrols contacts in date-relative workflows whose moment has come (hourly)."""
    from workflows.services import date_triggers_enrol

    return date_triggers_enrol()
