"""Messages on a contact's timeline (``marketing.timeline``): what was sent, and what became of it."""

from channels_app.models import Message
from marketing.timeline import TimelineEntry, TimelineSource, timeline_source


@timeline_source
class MessageEntries(TimelineSource):
    kind = "message"

    def entries(self, contact, limit):
        messages = (
            Message.objects.filter(org_id=contact.org_id, contact=contact)
            .select_related("template_version__template")
            .order_by("-created_at", "-id")[:limit]
        )
        return [
            TimelineEntry(
                at=m.created_at,
                kind=self.kind,
                title=f"{m.get_channel_display()}: {m.content.get('subject') or m.content.get('title') or m.to}",
                detail=f"{m.get_status_display()}"
                + (
                    f" — {m.status_history[-1].get('reason')}"
                    if m.status_history and m.status_history[-1].get("reason")
                    else ""
                )
                + (
                    f" (template {m.template_version.template.slug}, variant {m.variant})" if m.template_version else ""
                ),
            )
            for m in messages
        ]

    def count(self, contact):
        return Message.objects.filter(org_id=contact.org_id, contact=contact).count()
