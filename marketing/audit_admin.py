"""The console's Compliance → Audit log and Change history: read-only, for org admins and
compliance officers (``marketing.roles``); nobody adds, edits or deletes a line here.

The audit log lists who did what to which row and read which fields; the change history lists
every change of a configuration model with its differences and who made it (docs/audit.md).
"""

from django.contrib import admin
from django.core.exceptions import FieldDoesNotExist
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from unfold.admin import ModelAdmin

from marketing.admin import ReadOnly, TenantAdmin
from marketing.change_history import ChangeEvent, change_events_for
from marketing.large_lists import EstimatedCountPaginator
from marketing.models import AuditEntry


def _admin_link(label: str, object_id: str) -> str:
    """The console page of ``label`` (app_label.model) ``object_id``, or "" when there is none."""
    app_label, _, model_name = label.lower().partition(".")
    try:
        return reverse(f"admin:{app_label}_{model_name}_change", args=[object_id])
    except NoReverseMatch:
        return ""


class TargetTypeFilter(admin.SimpleListFilter):
    """The kinds of rows the log speaks of, from the registered models (not a scan of the log)."""

    title = "target type"
    parameter_name = "target_type"

    def lookups(self, request, model_admin):
        labels = sorted(f"{model._meta.label_lower}" for model in admin.site._registry if _tenant_model(model))
        return [(label, label) for label in labels]

    def queryset(self, request, queryset):
        return queryset.filter(target_type=self.value()) if self.value() else queryset


def _tenant_model(model) -> bool:
    try:
        model._meta.get_field("org")
    except FieldDoesNotExist:
        return False
    return True


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnly, TenantAdmin):
    """Who did what, when, from where, to which row, and which fields: never a value."""

    list_display = ("at", "actor", "source", "verb", "target", "field_names", "count")
    list_filter = ("source", "verb", TargetTypeFilter, "at")
    search_fields = ("actor_label", "verb", "target_type", "=target_id", "=request_id")
    search_help_text = "Search by actor, verb, target type, target id or request id."
    date_hierarchy = "at"
    list_per_page = 100
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    fields = (
        ("at", "source"),
        ("actor", "verb"),
        ("target", "count"),
        "field_names",
        "request_id",
    )
    readonly_fields = ("at", "source", "actor", "verb", "target", "count", "field_names", "request_id")

    def get_queryset(self, request):
        return super().get_queryset(request).filter(org=request.org)

    @admin.display(description="actor", ordering="actor_label")
    def actor(self, entry: AuditEntry) -> str:
        return entry.actor_label or entry.get_source_display()

    @admin.display(description="target")
    def target(self, entry: AuditEntry) -> str:
        if not entry.target_id:
            return entry.target_type
        url = _admin_link(entry.target_type, entry.target_id)
        text = f"{entry.target_type} #{entry.target_id}"
        return format_html('<a href="{}">{}</a>', url, text) if url else text

    @admin.display(description="fields")
    def field_names(self, entry: AuditEntry) -> str:
        return ", ".join(entry.fields)


class EventKindFilter(admin.SimpleListFilter):
    title = "change"
    parameter_name = "label"

    def lookups(self, request, model_admin):
        return [("insert", "Created"), ("update", "Changed"), ("delete", "Deleted")]

    def queryset(self, request, queryset):
        return queryset.filter(pgh_label=self.value()) if self.value() else queryset


class TrackedModelFilter(admin.SimpleListFilter):
    """The configuration models whose history is kept (pghistory's registry, not a scan)."""

    title = "kind"
    parameter_name = "model"

    def lookups(self, request, model_admin):
        from django.apps import apps

        tracked = [model for model in apps.get_models() if getattr(model, "pgh_event_model", None) is not None]
        return sorted((model._meta.label, model._meta.verbose_name.capitalize()) for model in tracked)

    def queryset(self, request, queryset):
        return queryset.filter(pgh_obj_model=self.value()) if self.value() else queryset


@admin.register(ChangeEvent)
class ChangeEventAdmin(ReadOnly, ModelAdmin):
    """Every change of the org's configuration (workflows, templates, scoring, members, keys…):
    when, what, created, changed or deleted, the differences, and who made it."""

    list_display = ("when", "what", "change", "changed_fields", "who", "source")
    list_filter = (EventKindFilter, TrackedModelFilter)
    search_fields = ("=pgh_obj_id",)
    search_help_text = "Search by the changed row's id."
    date_hierarchy = "pgh_created_at"
    list_per_page = 100
    fields = (("when", "change"), ("what", "who"), "source", "differences")
    readonly_fields = ("when", "change", "what", "who", "source", "differences")

    def has_module_permission(self, request):
        return request.user.has_perm("marketing.view_changeevent")

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("marketing.view_changeevent")

    def get_queryset(self, request):
        org = getattr(request, "org", None)
        return change_events_for(org=org) if org is not None else ChangeEvent.no_objects.none()

    @admin.display(description="when", ordering="pgh_created_at")
    def when(self, event):
        return event.pgh_created_at

    @admin.display(description="what")
    def what(self, event) -> str:
        model = event.pgh_obj_model.split(".")[-1]
        url = _admin_link(event.pgh_obj_model, event.pgh_obj_id) if event.pgh_label != "delete" else ""
        data = event.pgh_data or {}
        name = data.get("name") or data.get("slug") or data.get("key") or ""
        text = f"{model} #{event.pgh_obj_id}" + (f" ({name})" if name else "")
        return format_html('<a href="{}">{}</a>', url, text) if url else text

    @admin.display(description="change")
    def change(self, event) -> str:
        return {"insert": "created", "update": "changed", "delete": "deleted"}.get(event.pgh_label, event.pgh_label)

    @admin.display(description="fields changed")
    def changed_fields(self, event) -> str:
        return ", ".join(sorted(event.pgh_diff or {})) if event.pgh_label == "update" else ""

    @admin.display(description="who")
    def who(self, event) -> str:
        return (event.pgh_context or {}).get("actor") or "—"

    @admin.display(description="source")
    def source(self, event) -> str:
        return (event.pgh_context or {}).get("source") or "—"

    @admin.display(description="differences")
    def differences(self, event):
        diff = event.pgh_diff or {}
        if event.pgh_label != "update" or not diff:
            rows = sorted((event.pgh_data or {}).items())
            return format_html_join("", "<div><b>{}</b>: {}</div>", ((k, _short(v)) for k, v in rows))
        return format_html_join(
            "",
            "<div><b>{}</b>: {} → {}</div>",
            ((k, _short(old), _short(new)) for k, (old, new) in sorted(diff.items())),
        )


def _short(value, limit: int = 300) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[:limit] + "…"
