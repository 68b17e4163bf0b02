"""Workflows: definitions and their frozen versions, one contact's run of one (an instance), the
steps it ran, the side effects it recorded, approvals, schedules and the template library.

The engine (``workflows.engine``) keeps all run state in these rows, never in the broker.
"""

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from marketing.change_history import history_tracked
from marketing.models import Contact, TenantModel


def _webhook_secret() -> str:
    return secrets.token_urlsafe(32)


@history_tracked(exclude=("usage_count",))
class WorkflowTemplate(TenantModel):
    """A reusable definition an operator starts a workflow from (the template library)."""

    class Category(models.TextChoices):
        SOCIAL = "social", "Social"
        CAMPAIGN = "campaign", "Campaign"
        LEAD_NURTURE = "lead_nurture", "Lead nurture"
        ENGAGEMENT = "engagement", "Engagement"
        REPORTING = "reporting", "Reporting"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        ARCHIVED = "archived", "Archived"

    slug = models.SlugField(max_length=100)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    category = models.CharField(max_length=20, choices=Category.choices)
    tags = models.JSONField(default=list, blank=True)
    trigger = models.JSONField(default=dict, blank=True, help_text="The trigger the definition starts with.")
    definition = models.JSONField()
    usage_count = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["category", "name"]
        constraints = [models.UniqueConstraint(fields=["org", "slug"], name="workflowtemplate_unique_slug")]

    def __str__(self) -> str:
        return self.name


@history_tracked(exclude=("webhook_secret",))
class Workflow(TenantModel):
    """An automation an operator edits (``draft_definition``) and publishes as a version."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft (never published)"
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        ARCHIVED = "archived", "Archived"

    slug = models.SlugField(max_length=100)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    draft_definition = models.JSONField(default=dict, help_text="The definition being edited (docs/workflows.md).")
    live_version = models.ForeignKey(
        "WorkflowVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Copied from the live version at publish, so dispatch finds the workflows an event starts
    # with one indexed query instead of reading every definition.
    trigger_type = models.CharField(max_length=40, blank=True)
    trigger_event = models.CharField(max_length=100, blank=True)
    webhook_secret = models.CharField(
        max_length=64, default=_webhook_secret, help_text="Signs inbound webhook calls (HMAC-SHA256)."
    )
    template = models.ForeignKey(WorkflowTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["org", "slug"], name="workflow_unique_slug")]
        indexes = [models.Index(fields=["org", "status", "trigger_type", "trigger_event"], name="workflow_triggers")]

    def __str__(self) -> str:
        return self.name


@history_tracked()
class WorkflowVersion(TenantModel):
    """A published definition, frozen: instances pin the version they started on."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    definition = models.JSONField()
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    published_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["workflow", "-number"]
        constraints = [models.UniqueConstraint(fields=["workflow", "number"], name="workflowversion_unique_number")]

    def __str__(self) -> str:
        return f"{self.workflow} v{self.number}"


class InstanceStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    WAITING = "waiting", "Waiting"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_STATUSES = (InstanceStatus.PENDING, InstanceStatus.RUNNING, InstanceStatus.WAITING, InstanceStatus.PAUSED)
RUNNABLE_STATUSES = (InstanceStatus.PENDING, InstanceStatus.WAITING)


