"""Celery tasks of the compliance app: thin, each calls one service."""

from celery import shared_task

from compliance.data_subject_requests import request_archives_expire, requests_remind


@shared_task(acks_late=True)
def data_subject_requests_remind() -> int:
    """Mails the compliance staff about requests due within seven days and overdue; beat runs it daily."""
    return requests_remind()


@shared_task(acks_late=True)
def data_subject_request_archives_expire() -> int:
    """Deletes the archives of access requests whose download link has expired; beat runs it daily."""
    return request_archives_expire()


@shared_task(acks_late=True)
def retention_purge_all() -> int:
    """Purges every org's data past its retention policies, in batches; beat runs it nightly."""
    from compliance.retention import retention_purge_all as purge

    return purge()
