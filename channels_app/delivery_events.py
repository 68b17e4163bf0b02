"""What providers report after a send: delivered, bounced, complained, failed — from anymail's
tracking signal (ESP webhooks), Twilio's status callbacks and SMTP replies.

``message_delivery_event`` is the one way in. It moves the message forward only (a late
"delivered" never undoes an open; a bounce or a complaint ends it), appends the report to the
status history, and for what makes an address unusable, suppresses it on the channel: a hard
bounce, an undeliverable number (``Suppression.Reason.HARD_BOUNCE``) or a spam complaint
(``COMPLAINT``; the email_marketing consent is withdrawn too, as a complaint is the strongest
unsubscribe there is). A bounce and a complaint are also recorded as ``message_bounced`` /
``message_complained`` events, so scoring and segments can see them.

A report for a row still ``sending`` (a fast callback that beat the sender's own ``sent``) is
appended to the history only: the sender's conditional update must still find ``sending``.
"""

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from channels_app.models import Message, MessageStatus, Suppression
from marketing.tenancy import org_context

logger = logging.getLogger(__name__)

S = MessageStatus
# The statuses each report may replace: a message only moves forward.
ADVANCES = {
    S.DELIVERED: {S.SENT},
    S.OPENED: {S.SENT, S.DELIVERED},
    S.CLICKED: {S.SENT, S.DELIVERED, S.OPENED},
    S.BOUNCED: {S.SENT, S.DELIVERED},
    S.COMPLAINED: {S.SENT, S.DELIVERED, S.OPENED, S.CLICKED, S.BOUNCED},
    S.FAILED: {S.SENT, S.DELIVERED},  # the provider accepted it, then could not deliver it
}
EVENT_TYPES = {S.BOUNCED: "message_bounced", S.COMPLAINED: "message_complained"}


def message_delivery_event(
    message: Message,
    status: str,
    *,
    reason: str = "",
    hard_bounce: bool = False,
    at: datetime | None = None,
    provider_event_id: str = "",
    machine: bool = False,
) -> bool:
    """Records a provider's report on ``message``; True when it changed the message's status.

    ``status`` is one of ``ADVANCES``' keys. ``hard_bounce`` (with ``bounced`` or ``failed``)
    suppresses the address; ``complained`` always does. ``provider_event_id`` makes a report the
    provider sends twice count once (it is kept in the history entry and checked there).
    ``machine``: an open or click the provider saw from a machine (a scanner, Apple's privacy
    proxy): kept in the history with ``"machine": true``, it moves nothing."""
    from channels_app.tracking import _event_record, _message_properties

    if status not in ADVANCES:
        raise ValueError(f"not a delivery status: {status}")
    if machine and status not in (S.OPENED, S.CLICKED):
        raise ValueError(f"only an open or a click can be a machine's, not {status}")
    at = at or timezone.now()
    entry = {"status": status, "at": at.isoformat(), "reason": reason[:1000]}
    if provider_event_id:
        entry["event"] = provider_event_id
    if machine:
        entry["machine"] = True
    with org_context(message.org), transaction.atomic():
        row = Message.objects.select_for_update(of=("self",)).select_related("org", "contact").get(pk=message.pk)
        if provider_event_id and any(item.get("event") == provider_event_id for item in row.status_history):
            return False
        row.status_history = [*row.status_history, entry]
        fields = ["status_history"]
        changed = row.status in ADVANCES[status] and not machine
        if changed:
            row.status = status
            fields.append("status")
            if status in (S.BOUNCED, S.FAILED, S.COMPLAINED) and reason:
                row.error = reason[:5000]
                fields.append("error")
        row.save(update_fields=fields)
        suppress = Suppression.Reason.COMPLAINT if status == S.COMPLAINED else None
        if hard_bounce and status in (S.BOUNCED, S.FAILED):
            suppress = Suppression.Reason.HARD_BOUNCE
        if suppress and row.to:
            Suppression.objects.get_or_create(
                org=row.org,
                channel=row.channel,
                address=Suppression.address_of(row.to),
                defaults={"reason": suppress, "detail": reason[:1000]},
            )
        if status == S.COMPLAINED and row.contact_id and row.channel == "email":
            from compliance.services import consent_record

            consent_record(
                org=row.org,
                contact=row.contact,
                purpose="email_marketing",
                granted=False,
                source="complaint",
                proof={"message": row.pk, "reason": reason[:500]},
                at=at,
            )
        if status in EVENT_TYPES and row.contact_id:
            _event_record(
                row,
                type=EVENT_TYPES[status],
                key=f"{status}:{row.pk}",
                properties={**_message_properties(row), "reason": reason[:500], "hard_bounce": hard_bounce},
            )
    logger.info("message %s id=%s changed=%s reason=%s", status, message.pk, changed, reason)
    return changed
