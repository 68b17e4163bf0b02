"""The sales queue in the console: handoffs (each rep sees their own, managers see all) and the
org's handoff policy.

A rep's list and pages are limited to the handoffs they hold django-guardian's ``view_handoff``
on (granted when the handoff was assigned to them); a manager (org admin, or granted
``scoring.view_all_handoffs``) sees every one. Another rep's handoff answers 404, as a missing
one does. Accept, reject (with a reason) and convert are CSRF-protected POSTs, on the handoff's
page and as list actions, and each goes through the services in ``scoring.handoffs``, which check
the permission again.
"""

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_POST
from unfold.widgets import UnfoldAdminTextareaWidget

from marketing.admin import TenantAdmin, UserFilter
from marketing.models import Event, User
from scoring.handoffs import (
    SlaState,
    eligible_reps,
    handoff_accept,
    handoff_assign,
    handoff_can_act,
    handoff_convert,
    handoff_is_manager,
    handoff_reject,
    handoff_sla_state,
    handoffs_visible_to,
    sla_state_q,
)
from scoring.models import Handoff, HandoffPolicy
from scoring.selectors import score_breakdown, scoring_model_get

RECENT_EVENTS = 20
SLA_COLOURS = {
    SlaState.ON_TIME: "#2e7d32",
    SlaState.DUE_SOON: "#ef6c00",
    SlaState.OVERDUE: "#c62828",
    SlaState.MET: "#607d8b",
    SlaState.MISSED: "#8d6e63",
}


class SlaStateFilter(admin.SimpleListFilter):
    title = "SLA state"
    parameter_name = "sla"

    def lookups(self, request, model_admin):
        return SlaState.CHOICES

    def queryset(self, request, queryset):
        if self.value() in dict(SlaState.CHOICES):
            return queryset.filter(sla_state_q(self.value(), now=timezone.now()))
        return queryset


class AssigneeFilter(UserFilter):
    """Assignee, among the org's reps."""

    title = "assignee"
    parameter_name = "assignee"
    none_label = "Unassigned"

    def users(self, request):
        return eligible_reps(org=request.org)


class RejectForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        max_length=2000,
        help_text="Why the contact goes back to nurture (the marketing team reads this).",
    )


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(queryset=None, label="Give to")

    def __init__(self, *args, org, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = eligible_reps(org=org)


class HandoffAdmin(TenantAdmin):
    list_display = ("contact_name", "score", "reason", "status", "assignee", "sla_badge", "sla_due_at", "created_at")
    list_display_links = ("contact_name",)  # a row opens the handoff (the contact is linked from there)
    list_filter = ("status", "reason", AssigneeFilter, SlaStateFilter)
    list_select_related = ("contact", "assignee")
    search_fields = ("contact__email", "contact__first_name", "contact__last_name")
    search_help_text = "Search by the contact's email or name."
    list_per_page = 50
    ordering = ("sla_due_at", "id")
    actions = ("accept_selected", "reject_selected", "convert_selected")
    change_form_template = "scoring/handoff_change_form.html"
    fields = (
        "contact_link",
        "status",
        "reason",
        "detail",
        "assignee",
        "score",
        "model",
        "sla_due_at",
        "sla_badge",
        "rejection_reason",
        "source_event",
        "created_at",
        "accepted_at",
        "closed_at",
    )
    readonly_fields = fields

    # Who sees what ---------------------------------------------------------------------------

    def get_queryset(self, request):
        return handoffs_visible_to(user=request.user, org=request.org, queryset=super().get_queryset(request))

    def has_add_permission(self, request):
        return False  # handoffs come from scoring, workflows, the sweep or the API

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # the page is read-only; the rep acts through accept / reject / convert

    # Columns ---------------------------------------------------------------------------------

    @admin.display(description="contact", ordering="contact__last_name")
    def contact_name(self, obj: Handoff) -> str:
        contact = obj.contact
        return f"{contact.first_name} {contact.last_name}".strip() or contact.email or f"#{contact.pk}"

    @admin.display(description="contact")
    def contact_link(self, obj: Handoff):
        url = reverse("admin:marketing_contact_change", args=[obj.contact_id])
        return format_html('<a href="{}">{}</a>', url, self.contact_name(obj))

    @admin.display(description="SLA")
    def sla_badge(self, obj: Handoff):
        state = handoff_sla_state(obj)
        label = dict(SlaState.CHOICES)[state]
        return format_html('<strong style="color: {}">{}</strong>', SLA_COLOURS[state], label)

    # The handoff's page ----------------------------------------------------------------------

    def get_urls(self):
        def view(name, fn):
            wrapped = self.admin_site.admin_view(require_POST(fn))
            return path(f"<path:object_id>/{name}/", wrapped, name=f"scoring_handoff_{name}")

        return [
            view("accept", self.accept_view),
            view("reject", self.reject_view),
            view("convert", self.convert_view),
            view("assign", self.assign_view),
            *super().get_urls(),
        ]

    def _visible(self, request, object_id) -> Handoff:
        handoff = self.get_object(request, unquote(object_id))
        if handoff is None or not self.has_view_permission(request, handoff):
            raise Http404("No such handoff.")
        return handoff

    def change_view(self, request, object_id, form_url="", extra_context=None):
        handoff = self._visible(request, object_id)  # another rep's handoff: 404, not a redirect
        context = {**(extra_context or {}), **self._detail_context(request, handoff)}
        context.setdefault("title", f"Handoff: {self.contact_name(handoff)}")  # whose lead, not "View handoff"
        context.setdefault("subtitle", None)
        return super().change_view(request, object_id, form_url, extra_context=context)

    def _detail_context(self, request, handoff: Handoff) -> dict:
        contact = handoff.contact
        model = handoff.model or scoring_model_get(org=handoff.org)
        breakdown = None
        if model is not None:
            breakdown = score_breakdown(contact=contact, model=model)
        events = list(
            Event.objects.filter(org=handoff.org, contact=contact).order_by("-occurred_at", "-id")[:RECENT_EVENTS]
        )
        live = handoff.status in (Handoff.Status.OPEN, Handoff.Status.ACCEPTED)
        can_act = live and handoff_can_act(handoff=handoff, user=request.user)
        return {
            "handoff": handoff,
            "scoring_model": model,
            "breakdown": breakdown,
            "recent_events": events,
            "sla_state": dict(SlaState.CHOICES)[handoff_sla_state(handoff)],
            "can_accept": can_act and handoff.status == Handoff.Status.OPEN,
            "can_reject": can_act,
            "can_convert": can_act,
            "reject_form": RejectForm(),
            "assign_form": AssignForm(org=handoff.org) if live and self._manager(request) else None,
        }

    def _manager(self, request) -> bool:
        return handoff_is_manager(user=request.user, org=request.org)

    def _after(self, request, handoff: Handoff, service, done: str, **kwargs):
        try:
            service(handoff=handoff, user=request.user, **kwargs)  # PermissionDenied: a 403 page
        except ValidationError as exc:
            self.message_user(request, "; ".join(exc.messages), messages.ERROR)
        else:
            self.message_user(request, f"{done}: {handoff.contact}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:scoring_handoff_change", args=[handoff.pk]))

    def accept_view(self, request, object_id):
        return self._after(request, self._visible(request, object_id), handoff_accept, "Accepted")

    def convert_view(self, request, object_id):
        return self._after(request, self._visible(request, object_id), handoff_convert, "Marked converted")

    def reject_view(self, request, object_id):
        handoff = self._visible(request, object_id)
        form = RejectForm(request.POST)
        if not form.is_valid():
            self.message_user(request, "Say why the contact goes back to nurture.", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:scoring_handoff_change", args=[handoff.pk]))
        return self._after(request, handoff, handoff_reject, "Sent back to nurture", reason=form.cleaned_data["reason"])

    def assign_view(self, request, object_id):
        """A manager gives the handoff to another rep (the object permissions move with it)."""
        handoff = self._visible(request, object_id)
        form = AssignForm(request.POST, org=request.org)
        if not form.is_valid():
            self.message_user(request, "Choose a sales rep of this organisation.", messages.ERROR)
        else:
            try:
                handoff_assign(handoff=handoff, assignee=form.cleaned_data["assignee"], user=request.user)
            except ValidationError as exc:
                self.message_user(request, "; ".join(exc.messages), messages.ERROR)
            else:
                self.message_user(request, f"Given to {form.cleaned_data['assignee']}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:scoring_handoff_change", args=[handoff.pk]))

    # List actions ----------------------------------------------------------------------------

    def _each(self, request, queryset, service, done: str, **kwargs) -> None:
        ok, refused = 0, []
        for handoff in queryset.select_related("contact"):
            try:
                service(handoff=handoff, user=request.user, **kwargs)
            except (PermissionDenied, ValidationError) as exc:
                text = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
                refused.append(f"{handoff.contact}: {text}")
            else:
                ok += 1
        if ok:
            self.message_user(request, f"{done}: {ok} handoff(s).", messages.SUCCESS)
        for line in refused[:10]:
            self.message_user(request, line, messages.WARNING)

    @admin.action(description="Accept the selected handoffs", permissions=["view"])
    def accept_selected(self, request, queryset):
        self._each(request, queryset, handoff_accept, "Accepted")

    @admin.action(description="Mark the selected handoffs converted", permissions=["view"])
    def convert_selected(self, request, queryset):
        self._each(request, queryset, handoff_convert, "Marked converted")

    @admin.action(description="Reject the selected handoffs (back to nurture)…", permissions=["view"])
    def reject_selected(self, request, queryset):
        if "apply" in request.POST:
            form = RejectForm(request.POST)
            if form.is_valid():
                reason = form.cleaned_data["reason"]
                self._each(request, queryset, handoff_reject, "Sent back to nurture", reason=reason)
                return HttpResponseRedirect(request.get_full_path())
        else:
            form = RejectForm()
        context = {
            **self.admin_site.each_context(request),
            "title": "Reject the selected handoffs",
            "form": form,
            "queryset": queryset.select_related("contact"),
            "opts": self.model._meta,
            "action": "reject_selected",
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across") == "1",
        }
        return TemplateResponse(request, "scoring/handoff_reject.html", context)


