"""Console pages of the compliance app: consent records (appended, never edited), the consent
regimes of the org, and consents awaiting confirmation."""

from django import forms
from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import reverse
from unfold.widgets import UnfoldAdminTextareaWidget

from compliance.consent_proof import proof_html
from compliance.models import ConsentRecord, ConsentRegime, PendingConsent, Purpose, Regime
from compliance.services import consent_regimes_set, consent_states_sync
from marketing.admin import ReadOnlyAdmin, TenantAdmin


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
        consent_states_sync(org=obj.org, contact_ids=[obj.contact_id] if obj.contact_id else [])


class ConsentRegimeForm(forms.ModelForm):
    """Each purpose's regime as radio buttons, and one box that makes every purpose opt-in."""

    gdpr_everything = forms.BooleanField(
        required=False,
        label="GDPR: opt-in for everything",
        help_text="Tick to make every purpose opt-in at once: nothing is sent, tracked, scored or shared for a "
        "person until they agree to that purpose (what the GDPR asks of consent in the EU and the UK). "
        "The choices below are then ignored.",
    )

    class Meta:
        model = ConsentRegime
        fields = (*Purpose.values, "double_opt_in")
        widgets = {purpose: forms.RadioSelect for purpose in Purpose.values}


@admin.register(ConsentRegime)
class ConsentRegimeAdmin(TenantAdmin):
    """One page per organisation: how each purpose is governed. The list opens the org's page
    (made with the defaults on first visit); there is nothing to add or delete."""

    form = ConsentRegimeForm
    fieldsets = (
        ("One click", {"fields": ("gdpr_everything",)}),
        (
            "Each purpose",
            {
                "fields": tuple(Purpose.values),
                "description": "Opt-in: a purpose is acted on only for people who agreed to it. Opt-out: it is "
                "acted on until the person says no (withdraws it, unsubscribes, or their browser sends Global "
                "Privacy Control, which opts out of tracking and of sale or sharing).",
            },
        ),
        ("Forms", {"fields": ("double_opt_in",)}),
    )

    def changelist_view(self, request, extra_context=None):
        row, _ = ConsentRegime.objects.get_or_create(org=request.org)
        return HttpResponseRedirect(reverse("admin:compliance_consentregime_change", args=[row.pk]))

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if form.cleaned_data.get("gdpr_everything"):
            for purpose in Purpose.values:
                setattr(obj, purpose, Regime.OPT_IN)
        regimes = {purpose: getattr(obj, purpose) for purpose in Purpose.values}
        consent_regimes_set(org=obj.org, regimes=regimes, double_opt_in=obj.double_opt_in)

    def response_change(self, request, obj):
        self.message_user(request, "Consent regimes saved.")
        return HttpResponseRedirect(request.path)


@admin.register(PendingConsent)
class PendingConsentAdmin(ReadOnlyAdmin):
    """Consent ticked on forms, awaiting (or given) the person's confirmation by email."""

    list_display = ("contact", "purposes", "created_at", "sent_at", "sends", "confirmed_at")
    list_filter = (("confirmed_at", admin.EmptyFieldListFilter),)
    list_select_related = ("contact",)
    search_fields = ("contact__email",)
    exclude = ("org", "event")
