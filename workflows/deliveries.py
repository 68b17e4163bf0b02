"""The delivery protocol for side effects that leave the system (docs/workflows.md).

1. The engine records a ``Delivery`` (``queued``, unique on the step's idempotency key) in the
   transaction that runs the step; the run waits for it.
2. ``delivery_send`` moves it ``queued → sending`` with a lease by a conditional update,
   commits, and calls the action's ``deliver`` outside any transaction, passing the key (the
   HTTP actions send it as ``Idempotency-Key``).
3. Success: ``sent`` with the response. Transient failure: back to ``queued`` with exponential
   backoff and jitter. Permanent, or out of attempts: ``failed`` with the reason. Either final
   state wakes the run, which then takes ``next`` (with the response as the step's result) or
   ``on_error``.
4. A row still ``sending`` after its lease (the sender died) is sent again with the same key.

Row-level security (docs/tenancy.md, "Workers"): a task carries only the delivery's id, so its
org is looked up through the system alias, and the claim, the call and the outcome then go as
the app role in that org's context. The sweep resets and lists every org's rows as the system
role, inside its own transaction.
"""

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from marketing.database_roles import org_of, system_role
from marketing.retries import backoff
from marketing.tenancy import org_context
from workflows.actions import PermanentError, RetryableError, actions
from workflows.models import Delivery, InstanceStatus, WorkflowInstance

logger = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
LOST_AFTER = timedelta(seconds=30)


def delivery_send(*, delivery_id: int) -> str | None:
    """Sends one delivery if it is due and nobody else has it; returns its new status."""
    org = org_of(Delivery, delivery_id)  # the org is not known yet
    if org is None:
        return None
    with org_context(org):
        return _send(delivery_id)


def _send(delivery_id: int) -> str | None:
    """``delivery_send`` in the delivery's org context."""
    now = timezone.now()
    deliveries = Delivery.objects.all()
    claimed = deliveries.filter(pk=delivery_id, status=Delivery.Status.QUEUED, next_attempt_at__lte=now).update(
        status=Delivery.Status.SENDING, lease_until=now + LEASE, attempts=F("attempts") + 1
    )
    if not claimed:
        return None
    delivery = deliveries.get(pk=delivery_id)
    action = actions().get(delivery.action)
    try:
        if action is None:
            raise PermanentError(f"the action “{delivery.action}” is no longer installed")
        response = action.deliver(delivery.request, delivery.idempotency_key)
    except RetryableError as exc:
        if delivery.attempts < delivery.max_attempts:
            delay = backoff(10, delivery.attempts)
            deliveries.filter(pk=delivery_id, status=Delivery.Status.SENDING).update(
                status=Delivery.Status.QUEUED,
                lease_until=None,
                next_attempt_at=timezone.now() + delay,
                error=str(exc)[:5000],
            )
            logger.info("delivery will retry id=%s attempt=%s error=%s", delivery_id, delivery.attempts, exc)
            return Delivery.Status.QUEUED
        return _finish(delivery, Delivery.Status.FAILED, error=f"{exc} (after {delivery.attempts} attempts)")
    except PermanentError as exc:
        return _finish(delivery, Delivery.Status.FAILED, error=str(exc))
    except Exception as exc:  # an action's bug: treat as permanent, keep the trace in the log
        logger.exception("delivery crashed id=%s", delivery_id)
        return _finish(delivery, Delivery.Status.FAILED, error=f"{type(exc).__name__}: {exc}")
    return _finish(
        delivery, Delivery.Status.SENT, response=response if isinstance(response, dict) else {"result": response}
    )


def _finish(delivery: Delivery, status: str, *, response: dict | None = None, error: str = "") -> str:
    from marketing.celery import enqueue_on_commit
    from workflows.tasks import instances_run_due

    now = timezone.now()
    with transaction.atomic():
        Delivery.objects.filter(pk=delivery.pk).update(
            status=status,
            lease_until=None,
            response=response or {},
            error=error[:5000],
            sent_at=now if status == Delivery.Status.SENT else None,
        )
        if delivery.instance_id:
            woken = WorkflowInstance.objects.filter(pk=delivery.instance_id, status=InstanceStatus.WAITING).update(
                wake_at=now
            )
            if woken:
                enqueue_on_commit(instances_run_due)
    return status


def deliveries_due(*, now=None, limit: int = 500) -> list[int]:
    """Deliveries to send again: leases expired (a dead sender) and queued ones whose task
    was lost or whose backoff is over. Every org's: as the system role (a worker acting as app)."""
    now = now or timezone.now()
    deliveries = Delivery.objects.with_scopes_disabled()
    with transaction.atomic(), system_role():
        expired = list(
            deliveries.filter(status=Delivery.Status.SENDING, lease_until__lt=now).values_list("pk", flat=True)[:limit]
        )
        deliveries.filter(pk__in=expired, status=Delivery.Status.SENDING).update(
            status=Delivery.Status.QUEUED, lease_until=None, next_attempt_at=now
        )
        lost = deliveries.filter(status=Delivery.Status.QUEUED, next_attempt_at__lte=now - LOST_AFTER).exclude(
            pk__in=expired
        )
        return expired + list(lost.order_by("next_attempt_at").values_list("pk", flat=True)[: limit - len(expired)])
