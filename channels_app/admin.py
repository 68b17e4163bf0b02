"""Console pages of the channels app: the outbox, the suppression list (templates: see below)."""

from django.contrib import admin
from django.utils.html import format_html_join

from channels_app.models import Message, Suppression
from marketing.admin import TenantAdmin


@admin.register(Message)
class MessageAdmin(TenantAdmin):
    """The outbox: every message, with its status history; read-only (sending is the outbox's job)."""

    list_display = ("created_at", "channel", "to", "subject", "status", "purpose", "workflow", "step_id", "attempts")
    list_filter = ("status", "channel", "purpose", "workflow")
    search_fields = ("to", "contact__email", "idempotency_key", "provider_message_id")
    list_select_related = ("workflow",)
    date_hierarchy = "created_at"
    readonly_fields = (
        "contact",
        "channel",
        "purpose",
        "to",
        "template_version",
        "variant",
        "workflow",
        "instance",
        "step_id",
        "idempotency_key",
        "status",
        "history",
        "provider",
        "provider_message_id",
        "error",
        "attempts",
        "next_attempt_at",
        "created_at",
        "sent_at",
        "content",
    )
    fields = readonly_fields

    @admin.display(description="subject")
    def subject(self, obj: Message) -> str:
        return obj.content.get("subject") or obj.content.get("title") or ""

    @admin.display(description="status history")
    def history(self, obj: Message) -> str:
        return format_html_join(
            "\n",
            "<div>{} — {} {}</div>",
            ((h.get("at"), h.get("status"), h.get("reason", "")) for h in obj.status_history),
        )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Suppression)
class SuppressionAdmin(TenantAdmin):
    """Addresses nothing is sent to on a channel; add one by hand, or remove one to send again."""

    list_display = ("address", "channel", "reason", "created_at")
    list_filter = ("channel", "reason")
    search_fields = ("address",)
    fields = ("channel", "address", "reason", "detail")

    def get_readonly_fields(self, request, obj=None):
        return self.fields if obj is not None else ()

    def save_model(self, request, obj, form, change):
        # Stored as the guards compare them: emails lower-cased, everything stripped.
        obj.address = obj.address.strip().lower() if obj.channel == "email" else obj.address.strip()
        super().save_model(request, obj, form, change)
