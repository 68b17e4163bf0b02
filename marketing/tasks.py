"""Celery tasks of the ground floor: thin wrappers that take ids and call one service."""

from celery import shared_task

from marketing import dispatch


@shared_task(acks_late=True)
def dispatch_batch(*, batch_id: int) -> bool:
    """Hands one stored batch of events to the consumers (at least once)."""
    return dispatch.dispatch_batch_run(batch_id=batch_id)


@shared_task(acks_late=True)
def dispatch_sweep() -> int:
    """Sends again the batches whose task was lost, failed or whose worker died; beat runs it."""
    due = dispatch.dispatch_batches_due()
    for batch_id in due:
        dispatch_batch.delay(batch_id=batch_id)
    return len(due)


@shared_task(acks_late=True)
def import_run(*, job_id: int) -> None:
    """Runs (or resumes) a CSV import job."""
    from marketing.imports import import_job_run

    import_job_run(job_id=job_id)
