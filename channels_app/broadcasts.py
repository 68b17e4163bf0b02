"""Broadcasts: one template to every current member of a segment (a newsletter, an
announcement), through the outbox and its guards like any other message.

Each member's message is keyed ``broadcast:<key>:<contact id>``, so running the same broadcast
again (after a crash, or by mistake) queues nothing twice: only members who joined since get
it. The default key is the template's slug and live version number, so publishing a new version
makes a new broadcast. Messages are written ``messages_enqueue``-style, 500 a transaction, and
their sends are queued as each transaction commits; consent, suppression, frequency caps and
quiet hours are checked at send time, per message.
"""

from collections.abc import Callable
from typing import NamedTuple

from django.db import transaction

from channels_app.models import Message, MessageTemplate
from channels_app.outbox import Recipient, UnpublishedTemplateError, messages_enqueue
from marketing.models import Contact, Organization, Segment

CHUNK = 500


class BroadcastResult(NamedTuple):
    key: str
    members: int
    queued: int  # new messages
    existing: int  # members who already had this broadcast's message


def broadcast_key(template: MessageTemplate) -> str:
    """The default key: the template's slug and live version (``newsletter-v3``)."""
    if template.live_version is None:
        raise UnpublishedTemplateError(f"template: “{template.slug}” has no published version.")
    return f"{template.slug}-v{template.live_version.number}"


def broadcast_enqueue(
    *,
    org: Organization,
    template: MessageTemplate,
    segment: Segment,
    key: str = "",
    on_chunk: Callable[[int, int], None] | None = None,
) -> BroadcastResult:
    """Queues ``template`` for every current member of ``segment`` (call inside
    ``org_context(org)``). ``on_chunk(done, total)`` reports progress. Raises
    ``UnpublishedTemplateError`` and ``rendering.RenderError`` (nothing of that chunk is kept)."""
    key = key or broadcast_key(template)
    members = Contact.objects.filter(
        org=org, segment_memberships__segment=segment, segment_memberships__exited_at__isnull=True
    ).distinct()
    total = members.count()
    done = queued = 0
    last = 0
    while True:
        chunk = list(members.filter(pk__gt=last).order_by("pk")[:CHUNK])
        if not chunk:
            break
        last = chunk[-1].pk
        recipients = [Recipient(contact, f"broadcast:{key}:{contact.pk}") for contact in chunk]
        keys = [r.idempotency_key for r in recipients]
        with transaction.atomic():
            already = Message.objects.filter(org=org, idempotency_key__in=keys).count()
            messages_enqueue(org=org, template=template, recipients=recipients)
        queued += len(chunk) - already
        done += len(chunk)
        if on_chunk:
            on_chunk(done, total)
    return BroadcastResult(key=key, members=done, queued=queued, existing=done - queued)