class WorkflowInstance(TenantModel):
    """One contact's run of one workflow version.

    ``tokens`` are the run's positions (one, or one per parallel branch), each with its step,
    the time it entered it and what it waits for; ``wake_at`` is the earliest time any of them
    needs the engine, which claims due rows with ``FOR UPDATE SKIP LOCKED``.
    """

    class Result(models.TextChoices):
        NONE = "", "—"
        COMPLETED = "completed", "Completed"
        GOAL_REACHED = "goal_reached", "Goal reached"
        EXITED = "exited", "Exit rule held"
        STOPPED = "stopped", "Stopped by a stop step"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    Status = InstanceStatus

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="instances")
    version = models.ForeignKey(WorkflowVersion, on_delete=models.PROTECT, related_name="instances")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="workflow_instances")
    status = models.CharField(max_length=10, choices=InstanceStatus.choices, default=InstanceStatus.PENDING)
    current_step = models.CharField(max_length=100, blank=True)
    wake_at = models.DateTimeField(null=True, blank=True)
    waits_for_event = models.BooleanField(default=False, help_text="A token waits for an event or a goal.")
    tokens = models.JSONField(default=list)
    context = models.JSONField(default=dict, help_text='{"vars": …, "steps": {id: {"result": …}}}')
    visits = models.JSONField(default=dict, help_text="Times each step was entered (its idempotency keys).")
    trigger_type = models.CharField(max_length=40)
    trigger_key = models.CharField(max_length=200, help_text="Dedupes enrolments: one per workflow, contact and key.")
    trigger_data = models.JSONField(default=dict, blank=True)
    triggered_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    result = models.CharField(max_length=20, choices=Result.choices, blank=True)
    error = models.TextField(blank=True)
    paused_status = models.CharField(max_length=10, blank=True, help_text="The status a paused run goes back to.")
    # Set when a publish meant to move this run but a running batch held its row: the engine
    # moves it when it next claims it, before running any step.
    migrate_to = models.JSONField(
        null=True, blank=True, help_text='A move waiting for the next claim: {"version": id, "map": {old: new}}.'
    )
    moves = models.JSONField(
        default=list, blank=True, help_text="Moves to newer versions: from, to, the step map, by whom, when."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-triggered_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workflow", "contact", "trigger_key"], name="workflowinstance_one_per_trigger"
            )
        ]
        indexes = [
            models.Index(
                fields=["wake_at"],
                name="workflowinstance_due",
                condition=Q(status__in=["pending", "waiting"], wake_at__isnull=False),
            ),
            models.Index(
                fields=["contact", "workflow"],
                name="workflowinstance_active",
                condition=Q(status__in=["pending", "running", "waiting", "paused"]),
            ),
            models.Index(fields=["org", "workflow", "status", "current_step"], name="workflowinstance_steps"),
            # The console: the runs list's order, the home's runs enrolled this week, and the
            # live status's open runs per step read from the index alone.
            models.Index(fields=["org", "-triggered_at", "-id"], include=["workflow"], name="workflowinstance_recent"),
            models.Index(
                fields=["workflow", "current_step"],
                include=["wake_at", "org"],
                name="workflowinstance_open_steps",
                condition=Q(status__in=["pending", "running", "waiting", "paused"]),
            ),
            # Data retention: an org's finished runs that ended before a cutoff.
            models.Index(
                fields=["org", "finished_at"],
                name="workflowinstance_finished",
                condition=Q(status__in=["completed", "failed", "cancelled"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.workflow} for contact #{self.contact_id} ({self.status})"

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


class WorkflowStepRun(TenantModel):
    """One attempt at one visit of one step. Written when the step leaves (or fails), in bulk."""

    class Status(models.TextChoices):
        COMPLETED = "completed", "Completed"
        RETRYING = "retrying", "Failed, will retry"
        FAILED = "failed", "Failed"

    instance = models.ForeignKey(WorkflowInstance, on_delete=models.CASCADE, related_name="step_runs")
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="+")
    step_id = models.CharField(max_length=100)
    step_type = models.CharField(max_length=20)
    visit = models.PositiveIntegerField(default=1)
    attempt = models.PositiveIntegerField(default=1)
    idempotency_key = models.CharField(max_length=200, help_text="instance:step:visit")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.COMPLETED)
    started_at = models.DateTimeField()
    completed_at = models.DateTimeField()
    duration_ms = models.PositiveBigIntegerField(default=0)
    input = models.JSONField(default=dict, blank=True)
    output = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    next_step = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["started_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key", "attempt"], name="workflowsteprun_unique_attempt")
        ]
        indexes = [
            # Covering: a workflow page's per-step counts and median durations read the index alone.
            models.Index(
                fields=["workflow", "step_id", "status"],
                include=["duration_ms", "org", "id"],
                name="workflowsteprun_step",
            ),
            models.Index(fields=["instance", "started_at"], name="workflowsteprun_instance"),
            # The console: the step runs list's order, and the home's failures of the last 7 days.
            models.Index(fields=["org", "started_at", "id"], name="workflowsteprun_org_started"),
            models.Index(fields=["org", "completed_at"], name="workflowsteprun_failed", condition=Q(status="failed")),
        ]

    def __str__(self) -> str:
        return f"{self.step_id} (visit {self.visit}, attempt {self.attempt}): {self.status}"


