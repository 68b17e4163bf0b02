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


@shared_task(acks_late=True)
def segments_check(*, org_id: int, contact_ids: list[int]) -> None:
    """Re-checks the field-reading dynamic segments for contacts that changed."""
    from marketing.models import Organization
    from marketing.segments import segments_affected, segments_check_contacts
    from marketing.tenancy import org_context

    org = Organization.objects.get(pk=org_id)
    with org_context(org):
        segments_check_contacts(
            org=org, contact_ids=contact_ids, segments=segments_affected(org=org, fields_changed=True)
        )


@shared_task(acks_late=True)
def segments_recompute_all() -> int:
    """Recomputes every dynamic segment (time moves rules like "days_since" and event windows).

    Which orgs have dynamic segments is a look across orgs, through the system alias
    (docs/tenancy.md, "Workers"); each org's segments are then read and recomputed as the app
    role in its context."""
    from marketing.database_roles import system_alias
    from marketing.models import Organization, Segment
    from marketing.segments import segment_recompute
    from marketing.tenancy import org_context

    dynamic = Segment.objects.with_scopes_disabled().using(system_alias()).filter(kind=Segment.Kind.DYNAMIC)
    recomputed = 0
    for org in Organization.objects.filter(pk__in=set(dynamic.values_list("org_id", flat=True))).order_by("pk"):
        with org_context(org):
            for segment in Segment.objects.filter(kind=Segment.Kind.DYNAMIC).select_related("org").order_by("pk"):
                segment_recompute(segment=segment)
                recomputed += 1
    return recomputed
