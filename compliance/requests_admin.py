"""The data-subject request queue in the console: requests by due date, the days left or overdue,
an add form for requests taken by phone or letter, and on a request's page the steps (send the
confirmation again, extend, complete, reject), each a CSRF-protected POST that goes through
``compliance.data_subject_requests``.

Acting on a request takes ``compliance.change_datasubjectrequest`` (the compliance and admin
roles); the other roles who may read the queue get a 403 from the steps and see no buttons.
"""

from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_POST
from unfold.widgets import UnfoldAdminTextareaWidget

from compliance.data_subject_requests import (
    request_complete,
    request_extend,
    request_receive,
    request_reject,
    request_verification_resend,
)
from compliance.models import DataSubjectRequest, Law, RequestKind, RequestSource, RequestStatus
from marketing.admin import TenantAdmin

OPEN_STATUSES = (RequestStatus.UNVERIFIED, RequestStatus.OPEN)


def days_left_text(request: DataSubjectRequest, now) -> tuple[str, str]:
    """What the queue says about a request's deadline, and how loudly (overdue, soon, ok, closed)."""
    if request.status not in OPEN_STATUSES:
        return request.get_status_display(), "closed"
    delta = request.due_at - now
    if delta.total_seconds() <= 0:
        days = -delta.days if delta.seconds == 0 else -delta.days - 1
        return (f"overdue by {days} day{'s' if days != 1 else ''}" if days else "overdue today"), "overdue"
    days = delta.days
    text = f"{days} day{'s' if days != 1 else ''} left" if days else "due today"
    return text, "soon" if days < 7 else "ok"


BADGE_STYLES = {
    "overdue": "color:#fff;background:#c62828;padding:1px 6px;border-radius:4px;font-weight:600",
    "soon": "color:#ef6c00;font-weight:600",
    "ok": "",
    "closed": "color:#607d8b",
}


class OverdueFilter(admin.SimpleListFilter):
    title = "deadline"
    parameter_name = "deadline"

    def lookups(self, request, model_admin):
        return (("overdue", "Overdue"), ("soon", "Due within 7 days"))

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "overdue":
            return queryset.filter(status__in=OPEN_STATUSES, due_at__lte=now)
        if self.value() == "soon":
            return queryset.filter(status__in=OPEN_STATUSES, due_at__gt=now, due_at__lte=now + timedelta(days=7))
        return queryset


class RequestAddForm(forms.ModelForm):
    """A request taken by phone, letter or in person: the person still confirms it by email."""

    class Meta:
        model = DataSubjectRequest
        fields = ("kind", "email", "law", "details")
        widgets = {"details": UnfoldAdminTextareaWidget(attrs={"rows": 3})}
        help_texts = {
            "email": "The person's address: they get a link to confirm the request there.",
            "details": "What they asked for, e.g. which details to correct.",
        }


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=UnfoldAdminTextareaWidget(attrs={"rows": 2}), max_length=2000)


class CompleteForm(forms.Form):
    outcome = forms.CharField(
        required=False,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 2}),
        max_length=2000,
        help_text="What was done. Required for a rectification (what you corrected); otherwise it is written for you.",
    )