class Delivery(TenantModel):
    """A side effect that leaves the system (an HTTP call), recorded under the step's
    idempotency key before it is made (docs/workflows.md): queued → sending → sent | failed."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    instance = models.ForeignKey(WorkflowInstance, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    step_id = models.CharField(max_length=100, blank=True)
    idempotency_key = models.CharField(max_length=200, unique=True)
    action = models.CharField(max_length=60)
    request = models.JSONField(help_text="What the action's deliver() gets.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=5)
    lease_until = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    response = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"], name="delivery_due", condition=Q(status__in=["queued", "sending"])
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.idempotency_key} ({self.status})"


class Approval(TenantModel):
    """A person's decision an instance waits for at an approval step."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Timed out"

    instance = models.ForeignKey(WorkflowInstance, on_delete=models.CASCADE, related_name="approvals")
    step_id = models.CharField(max_length=100)
    idempotency_key = models.CharField(max_length=200, unique=True)
    approvers = models.JSONField(default=dict, help_text='{"role": "marketer"} or {"users": [ids]}')
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    due_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["due_at"]
        indexes = [models.Index(fields=["org", "status", "due_at"], name="approval_queue")]

    def __str__(self) -> str:
        return f"Approval at {self.step_id} for {self.instance_id} ({self.status})"


class AutomationExecution(TenantModel):
    """One finished run, for audit and analytics (``v_automation_performance``)."""

    class Status(models.TextChoices):
        SUCCESS = "success", "Success"
        FAILURE = "failure", "Failure"
        CANCELLED = "cancelled", "Cancelled"

    workflow = models.ForeignKey(Workflow, null=True, blank=True, on_delete=models.CASCADE, related_name="executions")
    instance = models.OneToOneField(
        WorkflowInstance, null=True, blank=True, on_delete=models.SET_NULL, related_name="execution"
    )
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices)
    result = models.CharField(max_length=20, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    duration_ms = models.PositiveBigIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-finished_at"]
        indexes = [models.Index(fields=["org", "workflow", "finished_at"], name="automationexecution_time")]

    def __str__(self) -> str:
        return f"{self.workflow} {self.status} at {self.finished_at:%Y-%m-%d %H:%M}"


@history_tracked(exclude=("last_run_at", "last_enrolled"))
class ScheduledJob(TenantModel):
    """Enrols a segment's members in a workflow once, every interval, or on a cron schedule.

    Backed by a django-celery-beat ``PeriodicTask`` kept in step on save, so an operator sees
    and edits the schedule in one place (Periodic tasks shows it too).
    """

    class Kind(models.TextChoices):
        ONCE = "once", "Once"
        RECURRING = "recurring", "Every interval"
        CRON = "cron", "Cron expression"

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="scheduled_jobs")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    run_at = models.DateTimeField(null=True, blank=True, help_text="For once.")
    every_seconds = models.PositiveIntegerField(null=True, blank=True, help_text="For every interval.")
    cron = models.CharField(max_length=100, blank=True, help_text='For cron, e.g. "0 9 * * 1" (Mondays 09:00).')
    time_zone = models.CharField(max_length=64, default="UTC")
    segment = models.ForeignKey(
        "marketing.Segment",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Whose members are enrolled at each run.",
    )
    enabled = models.BooleanField(default=True)
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_enrolled = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
