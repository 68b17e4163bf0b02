"""The engine's panels on the console's home (``marketing.console_home``): the marketer's active
workflows and approvals waiting, and the admin's engine health. ``WorkflowsConfig.ready``
registers them."""

from django.db.models import Count

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
from marketing.database_roles import system_alias
from marketing.metrics import age_seconds
from workflows.metrics import instances_due
from workflows.models import ACTIVE_STATUSES, Approval, InstanceStatus, Workflow, WorkflowInstance, WorkflowStepRun

SHOWN = 10  # rows per table; the rest are a click away


def workflows_panel(scope: HomeScope) -> Panel:
    """Active workflows with this week's enrolments and failures and the runs in progress, the
    most enrolled first (then by name).

    Each count reads only the runs it counts, through an index: this week's runs by the
    (org, triggered_at) index for the order, then the open and the failed runs of the ten shown.
    One grouped join of every workflow with every run read all of them (half a second with
    200,000 runs)."""
    since = scope.since
    active = Workflow.objects.filter(org=scope.org, status=Workflow.Status.ACTIVE)
    enrolled = {
        row["workflow"]: row["n"]
        for row in WorkflowInstance.objects.filter(org=scope.org, triggered_at__gte=since, workflow__in=active)
        .values("workflow")
        .annotate(n=Count("*"))
        .order_by()
    }
    names = dict(active.filter(pk__in=list(enrolled)).values_list("pk", "name"))
    ranked = sorted(names, key=lambda pk: (-enrolled[pk], names[pk]))[: SHOWN + 1]
    if len(ranked) <= SHOWN:  # the rest, none enrolled this week, by name
        quiet = active.exclude(pk__in=ranked).order_by("name").values_list("pk", "name")[: SHOWN + 1 - len(ranked)]
        for pk, name in quiet:
            names[pk] = name
            ranked.append(pk)
    shown = ranked[:SHOWN]
    open_runs = WorkflowInstance.objects.filter(workflow__in=shown, status__in=ACTIVE_STATUSES)
    running = dict(open_runs.values("workflow").annotate(n=Count("*")).order_by().values_list("workflow", "n"))
    failures = WorkflowInstance.objects.filter(
        org=scope.org, workflow__in=shown, status=InstanceStatus.FAILED, finished_at__gte=since
    )
    failed = dict(failures.values("workflow").annotate(n=Count("*")).order_by().values_list("workflow", "n"))
    workflows = [
        {
            "pk": pk,
            "name": names[pk],
            "enrolled": enrolled.get(pk, 0),
            "running": running.get(pk, 0),
            "failed": failed.get(pk, 0),
        }
        for pk in ranked
    ]

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
    # A superuser's health counts every org: read through the system alias (row-level security).
    runs = runs.using(system_alias()) if scope.org is None else runs.filter(org=scope.org)
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