@admin.register(DataSubjectRequest)
class DataSubjectRequestAdmin(TenantAdmin):
    list_display = ("title", "email", "status", "deadline", "due_at", "law_name", "source", "received_at")
    list_display_links = ("title",)
    list_filter = ("status", "kind", "law", OverdueFilter, "source")
    search_fields = ("email",)
    search_help_text = "Search by the person's email."
    ordering = ("due_at", "id")
    list_per_page = 50
    form = RequestAddForm
    change_form_template = "compliance/request_change_form.html"
    readonly_fields = (
        "kind",
        "status",
        "deadline",
        "email",
        "contact_link",
        "law",
        "source",
        "details",
        "received_at",
        "verified_at",
        "due_at",
        "extended",
        "extension_reason",
        "reminded_at",
        "overdue_alerted_at",
        "completed_at",
        "handled_by",
        "outcome",
    )

    def get_fields(self, request, obj=None):
        return ("kind", "email", "law", "details") if obj is None else self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def has_change_permission(self, request, obj=None):
        return False  # the page is read-only: the steps below act, through the services

    def has_delete_permission(self, request, obj=None):
        return False  # the request and its outcome are the record of having answered

    def may_act(self, request) -> bool:
        return request.user.has_perm("compliance.change_datasubjectrequest")

    # Columns ---------------------------------------------------------------------------------

    @admin.display(description="request", ordering="kind")
    def title(self, obj: DataSubjectRequest) -> str:
        return f"#{obj.pk} {RequestKind(obj.kind).name.replace('_', ' ').capitalize()}"

    @admin.display(description="days left", ordering="due_at")
    def deadline(self, obj: DataSubjectRequest):
        text, level = days_left_text(obj, timezone.now())
        return format_html('<span class="dsar-{}" style="{}">{}</span>', level, BADGE_STYLES[level], text)

    @admin.display(description="law", ordering="law")
    def law_name(self, obj: DataSubjectRequest) -> str:
        return Law(obj.law).name

    @admin.display(description="contact")
    def contact_link(self, obj: DataSubjectRequest):
        if obj.contact_id is None:
            return "None: no contact has this address"
        url = reverse("admin:marketing_contact_change", args=[obj.contact_id])
        return format_html('<a href="{}">{}</a>', url, obj.contact)

    # Adding ----------------------------------------------------------------------------------

    def save_model(self, request, obj, form, change):
        if change:
            raise PermissionDenied
        try:
            made = request_receive(
                org=request.org,
                kind=obj.kind,
                email=obj.email,
                law=obj.law,
                details=obj.details,
                source=RequestSource.CONSOLE,
                by=request.user,
            )
        except ValidationError as exc:  # the form checked the fields; this is the address's syntax
            raise PermissionDenied("; ".join(exc.messages)) from exc
        obj.__dict__.update({k: v for k, v in made.__dict__.items() if not k.startswith("_")})

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change, **kwargs)
        if obj is not None:
            return form_class

        class AddForm(form_class):
            def clean_email(self):
                from marketing.email_addresses import normalise_email

                try:
                    return normalise_email(self.cleaned_data["email"])
                except ValidationError as exc:
                    raise ValidationError(f"Check the address: {exc.messages[0]}") from None

        return AddForm

    def get_changeform_initial_data(self, request):
        return {"law": settings.DSAR_DEFAULT_LAW, **super().get_changeform_initial_data(request)}

    def response_add(self, request, obj, post_url_continue=None):
        self.message_user(request, f"Request #{obj.pk} recorded; {obj.email} was sent a link to confirm it.")
        return HttpResponseRedirect(reverse("admin:compliance_datasubjectrequest_change", args=[obj.pk]))

    # The request's page and its steps ---------------------------------------------------------

    def get_urls(self):
        def view(name, fn):
            wrapped = self.admin_site.admin_view(require_POST(fn))
            return path(f"<path:object_id>/{name}/", wrapped, name=f"compliance_datasubjectrequest_{name}")

        return [
            view("resend", self.resend_view),
            view("extend", self.extend_view),
            view("complete", self.complete_view),
            view("reject", self.reject_view),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        context = dict(extra_context or {})
        if obj is not None:
            live = obj.status in OPEN_STATUSES
            acts = live and self.may_act(request)
            context.update(
                {
                    "dsar": obj,
                    "can_resend": acts and obj.status == RequestStatus.UNVERIFIED,
                    "can_extend": acts and not obj.extended,
                    "can_complete": acts and obj.status == RequestStatus.OPEN,
                    "can_reject": acts,
                    "reason_form": ReasonForm(),
                    "complete_form": CompleteForm(auto_id="dsar-complete-%s"),
                    "rectification": obj.kind == RequestKind.RECTIFICATION,
                    "title": f"{obj.get_kind_display()}: {obj.email}",
                    "subtitle": None,
                }
            )
        return super().change_view(request, object_id, form_url, extra_context=context)

    def _acting_on(self, request, object_id) -> DataSubjectRequest:
        if not self.may_act(request):
            raise PermissionDenied
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404("No such request.")
        return obj

    def _step(self, request, obj, service, done: str, form=None, **kwargs):
        if form is not None and not form.is_valid():
            for field, errors in form.errors.items():
                self.message_user(request, f"{field.capitalize()}: {' '.join(errors)}", messages.ERROR)
        else:
            try:
                service(request=obj, by=request.user, **kwargs, **(form.cleaned_data if form else {}))
            except ValidationError as exc:
                text = "; ".join(
                    f"{field.capitalize()}: {' '.join(errs)}" if field != "__all__" else " ".join(errs)
                    for field, errs in getattr(exc, "message_dict", {"__all__": exc.messages}).items()
                )
                self.message_user(request, text, messages.ERROR)
            else:
                self.message_user(request, f"Request #{obj.pk}: {done}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:compliance_datasubjectrequest_change", args=[obj.pk]))

    def resend_view(self, request, object_id):
        obj = self._acting_on(request, object_id)
        return self._step(
            request, obj, request_verification_resend, f"the confirmation link was sent again to {obj.email}"
        )

    def extend_view(self, request, object_id):
        obj = self._acting_on(request, object_id)
        return self._step(request, obj, request_extend, "extended; the person was told", form=ReasonForm(request.POST))

    def complete_view(self, request, object_id):
        obj = self._acting_on(request, object_id)
        return self._step(
            request, obj, request_complete, "completed; the person was told", form=CompleteForm(request.POST)
        )

    def reject_view(self, request, object_id):
        obj = self._acting_on(request, object_id)
        return self._step(request, obj, request_reject, "rejected; the person was told", form=ReasonForm(request.POST))
