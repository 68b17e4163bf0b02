"""The engine's metrics (docs/metrics.md): the due backlog and the wake lag, outbound calls in
flight, and step runs by outcome. ``WorkflowsConfig.ready`` registers the gauges."""

from collections.abc import Iterator
from datetime import datetime

from django.db.models import Count, Min, Q
from prometheus_client.core import GaugeMetricFamily, Metric

from marketing.database_roles import system_alias
from marketing.metrics import age_seconds, counter_declare, counter_tally
from marketing.models import Organization
from workflows.models import RUNNABLE_STATUSES, Delivery, WorkflowInstance

STEP_RUNS = "workflow_step_runs"
counter_declare(STEP_RUNS, "Step runs written by the engine, by outcome.", ["outcome"])


def step_runs_count(step_runs: list[dict]) -> None:
    """Counts a batch's step run rows by outcome (``completed``, ``retrying``, ``failed``) once
    the batch commits: one increment per outcome, not per row."""
    counter_tally(STEP_RUNS, ({"outcome": row["status"]} for row in step_runs))


def instances_due(*, now: datetime, org: Organization | None = None) -> tuple[int, datetime | None]:
    """(runs whose wait is over, the earliest ``wake_at`` among them): the engine's backlog and,
    by that wake time, how far behind it is. All orgs' when ``org`` is None, read through the
    system alias (row-level security shows the app role one org at most).

    Reads only the partial index ``workflowinstance_due`` (``wake_at`` of pending and waiting
    runs), up to ``now``: the cost follows the backlog, not the table."""
    instances = WorkflowInstance.objects.with_scopes_disabled()
    instances = instances.using(system_alias()) if org is None else instances.filter(org=org)
    due = instances.filter(status__in=RUNNABLE_STATUSES, wake_at__isnull=False, wake_at__lte=now)
    found = due.aggregate(n=Count("*"), oldest=Min("wake_at"))
    return found["n"], found["oldest"]


def deliveries_in_flight(*, now: datetime, org: Organization | None = None) -> dict[str, dict]:
    """Outbound calls (webhook actions) not finished: status (``queued``, ``sending``) →
    ``{"count", "oldest_due", "expired"}``; ``expired`` counts sends whose lease ran out (the
    sender died; the sweeper sends them again). All orgs' when ``org`` is None, read through the
    system alias (row-level security shows the app role one org at most). Reads the partial index
    ``delivery_due``."""
    deliveries = Delivery.objects.with_scopes_disabled()
    deliveries = deliveries.using(system_alias()) if org is None else deliveries.filter(org=org)
    rows = (
        deliveries.filter(status__in=[Delivery.Status.QUEUED, Delivery.Status.SENDING])
        .values("status")
        .annotate(
            count=Count("*"),
            oldest_due=Min("next_attempt_at", filter=Q(next_attempt_at__lte=now)),
            expired=Count("id", filter=Q(lease_until__lt=now)),
        )
        .order_by()
    )
    found = {status: {"count": 0, "oldest_due": None, "expired": 0} for status in ("queued", "sending")}
    found.update({row.pop("status"): row for row in rows})
    return found


def workflow_gauges(*, now: datetime) -> Iterator[Metric]:
    """The engine's gauges, over all orgs."""
    due, oldest = instances_due(now=now)
    yield GaugeMetricFamily("workflow_instances_due", "Workflow runs whose wait is over, not yet advanced.", value=due)
    yield GaugeMetricFamily(
        "workflow_wake_lag_seconds",
        "How long the longest-waiting due run has been due (0 when none is).",
        value=age_seconds(now, oldest),
    )
    flight = deliveries_in_flight(now=now)
    deliveries = GaugeMetricFamily(
        "workflow_deliveries", "Outbound calls of workflow steps not finished, by status.", labels=["status"]
    )
    for status, row in flight.items():
        deliveries.add_metric([status], row["count"])
    yield deliveries
    yield GaugeMetricFamily(
        "workflow_deliveries_expired_leases",
        "Outbound calls still sending after their lease ran out (their sender died).",
        value=flight["sending"]["expired"],
    )
    yield GaugeMetricFamily(
        "workflow_deliveries_oldest_due_age_seconds",
        "How long the longest-waiting queued outbound call has been due (0 when none is).",
        value=age_seconds(now, flight["queued"]["oldest_due"]),
    )
