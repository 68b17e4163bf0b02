"""Console pages of the compliance app: consent records, which are appended and never edited."""

from django import forms
from django.contrib import admin
from unfold.widgets import UnfoldAdminTextareaWidget

from compliance.consent_proof import proof_html
from compliance.models import ConsentRecord
from marketing.admin import TenantAdmin


class ConsentRecordAddForm(forms.ModelForm):
    """A record taken by hand: what was said and how, in a sentence, instead of a JSON proof."""

    note = forms.CharField(
        required=False,
        max_length=500,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 2}),
        help_text="How you got it, e.g. “Said yes on the phone on 3 December, call with Ana”. "
        "It is kept as the proof, with your name.",
    )

    class Meta:
        model = ConsentRecord
        # The contact's picker is the admin's (an autocomplete, org-scoped), added from the fieldsets.
        fields = ("purpose", "granted", "source", "lawful_basis", "recorded_at")


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
    form = ConsentRecordAddForm
    exclude = ("org", "event")

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            fields = ("contact", "purpose", "granted", "source", "lawful_basis", "note", "recorded_at")
            return ((None, {"fields": fields}),)
        fields = ("contact", "purpose", "granted", "source", "lawful_basis", "recorded_at", "proof_readable")
        return (
            (None, {"fields": fields}),
            ("Advanced: the proof as stored", {"fields": ("proof",), "classes": ("collapse",)}),
        )

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("contact", "purpose", "granted", "source", "lawful_basis", "recorded_at", "proof_readable", "proof")

    @admin.display(description="Proof")
    def proof_readable(self, obj: ConsentRecord) -> str:
        return proof_html(source=obj.source, granted=obj.granted, proof=obj.proof)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if not obj.source:
            obj.source = "console"
        note = form.cleaned_data.get("note", "").strip()
        obj.proof = {
            **(obj.proof or {}),
            **({"note": note} if note else {}),
            "recorded_by": request.user.get_username(),
        }
        super().save_model(request, obj, form, change)


from compliance import requests_admin  # noqa: F401, E402  the data-subject request queue's pages


from compliance import retention_admin  # noqa: F401, E402  the Data retention page
