"""The console's Compliance → Data retention page: one line per data kind with how many days it
is kept (empty: forever), and beside it how many rows the next purge would delete. Preview
counts the values typed without saving them; Save keeps them (``compliance.retention``). Admins
and compliance officers change it; the other roles that see Compliance read it."""

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from unfold.widgets import UnfoldAdminIntegerFieldWidget

from compliance.models import RetentionPolicy
from compliance.retention import (
    MAX_DAYS,
    retention_count,
    retention_days_check,
    retention_policies,
    retention_policies_save,
)
from marketing.admin import TenantAdmin
from marketing.retention import DATA_KINDS

TEMPLATE = "admin/compliance/retention.html"


class RetentionForm(forms.Form):
    """A ``days_<kind>`` field per data kind: a whole number of days, or empty for forever."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for kind in DATA_KINDS.values():
            self.fields[f"days_{kind.name}"] = forms.IntegerField(
                label=kind.label,
                required=False,
                help_text=kind.help,
                # The range is checked in clean(), whose message names the kind.
                widget=UnfoldAdminIntegerFieldWidget(
                    attrs={"placeholder": "forever", "min": kind.min_days, "max": MAX_DAYS}
                ),
            )

    def clean(self):
        cleaned = super().clean()
        for kind in DATA_KINDS:
            field = f"days_{kind}"
            if field in cleaned:
                try:
                    retention_days_check(kind=kind, days=cleaned[field])
                except ValidationError as exc:
                    self.add_error(field, exc.message_dict[field])
        return cleaned

    def days(self) -> dict[str, int | None]:
        return {kind: self.cleaned_data.get(f"days_{kind}") for kind in DATA_KINDS}


def _would(kind: str, count: int) -> str:
    noun = "message" if kind == "message_bodies" else "row"
    verb = "blanked" if kind == "message_bodies" else "deleted"
    return f"{count:,} {noun}{'' if count == 1 else 's'} would be {verb} at the next purge"


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(TenantAdmin):
    """The page is the list: no add, change or delete pages of single policies."""

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def may_change(self, request) -> bool:
        return request.user.has_perm("compliance.change_retentionpolicy")

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        org = request.org
        may_change = self.may_change(request)
        saved = retention_policies(org=org)
        previewing = False
        if request.method == "POST":
            if not may_change:
                raise PermissionDenied
            form = RetentionForm(request.POST)
            if form.is_valid():
                if "save" in request.POST:
                    retention_policies_save(org=org, days=form.days(), by=request.user)
                    self.message_user(request, "Data retention saved; the next nightly purge follows it.")
                    return HttpResponseRedirect(reverse("admin:compliance_retentionpolicy_changelist"))
                previewing = True
        else:
            form = RetentionForm(initial={f"days_{k}": p.days if p else None for k, p in saved.items()})
        now = timezone.now()
        rows = []
        for kind in DATA_KINDS.values():
            field = form[f"days_{kind.name}"]
            days = form.cleaned_data.get(field.name) if previewing else (saved[kind.name] and saved[kind.name].days)
            if field.errors:
                outcome = ""
            elif days is None:
                outcome = "Kept forever: nothing is deleted"
            else:
                outcome = _would(kind.name, retention_count(org=org, kind=kind.name, now=now, days=days))
            policy = saved[kind.name]
            rows.append({"kind": kind, "field": field, "days": days, "outcome": outcome, "policy": policy})
        context = {
            **self.admin_site.each_context(request),
            "title": "Data retention",
            "opts": self.model._meta,
            "form": form,
            "rows": rows,
            "may_change": may_change,
            "previewing": previewing,
        }
        return TemplateResponse(request, TEMPLATE, context)
