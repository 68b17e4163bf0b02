"""Console pages of the compliance app: consent records, which are appended and never edited."""

from django.contrib import admin

from compliance.models import ConsentRecord
from marketing.admin import TenantAdmin


@admin.register(ConsentRecord)
class ConsentRecordAdmin(TenantAdmin):
    """The consent history. Adding a record (a grant or a withdrawal taken by phone, say) is
    allowed; changing or deleting one is not: the history is the proof."""

    list_display = ("contact", "purpose", "granted", "source", "lawful_basis", "recorded_at")
    list_filter = ("purpose", "granted", "source", "lawful_basis")
    search_fields = ("contact__email",)
    list_select_related = ("contact",)
    autocomplete_fields = ("contact",)
    date_hierarchy = "recorded_at"
    fields = ("contact", "purpose", "granted", "source", "lawful_basis", "proof", "recorded_at")
    exclude = ("org", "event")

    def get_readonly_fields(self, request, obj=None):
        return self.fields if obj is not None else ()

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if not obj.source:
            obj.source = "console"
        obj.proof = {**(obj.proof or {}), "recorded_by": request.user.get_username()}
        super().save_model(request, obj, form, change)
