"""Read queries about workflows: per-step counts for the live page, and analytics."""

from statistics import median

from django.db.models import Count, Q
from django.utils import timezone

from workflows.models import ACTIVE_STATUSES, InstanceStatus, WorkflowInstance, WorkflowStepRun


def step_counts(*, workflow_id: int) -> dict[str, dict[str, int]]:
    """Per step: ``waiting`` (runs parked there), ``running`` (due now, being worked),
    ``done`` and ``failed`` (step runs that left it). Two grouped, index-only queries."""
    now = timezone.now()
    counts: dict[str, dict[str, int]] = {}

    def slot(step: str) -> dict[str, int]:
        return counts.setdefault(step, {"waiting": 0, "running": 0, "done": 0, "failed": 0})

    parked = (
        WorkflowInstance.objects.with_scopes_disabled()
        .filter(workflow_id=workflow_id, status__in=ACTIVE_STATUSES)
        .values("current_step")
        .annotate(total=Count("id"), due=Count("id", filter=Q(wake_at__lte=now)))
    )
    for row in parked:
        slot(row["current_step"])["waiting"] += row["total"] - row["due"]
        slot(row["current_step"])["running"] += row["due"]
    runs = (
        WorkflowStepRun.objects.with_scopes_disabled()
        .filter(workflow_id=workflow_id)
        .values("step_id", "status")
        .annotate(total=Count("id"))
    )
    for row in runs:
        key = "failed" if row["status"] == WorkflowStepRun.Status.FAILED else "done"
        if row["status"] != WorkflowStepRun.Status.RETRYING:
            slot(row["step_id"])[key] += row["total"]
    return counts


def workflow_analytics(*, workflow) -> dict:
    """Enrolled, active, completed, goal reached, failed, and per step the runs and the median
    time spent in the step (from entering to leaving), in seconds."""
    instances = WorkflowInstance.objects.filter(workflow=workflow)
    totals = instances.aggregate(
        enrolled=Count("id"),
        active=Count("id", filter=Q(status__in=ACTIVE_STATUSES)),
        completed=Count("id", filter=Q(status=InstanceStatus.COMPLETED)),
        goal_reached=Count("id", filter=Q(result=WorkflowInstance.Result.GOAL_REACHED)),
        failed=Count("id", filter=Q(status=InstanceStatus.FAILED)),
    )
    per_step: dict[str, dict] = {}
    durations: dict[str, list[int]] = {}
    runs = WorkflowStepRun.objects.filter(workflow=workflow).exclude(status=WorkflowStepRun.Status.RETRYING)
    for step_id, status, duration_ms in runs.values_list("step_id", "status", "duration_ms").iterator(chunk_size=5000):
        entry = per_step.setdefault(step_id, {"runs": 0, "failed": 0})
        entry["runs"] += 1
        entry["failed"] += status == WorkflowStepRun.Status.FAILED
        durations.setdefault(step_id, []).append(duration_ms)
    for step_id, values in durations.items():
        per_step[step_id]["median_s"] = round(median(values) / 1000, 3)
    return {**totals, "steps": per_step}
