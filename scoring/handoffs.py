"""The sales handoff queue (a first form: assignment strategies, SLA policy and notifications
land with the handoff work).

``handoff_create`` is what scoring rules, thresholds and workflow steps call."""

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from scoring.models import Handoff, HandoffPolicy


def handoff_create(
    *, org, contact, reason: str, model=None, score: int | None = None, source_event=None, detail: str = "", now=None
) -> Handoff | None:
    """Hands ``contact`` to sales, unless an open or accepted handoff exists (then None)."""
    now = now or timezone.now()
    policy = HandoffPolicy.objects.filter(org=org).first()
    sla = timedelta(hours=policy.sla_hours if policy else 24)
    try:
        with transaction.atomic():
            return Handoff.objects.create(
                org=org,
                contact=contact,
                model=model,
                reason=reason,
                detail=detail[:300],
                score=contact.score if score is None else score,
                sla_due_at=now + sla,
                source_event=source_event,
                created_at=now,
            )
    except IntegrityError:  # one open handoff per contact
        return None
