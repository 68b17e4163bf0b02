"""The outbox's share of data retention (``marketing.retention``): whole messages, and the
rendered bodies of messages kept. ``marketing.retention`` finds this module in every installed app."""

from channels_app.models import Message, MessageStatus
from marketing.retention import RetentionTarget, retention_target_register

# Still to be sent (or being sent): never purged, whatever their age.
UNSENT = (MessageStatus.QUEUED, MessageStatus.HELD, MessageStatus.SENDING)


class ExpiredMessages(RetentionTarget):
    """Messages made before the cutoff that left the outbox (sent, delivered, bounced, failed…)."""

    kind, label, model = "messages", "messages", Message

    def expired(self, *, org, before):
        return Message.objects.filter(org=org, created_at__lt=before).exclude(status__in=UNSENT)


class ExpiredMessageBodies(RetentionTarget):
    """The rendered content of messages made before the cutoff that left the outbox; the row
    stays (statistics, the idempotency key), its ``content`` becomes ``{}``."""

    kind, label, model = "message_bodies", "message bodies", Message

    def expired(self, *, org, before):
        return Message.objects.filter(org=org, created_at__lt=before).exclude(status__in=UNSENT).exclude(content={})

    def purge(self, *, ids):
        return Message._base_manager.filter(pk__any_of=ids).update(content={})


for _target in (ExpiredMessages(), ExpiredMessageBodies()):
    retention_target_register(_target)
