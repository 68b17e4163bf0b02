"""The engine's panels on the console's home (``marketing.console_home``): the marketer's active
workflows and approvals waiting, and the admin's engine health. ``WorkflowsConfig.ready``
registers them."""

from django.db.models import Count, Q

from marketing.console_home import (
    HEALTH,
    MARKETING,
    HomeBlock,
    HomeScope,
    Panel,
    Stat,
    admin_url,
    duration_text,
    home_block_register,
)
from marketing.metrics import age_seconds
from workflows.metrics import instances_due
from workflows.models import ACTIVE_STATUSES, Approval, InstanceStatus, Workflow, WorkflowStepRun

SHOWN = 10  # rows per table; the rest are a click away


def workflows_panel(scope: HomeScope) -> Panel:
    """Active workflows with this week's enrolments and failures and the runs in progress, in
    one grouped query."""
    since = scope.since
    workflows = list(
        Workflow.objects.filter(org=scope.org, status=Workflow.Status.ACTIVE)
        .annotate(
            enrolled=Count("instances", filter=Q(instances__triggered_at__gte=since)),
            running=Count("instances", filter=Q(instances__status__in=ACTIVE_STATUSES)),
            failed=Count(
                "instances", filter=Q(instances__status=InstanceStatus.FAILED, instances__finished_at__gte=since)
            ),
        )
        .order_by("-enrolled", "name")
        .values("pk", "name", "enrolled", "running", "failed")[: SHOWN + 1]
    )

    def runs(pk: int, **filters) -> str | None:
        return admin_url("workflows_workflowinstance_changelist", workflow__id__exact=pk, **filters)

    rows = [
        [
            (w["name"], admin_url("workflows_workflow_change", w["pk"])),
            (w["enrolled"], runs(w["pk"], enrolled="7")),
            (w["running"], runs(w["pk"], progress="in_progress")),
            (w["failed"], runs(w["pk"], status__exact=InstanceStatus.FAILED.value, ended="7")),
        ]
        for w in workflows[:SHOWN]
    ]
    return Panel(
        title="Active workflows (last 7 days)",
        columns=["Workflow", "Enrolled", "In progress", "Failed"],
        rows=rows,
        empty="No workflow is active. Publish one from Workflows.",
        more=(
            ("All active workflows", admin_url("workflows_workflow_changelist", status__exact="active"))
            if len(workflows) > SHOWN
            else None
        ),
    )


def approvals_panel(scope: HomeScope) -> Panel:
    """Approvals waiting for a decision, the soonest due first."""
    pending = Approval.objects.filter(org=scope.org, status=Approval.Status.PENDING)
    total = pending.count()
    waiting = pending.select_related("instance__workflow", "instance__contact").order_by("due_at", "id")[:SHOWN]
    rows = [
        [
            (approval.instance.workflow.name, admin_url("workflows_approval_change", approval.pk)),
            (approval.step_id, None),
            (str(approval.instance.contact), None),
            (approval.due_at.strftime("%d %b %H:%M"), None),
        ]
        for approval in waiting
    ]
    return Panel(
        title="Waiting for approval",
        stats=[
            Stat(
                "Pending",
                total,
                admin_url("workflows_approval_changelist", status__exact="pending"),
                "warn" if total else "",
            )
        ],
        columns=["Workflow", "Step", "Contact", "Due"],
        rows=rows,
        empty="Nothing waits for approval.",
    )


def engine_panel(scope: HomeScope) -> Panel:
    """The due backlog and how far behind the engine is, and this week's failed step runs."""
    due, oldest = instances_due(now=scope.now, org=scope.org)
    lag = age_seconds(scope.now, oldest)
    runs = WorkflowStepRun.objects.with_scopes_disabled()
    if scope.org is not None:
        runs = runs.filter(org=scope.org)
    failed = runs.filter(status=WorkflowStepRun.Status.FAILED, completed_at__gte=scope.since).count()
    return Panel(
        title="Workflow engine",
        stats=[
            Stat(
                "Runs due now",
                due,
                admin_url("workflows_workflowinstance_changelist", progress="due"),
                "warn" if due else "",
            ),
            Stat("Wake lag", duration_text(lag), tone="bad" if lag > 60 else ""),
            Stat(
                "Failed steps (7 days)",
                failed,
                admin_url(
                    "workflows_workflowsteprun_changelist",
                    status__exact=WorkflowStepRun.Status.FAILED.value,
                    completed=7,
                ),
                "bad" if failed else "",
            ),
        ],
    )


def home_blocks_register() -> None:
    """Adds the engine's panels to the console's home."""
    home_block_register(HomeBlock(name="workflows.active", audience=MARKETING, order=110, build=workflows_panel))
    home_block_register(HomeBlock(name="workflows.approvals", audience=MARKETING, order=130, build=approvals_panel))
    home_block_register(HomeBlock(name="workflows.engine", audience=HEALTH, order=300, build=engine_panel))