class HandoffPolicyForm(forms.ModelForm):
    class Meta:
        model = HandoffPolicy
        fields = (
            "strategy",
            "reps",
            "territories",
            "skills",
            "skill_property",
            "sla_hours",
            "nurture_days",
            "notify_destination",
        )

    territories = forms.CharField(
        required=False,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 4, "spellcheck": "false", "placeholder": "DE: ana, ben"}),
        help_text="Territory strategy: one line per country, its two-letter code, a colon and the user names of "
        "its reps, e.g. “DE: ana, ben”. “*: carla” takes the countries no line names.",
    )
    skills = forms.CharField(
        required=False,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 4, "spellcheck": "false", "placeholder": "analytics: ana"}),
        help_text="Skill strategy: one line per value of the skill property, a colon and the user names of its "
        "reps, e.g. “analytics: ana, ben”.",
    )

    def __init__(self, *args, org=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.org = org
        if org is not None and "reps" in self.fields:
            self.fields["reps"].queryset = eligible_reps(org=org)
            self.fields["reps"].help_text = "Org members with role sales or admin; none: every sales member."
        for name in ("territories", "skills"):
            if name in self.fields and not self.is_bound:
                self.initial[name] = self._rep_lines(getattr(self.instance, name) or {})

    @staticmethod
    def _rep_lines(value: dict) -> str:
        """``{"DE": [3, 4]}`` as the box shows it: ``DE: ana, ben``."""
        if not isinstance(value, dict):
            return ""
        ids = {i for reps in value.values() if isinstance(reps, list) for i in reps}
        names = dict(User.objects.filter(pk__in=ids).values_list("pk", "username"))
        return "\n".join(
            f"{key}: {', '.join(names.get(i, str(i)) for i in reps)}"
            for key, reps in value.items()
            if isinstance(reps, list)
        )

    def _rep_map(self, name: str, key_label: str) -> dict:
        text = (self.cleaned_data.get(name) or "").strip()
        if not text.startswith("{"):
            return self._rep_map_from_lines(text, upper=name == "territories")
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise ValidationError(f"Not valid JSON ({exc.msg}): write one “key: user names” a line instead.") from exc
        if not isinstance(value, dict):
            raise ValidationError(f'An object of {key_label} → [user ids], e.g. {{"DE": [3, 4], "*": [5]}}.')
        allowed = set(eligible_reps(org=self.org).values_list("pk", flat=True)) if self.org else set()
        for key, ids in value.items():
            if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
                raise ValidationError(f"“{key}”: a list of user ids.")
            unknown = [i for i in ids if i not in allowed]
            if unknown:
                raise ValidationError(f"“{key}”: user(s) {unknown} are not sales reps or admins of this organisation.")
        return value

    def _rep_map_from_lines(self, text: str, *, upper: bool) -> dict:
        """``DE: ana, ben`` lines → ``{"DE": [ids]}``; each bad line and unknown name is named."""
        reps = {u.username.lower(): u.pk for u in eligible_reps(org=self.org)} if self.org else {}
        value, errors = {}, []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            key, colon, names = line.partition(":")
            key = key.strip().upper() if upper and key.strip() != "*" else key.strip()
            if not colon or not key:
                errors.append(f"Line {number}: write the key, a colon and user names, e.g. “DE: ana, ben”.")
                continue
            if key in value:
                errors.append(f"Line {number}: “{key}” has a line already.")
                continue
            ids = []
            for username in (n.strip() for n in names.split(",")):
                if not username:
                    continue
                if username.lower() not in reps:
                    errors.append(f"Line {number}: “{username}” is not a sales rep or admin of this organisation.")
                elif reps[username.lower()] not in ids:
                    ids.append(reps[username.lower()])
            value[key] = ids
        if errors:
            raise ValidationError(errors)
        return value

    def clean_territories(self):
        return self._rep_map("territories", "country codes")

    def clean_skills(self):
        return self._rep_map("skills", "values of the skill property")

    def clean_notify_destination(self):
        slug = self.cleaned_data.get("notify_destination", "")
        if slug and self.org is not None:
            from channels_app.destinations import destination_problems

            problems = destination_problems(org=self.org, slug=slug, channel="slack")
            if problems:
                raise ValidationError(problems[0].removeprefix("destination: "))
        return slug


class HandoffPolicyAdmin(TenantAdmin):
    """One per org; only managers change it."""

    form = HandoffPolicyForm
    list_display = ("__str__", "strategy", "sla_hours", "nurture_days", "notify_destination")
    filter_horizontal = ("reps",)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change, **kwargs)
        org = request.org

        class OrgPolicyForm(form_class):
            def __init__(self, *args, **kw):
                super().__init__(*args, org=org, **kw)

        return OrgPolicyForm

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "reps":
            kwargs["queryset"] = eligible_reps(org=request.org)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def _manager(self, request) -> bool:
        return handoff_is_manager(user=request.user, org=request.org)

    def has_add_permission(self, request):
        if not (self._manager(request) and super().has_add_permission(request)):
            return False
        # One policy per org. Asked only on the policy's own pages: every console page's sidebar
        # asks too, and a query there on every page is not worth an "add" link hidden a bit sooner.
        match = getattr(request, "resolver_match", None)
        own_page = match is not None and (match.url_name or "").startswith("scoring_handoffpolicy")
        return not (own_page and HandoffPolicy.objects.filter(org=request.org).exists())

    def has_change_permission(self, request, obj=None):
        return self._manager(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._manager(request) and super().has_delete_permission(request, obj)


admin.site.register(Handoff, HandoffAdmin)
admin.site.register(HandoffPolicy, HandoffPolicyAdmin)
