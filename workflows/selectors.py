"""Read queries about workflows: per-step counts for the live page, and analytics."""

from statistics import median

from django.db import connection
from django.db.models import Aggregate, Count, FloatField, Q
from django.utils import timezone

from workflows.models import ACTIVE_STATUSES, InstanceStatus, WorkflowInstance, WorkflowStepRun


def running_runs(*, workflow):
    """The runs of ``workflow`` not finished yet (pending, running, waiting or paused): publishing
    asks what happens to them."""
    return WorkflowInstance.objects.filter(org_id=workflow.org_id, workflow=workflow, status__in=ACTIVE_STATUSES)


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
    runs = WorkflowStepRun.objects.filter(workflow=workflow).exclude(status=WorkflowStepRun.Status.RETRYING)
    per_step = {
        row.pop("step_id"): row
        for row in runs.values("step_id").annotate(
            runs=Count("id"), failed=Count("id", filter=Q(status=WorkflowStepRun.Status.FAILED))
        )
    }
    if connection.vendor == "postgresql":
        medians = runs.values("step_id").annotate(median=Median("duration_ms")).values_list("step_id", "median")
    else:  # SQLite has no percentile: the durations come to Python (embedded mode, small data)
        durations: dict[str, list[int]] = {}
        for step_id, duration_ms in runs.values_list("step_id", "duration_ms").iterator(chunk_size=5000):
            durations.setdefault(step_id, []).append(duration_ms)
        medians = [(step_id, median(values)) for step_id, values in durations.items()]
    for step_id, value in medians:
        per_step[step_id]["median_s"] = round(value / 1000, 3)
    return {**totals, "steps": per_step}


class Median(Aggregate):
    """PostgreSQL's ``percentile_cont(0.5) WITHIN GROUP (ORDER BY …)``: the median in the query."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()
