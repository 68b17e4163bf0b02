"""Console pages of the preference centre's topics: the topics (Compliance → Topics) and each
contact's joins and leaves (Compliance → Topic choices, read-only)."""

from django.contrib import admin

from compliance.models import SubscriptionType, TopicChoice
from marketing.admin import TenantAdmin


@admin.register(SubscriptionType)
class SubscriptionTypeAdmin(TenantAdmin):
    """Topics contacts may follow or leave in the preference centre (a newsletter, product news);
    a message template names its topic, and the send guard skips contacts who left it."""

    list_display = ("name", "purpose", "active", "description", "created_at")
    list_filter = ("purpose", "active")
    search_fields = ("name", "description")
    fields = ("name", "description", "purpose", "active")


@admin.register(TopicChoice)
class TopicChoiceAdmin(TenantAdmin):
    """Each contact's joins and leaves of a topic, newest first: appended by the preference
    centre, never edited (the newest choice is the state, the rest the proof)."""

    list_display = ("contact", "topic", "subscribed", "source", "recorded_at")
    list_filter = ("topic", "subscribed", "source")
    search_fields = ("contact__email",)
    list_select_related = ("contact", "topic")
    date_hierarchy = "recorded_at"
    fields = ("contact", "topic", "subscribed", "source", "recorded_at", "proof")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
