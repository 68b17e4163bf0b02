"""The workflow tables' share of data retention (``marketing.retention``): step runs, finished
runs, and the logs (records of finished runs, outbound calls). ``marketing.retention`` finds
this module in every installed app."""

from django.db.models import Exists, OuterRef

from marketing.retention import RetentionTarget, retention_target_register
from workflows.models import (
    ACTIVE_STATUSES,
    AutomationExecution,
    Delivery,
    InstanceStatus,
    WorkflowInstance,
    WorkflowStepRun,
)

FINISHED = (InstanceStatus.COMPLETED, InstanceStatus.FAILED, InstanceStatus.CANCELLED)


class ExpiredStepRuns(RetentionTarget):
    """Step runs that ended before the cutoff, of runs no longer going."""

    kind, label, model = "step_runs", "step runs", WorkflowStepRun

    def expired(self, *, org, before):
        # started_at too, so the (org, started_at) index narrows the scan; a step never ends
        # before it starts.
        return WorkflowStepRun.objects.filter(org=org, started_at__lt=before, completed_at__lt=before).exclude(
            instance__status__in=ACTIVE_STATUSES
        )


class ExpiredInstances(RetentionTarget):
    """Finished runs that ended before the cutoff, except each contact's newest run of each
    workflow: the re-enrolment rule "never" lets a contact in only if they have no run at all."""

    kind, label, model = "instances", "runs", WorkflowInstance

    def expired(self, *, org, before):
        newer = WorkflowInstance.objects.filter(
            workflow_id=OuterRef("workflow_id"), contact_id=OuterRef("contact_id"), pk__gt=OuterRef("pk")
        )
        return WorkflowInstance.objects.filter(
            Exists(newer),
            org=org,
            status__in=FINISHED,
            finished_at__lt=before,
        )


class ExpiredExecutions(RetentionTarget):
    """Records of finished runs (the automation figures), by when the run ended."""

    kind, label, model = "logs", "finished-run records", AutomationExecution

    def expired(self, *, org, before):
        return AutomationExecution.objects.filter(org=org, finished_at__lt=before)


class ExpiredDeliveries(RetentionTarget):
    """Outbound calls sent or given up, made before the cutoff, unless their run is still going
    (a step retried after a crash finds its call under the same key and does not call twice)."""

    kind, label, model = "logs", "outbound calls", Delivery

    def expired(self, *, org, before):
        return Delivery.objects.filter(
            org=org, status__in=[Delivery.Status.SENT, Delivery.Status.FAILED], created_at__lt=before
        ).exclude(instance__status__in=ACTIVE_STATUSES)


for _target in (ExpiredStepRuns(), ExpiredInstances(), ExpiredExecutions(), ExpiredDeliveries()):
    retention_target_register(_target)
