"""Console pages of the workflows app (registered on the console admin site).

Every write goes through ``workflows.services`` (and ``workflows.scheduled_jobs``): the forms
call them from ``clean`` so their errors show at the field they name, and the actions call them
with the selection. A workflow's change page adds its live status (per-step counts and an
activity feed, kept current over the websocket ``/ws/workflows/<id>/``), its analytics and
its versions. "Enrol in a workflow…" is added here to the contact and segment pages, because
``marketing`` may not import ``workflows``.
"""

import copy
import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Count, F, Func
from django.db.models.fields.json import KeyTextTransform
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from unfold.contrib.filters.admin import AutocompleteSelectFilter

from marketing import admin as marketing_admin
from marketing.admin import RecentWindowFilter, TenantAdmin
from marketing.large_lists import EstimatedCountPaginator
from marketing.models import Contact, Segment, SegmentMembership
from workflows import services
from workflows.api import WorkflowOutput
from workflows.catalog import workflow_catalog
from workflows.diff import definition_diff
from workflows.models import (
    ACTIVE_STATUSES,
    RUNNABLE_STATUSES,
    Approval,
    AutomationExecution,
    Delivery,
    ScheduledJob,
    Workflow,
    WorkflowInstance,
    WorkflowStepRun,
    WorkflowTemplate,
    WorkflowVersion,
)
from workflows.scheduled_jobs import scheduled_job_delete, scheduled_job_save
from workflows.selectors import running_runs, step_counts, workflow_analytics
from workflows.steps import step_types
from workflows.triggers import triggers

VERSIONS_SHOWN = 20
STEP_RUNS_SHOWN = 300
# The actions offered as buttons on a workflow's change page, by its status.
BUTTONS = {
    Workflow.Status.DRAFT: [("publish", "Publish")],
    Workflow.Status.ACTIVE: [("publish", "Publish the draft"), ("pause", "Pause"), ("archive", "Archive")],
    Workflow.Status.PAUSED: [("publish", "Publish the draft"), ("resume", "Resume"), ("archive", "Archive")],
    Workflow.Status.ARCHIVED: [("publish", "Publish again")],
}
STARTER_DEFINITION = {
    "trigger": {"type": "manual"},
    "steps": [{"id": "start", "type": "action", "action": "log", "config": {"message": "Started"}, "next": None}],
}


def pretty_json(value) -> str:
    """A JSON value laid out on several lines, in a <pre> (escaped)."""
    return format_html('<pre class="workflow-json">{}</pre>', json.dumps(value, indent=2, ensure_ascii=False))


def add_errors(form: forms.Form, exc: ValidationError, renamed: dict[str, str] | None = None) -> None:
    """Puts a service's ValidationError on the form: keyed errors at their field (``renamed``
    maps a service's key to the form's field), anything else at the top of the form."""
    errors = exc.message_dict if hasattr(exc, "error_dict") else {NON_FIELD_ERRORS: exc.messages}
    for key, field_errors in errors.items():
        field = (renamed or {}).get(key, key)
        form.add_error(field if field in form.fields else None, field_errors)


class ReadOnlyAdmin(marketing_admin.ReadOnlyAdmin):
    """Rows the engine writes: listed and shown, never added, edited or deleted here."""

    class Media:
        css = {"all": ["workflows/console.css"]}  # the JSON blocks


# --- workflows -----------------------------------------------------------------------------------


class DefinitionField(forms.JSONField):
    """The definition as indented JSON text, so a long one reads (and diffs) line by line."""

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False)


class WorkflowForm(forms.ModelForm):
    """Name, slug, description and draft definition, saved through ``workflow_create`` or
    ``workflow_update``.

    The services validate the definition, so the form calls them from ``clean`` (as the segment
    form does): each "where: what" error shows at the definition, and the admin's view
    transaction holds the write. ``save_model`` has nothing left to write.
    """

    by = None  # the user saving; set per request by WorkflowAdmin.get_form

    draft_definition = DefinitionField(
        label="Definition",
        widget=forms.Textarea(attrs={"rows": 28, "cols": 100, "spellcheck": "false", "class": "workflow-definition"}),
        help_text="The trigger, settings and steps as JSON (docs/workflows.md). "
        "Saving checks it; publishing makes it the version new runs start on.",
    )

    class Meta:
        model = Workflow
        fields = ("name", "slug", "description", "draft_definition")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is None:
            # The add page shows no JSON (its fieldsets leave the definition out): a new workflow
            # starts from the starter definition, and its steps are drawn on the change page's
            # canvas. A definition posted anyway (the API's shape, scripts) is still checked.
            self.fields["draft_definition"].required = False

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        fields = {name: cleaned[name] for name in ("name", "slug", "description")}
        workflow = self.instance
        try:
            if workflow.pk is None:
                definition = cleaned.get("draft_definition") or copy.deepcopy(STARTER_DEFINITION)
                self.instance = services.workflow_create(org=workflow.org, definition=definition, by=self.by, **fields)
            else:
                services.workflow_update(workflow=workflow, draft_definition=cleaned["draft_definition"], **fields)
        except ValidationError as exc:
            add_errors(self, exc, {"definition": "draft_definition"})
        return cleaned


@admin.register(Workflow)
class WorkflowAdmin(TenantAdmin):
    """Workflows: the draft's JSON (checked on save), publish/pause/resume/archive as actions,
    and on the change page the live status, analytics and versions."""

    form = WorkflowForm
    list_display = ("name", "slug", "status", "trigger_type", "live_version_number", "runs_link", "updated_at")
    list_filter = ("status", "trigger_type")
    search_fields = ("name", "slug")
    list_select_related = ("live_version",)
    list_per_page = 50  # the theme renders a row in about a millisecond: 10,000 workflows are pages away
    prepopulated_fields = {"slug": ("name",)}
    actions = ("publish", "pause", "resume", "archive")
    change_form_template = "admin/workflows/workflow/change_form.html"
    readonly_fields = ("status", "published", "trigger_type", "template", "created_by", "created_at", "updated_at")

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.resolver_match and request.resolver_match.url_name == "workflows_workflow_changelist":
            # The list shows no definition: a 200-step draft and its live version are ~100 KB each.
            queryset = queryset.defer("draft_definition", "live_version__definition")
        return queryset

    def get_fieldsets(self, request, obj=None):
        if obj is None and "draft_definition" not in request.POST:  # the steps come after, on the canvas
            return [(None, {"fields": ("name", "slug", "description")})]
        if obj is None:  # a definition posted anyway (a script's) is shown with its errors
            return [(None, {"fields": ("name", "slug", "description", "draft_definition")})]
        return [
            (None, {"fields": ("name", "slug", "description", "draft_definition")}),
            ("State", {"fields": ("status", "published", "trigger_type", "template", "created_by", "created_at")}),
        ]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change, **kwargs)
        return type(form_class.__name__, (form_class,), {"by": request.user})

    def get_changeform_initial_data(self, request):
        return {"draft_definition": STARTER_DEFINITION, **super().get_changeform_initial_data(request)}

    def save_model(self, request, obj, form, change):
        pass  # WorkflowForm.clean saved it through the services

    def get_urls(self):
        counts = self.admin_site.admin_view(self.counts_view)
        return [path("<path:object_id>/live-counts/", counts, name="workflows_workflow_counts"), *super().get_urls()]

    @admin.display(description="version", ordering="live_version__number")
    def live_version_number(self, obj: Workflow) -> str:
        return f"v{obj.live_version.number}" if obj.live_version else "—"

    @admin.display(description="runs")
    def runs_link(self, obj: Workflow) -> str:
        url = reverse("admin:workflows_workflowinstance_changelist") + f"?workflow__id__exact={obj.pk}"
        return format_html('<a href="{}">runs</a>', url)

    @admin.display(description="published")
    def published(self, obj: Workflow) -> str:
        if obj.live_version is None:
            return "never"
        version = obj.live_version
        changed = " — the draft has changes not published yet" if obj.draft_definition != version.definition else ""
        return f"v{version.number} on {version.published_at:%Y-%m-%d %H:%M}{changed}"

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context.update(self._live_context(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _live_context(self, request, workflow: Workflow) -> dict:
        """The live status panel (counts as of now), analytics and versions of ``workflow``."""
        definition = workflow.live_version.definition if workflow.live_version else workflow.draft_definition
        steps = [s for s in (definition or {}).get("steps", []) if isinstance(s, dict) and "id" in s]
        counts = step_counts(workflow_id=workflow.pk)
        known = {s["id"] for s in steps}
        # Steps of older versions that runs still sit in or passed through.
        steps += [{"id": step_id, "type": "(older version)"} for step_id in counts if step_id not in known]
        zero = {"waiting": 0, "running": 0, "done": 0, "failed": 0}
        analytics = workflow_analytics(workflow=workflow)
        draft_steps = [s for s in (workflow.draft_definition or {}).get("steps") or [] if isinstance(s, dict)]
        return {
            "live_steps": [
                {
                    "id": s["id"],
                    "name": s.get("name", ""),
                    "type": s.get("type", ""),
                    "counts": counts.get(s["id"], zero),
                    "analytics": analytics["steps"].get(s["id"]),
                }
                for s in steps
            ],
            "analytics": analytics,
            "versions": workflow.versions.select_related("published_by").order_by("-number")[:VERSIONS_SHOWN],
            "may_change": self.has_change_permission(request, workflow),
            "workflow_buttons": BUTTONS[workflow.status],
            "live_config": {
                "workflow": workflow.pk,
                "socketPath": f"/ws/workflows/{workflow.pk}/",
                "countsUrl": reverse("admin:workflows_workflow_counts", args=[workflow.pk]),
                "instanceUrl": reverse("admin:workflows_workflowinstance_change", args=[0]),
            },
            # The canvas reads and saves through the REST API; the rule builder's fields come with the page.
            "canvas_api": reverse("workflow-list").removesuffix("workflows/"),
            "canvas_rules": marketing_admin.rule_builder_config(org=request.org),
            # What the canvas would otherwise ask the API for first: it draws without a round trip.
            "canvas_boot": {
                "workflow": WorkflowOutput(workflow, context={"request": request}).data,
                "catalog": workflow_catalog(),
            },
            # A draft without positions is laid out by elkjs: the browser fetches it with the rest.
            "canvas_needs_layout": any(not isinstance(step.get("position"), dict) for step in draft_steps),
        }

    def counts_view(self, request, object_id):
        """The per-step counts as of now (JSON); the page asks when a live message came without."""
        workflow = self.get_object(request, unquote(object_id))
        if workflow is None or not self.has_view_permission(request, workflow):
            raise Http404("No such workflow.")
        return JsonResponse({"workflow": workflow.pk, "counts": step_counts(workflow_id=workflow.pk)})

    def _each(self, request, queryset, verb: str, call):
        """Calls ``call(workflow)`` for each selected workflow and reports each outcome; a button
        of the change page leads back to it."""
        for workflow in queryset.order_by("pk"):
            try:
                outcome = call(workflow)
            except ValidationError as exc:
                text = error_sentences(f"“{workflow}” was not {verb}:", exc.messages)
                self.message_user(request, text, messages.ERROR)
            else:
                self.message_user(request, f"“{workflow}” {verb}{outcome}.", messages.SUCCESS)
        selected = request.POST.getlist(ACTION_CHECKBOX_NAME)
        if request.POST.get("_from_change_page") and len(selected) == 1 and selected[0].isdigit():
            return HttpResponseRedirect(reverse("admin:workflows_workflow_change", args=[selected[0]]))
        return None

    @admin.action(description="Publish the draft (new runs start on it)", permissions=["change"])
    def publish(self, request, queryset):
        selected = list(queryset[:2])
        if len(selected) == 1 and running_runs(workflow=selected[0]).exists():
            return publish_page(self, request, selected[0])  # ask what happens to the running runs

        def call(workflow):
            version = services.workflow_publish(workflow=workflow, by=request.user)
            return f" as version {version.number}"

        return self._each(request, queryset, "published", call)

    @admin.action(description="Pause (runs stop where they are)", permissions=["change"])
    def pause(self, request, queryset):
        return self._each(
            request, queryset, "paused", lambda wf: f"; {services.workflow_pause(workflow=wf)} run(s) stopped"
        )

    @admin.action(description="Resume", permissions=["change"])
    def resume(self, request, queryset):
        return self._each(
            request, queryset, "resumed", lambda wf: f"; {services.workflow_resume(workflow=wf)} run(s) go on"
        )

    @admin.action(description="Archive (cancels active runs)", permissions=["change"])
    def archive(self, request, queryset):
        return self._each(
            request, queryset, "archived", lambda wf: f"; {services.workflow_archive(workflow=wf)} run(s) cancelled"
        )

    # Deleting goes through workflow_delete, which refuses a published workflow (archive it).

    def get_deleted_objects(self, objs, request):
        """The workflows alone. A deletable one was never published, so it has no versions or
        runs; the admin's own list would ask for a delete permission on those, which no one has."""
        workflows = list(objs)
        deleted = [
            format_html('Workflow: <a href="{}">{}</a>', reverse("admin:workflows_workflow_change", args=[w.pk]), w)
            for w in workflows
        ]
        return deleted, {Workflow._meta.verbose_name_plural: len(workflows)}, set(), []

    def delete_model(self, request, obj):
        services.workflow_delete(workflow=obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for workflow in queryset.order_by("pk"):
                services.workflow_delete(workflow=workflow)

    def delete_view(self, request, object_id, extra_context=None):
        try:  # the admin's delete runs in a transaction: a refusal rolls back its log entry too
            return super().delete_view(request, object_id, extra_context)
        except ValidationError as exc:
            self.message_user(request, "; ".join(exc.messages), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:workflows_workflow_change", args=[object_id]))

    def response_action(self, request, queryset):
        if request.POST.get("action") != "delete_selected":
            return super().response_action(request, queryset)
        try:  # all or none, with the log entries that "delete selected" writes first
            with transaction.atomic():
                return super().response_action(request, queryset)
        except ValidationError as exc:
            self.message_user(request, "; ".join(exc.messages), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


def error_sentences(lead: str, errors: list[str]) -> str:
    """``lead`` and the errors as separate sentences, each ending once with a full stop (the
    services' messages may end with one or not; joined with "; " they read ".;")."""
    return " ".join([lead, *(e.strip().rstrip(".;") + "." for e in errors if e.strip())])


# --- publishing with running runs: keep them on their version, or move them ---------------------


def _waiting_at(workflow: Workflow) -> list[dict]:
    """Where the running runs of ``workflow`` stand: one row per version and step with a token
    there, with how many runs. Read from the tokens, so parallel branches count at each step."""
    runs = running_runs(workflow=workflow)
    counts: dict[tuple[int, str], int] = {}
    if connection.vendor == "postgresql":
        # One grouped query: each run's tokens unnested, a run counted once per step however
        # many of its parallel branches wait there.
        token_step = KeyTextTransform("step", Func(F("tokens"), function="jsonb_array_elements"))
        grouped = runs.values("version_id", token_step=token_step).annotate(n=Count("pk", distinct=True))
        counts = {(row["version_id"], row["token_step"]): row["n"] for row in grouped.order_by()}
    else:  # the embedded SQLite demo has no jsonb_array_elements in a select list
        for version_id, tokens in runs.values_list("version_id", "tokens").iterator(chunk_size=2000):
            for step_id in {t["step"] for t in tokens}:
                counts[(version_id, step_id)] = counts.get((version_id, step_id), 0) + 1
    versions = {v.pk: v for v in WorkflowVersion.objects.filter(pk__in={v for v, _ in counts})}
    rows = []
    for (version_id, step_id), runs_there in sorted(counts.items(), key=lambda i: (versions[i[0][0]].number, i[0][1])):
        step = next((s for s in versions[version_id].definition["steps"] if s["id"] == step_id), {})
        rows.append(
            {"version": versions[version_id].number, "step": step_id, "type": step.get("type", ""), "runs": runs_there}
        )
    return rows


class PublishForm(forms.Form):
    """What happens to the running runs when the draft is published: they stay on their version,
    or move, with a choice of step (of the same type) for each step the draft no longer has."""

    runs = forms.ChoiceField(
        label="Running runs",
        choices=[("keep", "Keep them on the version they started on"), ("move", "Move them to the new version")],
        initial="keep",
        widget=forms.RadioSelect,
    )

    def __init__(self, *args, waiting: list[dict], draft_steps: list[dict], keep_label: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["runs"].choices = [("keep", keep_label), self.fields["runs"].choices[1]]
        by_id = {s["id"]: s for s in draft_steps if isinstance(s, dict) and "id" in s}
        self.removed: list[str] = []
        for row in waiting:
            kept = by_id.get(row["step"])
            name = f"map_{row['step']}"
            if (kept is not None and kept["type"] == row["type"]) or name in self.fields:
                continue
            self.removed.append(row["step"])
            same_type = [s for s in draft_steps if s.get("type") == row["type"]]
            self.fields[name] = forms.ChoiceField(
                label=f"Runs waiting at “{row['step']}” ({row['type']}) go to",
                required=False,
                choices=[("", "— choose a step —")]
                + [(s["id"], f"{s['id']} — {s['name']}" if s.get("name") else s["id"]) for s in same_type],
                help_text="The new version has no step of this id and type; only its "
                f"{row['type']} steps can take these runs."
                if same_type
                else f"The new version has no {row['type']} step: these runs can only keep their version.",
            )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("runs") == "move":
            for step_id in self.removed:
                if not cleaned.get(f"map_{step_id}"):
                    self.add_error(f"map_{step_id}", f"Choose where the runs waiting at “{step_id}” go.")
        return cleaned

    def step_map(self) -> dict[str, str]:
        return {step_id: self.cleaned_data[f"map_{step_id}"] for step_id in self.removed}


def publish_page(modeladmin, request, workflow: Workflow):
    """The intermediate page of "Publish" when runs are running: it lists them per step and asks
    whether they keep their version (the default) or move to the new one, and where."""
    waiting = _waiting_at(workflow)
    runs = running_runs(workflow=workflow).count()
    draft_steps = (workflow.draft_definition or {}).get("steps") or []
    live = workflow.live_version
    keep_label = (
        f"Keep them on version {live.number}"
        if live and {r["version"] for r in waiting} == {live.number}
        else "Keep them on the versions they started on"
    )
    data = request.POST if request.POST.get("apply") else None
    form = PublishForm(data, waiting=waiting, draft_steps=draft_steps, keep_label=keep_label)
    if form.is_valid():
        move = form.cleaned_data["runs"] == "move"
        try:
            version = services.workflow_publish(
                workflow=workflow, by=request.user, migrate={"map": form.step_map()} if move else None
            )
        except ValidationError as exc:
            add_errors(form, exc, {"migrate": None})
        else:
            modeladmin.message_user(request, f"“{workflow}” published as version {version.number}.")
            outcome = f"moved to version {version.number}" if move else "keep the version they started on"
            modeladmin.message_user(request, f"{runs} running run(s) {outcome}.")
            return HttpResponseRedirect(reverse("admin:workflows_workflow_change", args=[workflow.pk]))
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": f"Publish “{workflow}”",
        "opts": modeladmin.model._meta,
        "workflow": workflow,
        "waiting": waiting,
        "runs": runs,
        "next_number": (workflow.versions.order_by("-number").values_list("number", flat=True).first() or 0) + 1,
        "changes": definition_diff(live.definition if live else None, workflow.draft_definition)["summary"],
        "live": live,
        "form": form,
        "action_checkbox_name": ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/workflows/publish.html", context)


@admin.register(WorkflowVersion)
class WorkflowVersionAdmin(ReadOnlyAdmin):
    """Published definitions, frozen."""

    list_display = ("workflow", "number", "published_by", "published_at")
    list_filter = (("workflow", AutocompleteSelectFilter),)
    list_filter_submit = True
    search_fields = ("workflow__name", "workflow__slug")
    list_select_related = ("workflow", "published_by")
    fields = ("workflow", "number", "published_by", "published_at", "definition_json")
    readonly_fields = fields

    @admin.display(description="definition")
    def definition_json(self, obj: WorkflowVersion) -> str:
        return pretty_json(obj.definition)


# --- runs ----------------------------------------------------------------------------------------


class FirstStepRunsFormSet(forms.BaseInlineFormSet):
    """The first step runs only: a long loop can make thousands."""

    def get_queryset(self):
        if not hasattr(self, "_first_runs"):
            self._first_runs = super().get_queryset().order_by("started_at", "id")[:STEP_RUNS_SHOWN]
        return self._first_runs


class WorkflowStepRunInline(marketing_admin.ReadOnlyInline):
    model = WorkflowStepRun
    formset = FirstStepRunsFormSet
    fields = (
        "step_id",
        "step_type",
        "visit",
        "attempt",
        "status",
        "started_at",
        "completed_at",
        "duration_ms",
        "next_step",
        "output",
        "error",
    )
    readonly_fields = fields
    verbose_name_plural = f"step runs (the first {STEP_RUNS_SHOWN}, in order)"


class ProgressFilter(admin.SimpleListFilter):
    """Runs still going (pending, running, waiting or paused), due now (their wait is over) or
    ended, whatever the status."""

    title = "progress"
    parameter_name = "progress"

    def lookups(self, request, model_admin):
        return (("in_progress", "In progress"), ("due", "Due now"), ("ended", "Ended"))

    def queryset(self, request, queryset):
        if self.value() == "in_progress":
            return queryset.filter(status__in=ACTIVE_STATUSES)
        if self.value() == "due":  # what the engine's backlog counts (workflows.metrics.instances_due)
            return queryset.filter(status__in=RUNNABLE_STATUSES, wake_at__isnull=False, wake_at__lte=timezone.now())
        if self.value() == "ended":
            return queryset.exclude(status__in=ACTIVE_STATUSES)
        return queryset


class EnrolledFilter(RecentWindowFilter):
    title = "enrolled"
    parameter_name = "enrolled"
    field = "triggered_at"


class EndedFilter(RecentWindowFilter):
    title = "ended"
    parameter_name = "ended"
    field = "finished_at"


class CompletedFilter(RecentWindowFilter):
    title = "completed"
    parameter_name = "completed"
    field = "completed_at"


class TriggerTypeFilter(admin.SimpleListFilter):
    """How runs started, from the trigger registry (a DISTINCT over every run read the whole
    table: 150 ms on 200,000 runs); the parameter is the field's own, so links stay valid."""

    title = "trigger type"
    parameter_name = "trigger_type__exact"

    def lookups(self, request, model_admin):
        return [(name, trigger.label or name) for name, trigger in sorted(triggers().items())]

    def queryset(self, request, queryset):
        return queryset.filter(trigger_type=self.value()) if self.value() else queryset


class StepTypeFilter(admin.SimpleListFilter):
    """A step run's type, from the step-type registry (not a DISTINCT over every step run)."""

    title = "step type"
    parameter_name = "step_type__exact"

    def lookups(self, request, model_admin):
        return [(name, name.replace("_", " ")) for name in sorted(step_types())]

    def queryset(self, request, queryset):
        return queryset.filter(step_type=self.value()) if self.value() else queryset


@admin.register(WorkflowInstance)
class WorkflowInstanceAdmin(ReadOnlyAdmin):
    """Runs: one contact's run of one workflow, read-only; pause, resume, cancel and retry are
    actions (they need the change permission on runs)."""

    list_display = ("pk", "contact", "workflow", "status", "current_step", "result", "triggered_at", "finished_at")
    list_display_links = ("pk", "contact")
    list_filter = (
        "status",
        ProgressFilter,
        EnrolledFilter,
        EndedFilter,
        ("workflow", AutocompleteSelectFilter),
        "result",
        TriggerTypeFilter,
    )
    list_filter_submit = True
    search_fields = ("contact__email",)
    search_help_text = "Contact email (or part of it)."
    list_select_related = ("contact", "workflow")
    show_full_result_count = False
    paginator = EstimatedCountPaginator  # a large list's count is the planner's estimate
    list_per_page = 50
    inlines = (WorkflowStepRunInline,)
    actions = ("pause", "resume", "cancel", "retry")
    fieldsets = (
        (None, {"fields": ("workflow", "version", "contact", "status", "result", "current_step", "error")}),
        ("Timing", {"fields": ("triggered_at", "started_at", "finished_at", "wake_at", "waits_for_event")}),
        ("Trigger", {"fields": ("trigger_type", "trigger_key", "trigger_json")}),
        ("State", {"fields": ("tokens_json", "context_json", "visits_json", "paused_status")}),
    )
    readonly_fields = (
        "workflow",
        "version",
        "contact",
        "status",
        "result",
        "current_step",
        "error",
        "triggered_at",
        "started_at",
        "finished_at",
        "wake_at",
        "waits_for_event",
        "trigger_type",
        "trigger_key",
        "trigger_json",
        "tokens_json",
        "context_json",
        "visits_json",
        "paused_status",
    )

    def has_operate_permission(self, request) -> bool:
        """Pausing, resuming, cancelling and retrying runs is changing them."""
        return request.user.has_perm("workflows.change_workflowinstance")

    @admin.display(description="trigger data")
    def trigger_json(self, obj: WorkflowInstance) -> str:
        return pretty_json(obj.trigger_data)

    @admin.display(description="tokens (positions)")
    def tokens_json(self, obj: WorkflowInstance) -> str:
        return pretty_json(obj.tokens)

    @admin.display(description="context")
    def context_json(self, obj: WorkflowInstance) -> str:
        return pretty_json(obj.context)

    @admin.display(description="visits")
    def visits_json(self, obj: WorkflowInstance) -> str:
        return pretty_json(obj.visits)

    @admin.action(description="Pause the selected runs", permissions=["operate"])
    def pause(self, request, queryset):
        count = services.instances_pause(instances=queryset)
        self.message_user(request, f"Paused {count} run(s).", messages.SUCCESS)

    @admin.action(description="Resume the selected runs", permissions=["operate"])
    def resume(self, request, queryset):
        count = services.instances_resume(instances=queryset)
        self.message_user(request, f"Resumed {count} run(s).", messages.SUCCESS)

    @admin.action(description="Cancel the selected runs", permissions=["operate"])
    def cancel(self, request, queryset):
        count = services.instances_cancel(instances=queryset)
        self.message_user(request, f"Cancelled {count} run(s).", messages.SUCCESS)

    @admin.action(description="Retry from the failed step", permissions=["operate"])
    def retry(self, request, queryset):
        count = services.instances_retry(instances=queryset)
        self.message_user(request, f"{count} failed run(s) start again from the step that failed.", messages.SUCCESS)


@admin.register(Approval)
class ApprovalAdmin(ReadOnlyAdmin):
    """The approval queue: runs waiting for a person's decision; approve or reject as actions."""

    list_display = ("pk", "workflow", "step_id", "contact", "status", "approvers_text", "due_at", "decided_by")
    list_filter = ("status", "due_at")
    search_fields = ("instance__contact__email", "step_id")
    search_help_text = "Contact email or step id."
    list_select_related = ("instance__workflow", "instance__contact", "decided_by")
    list_per_page = 50
    actions = ("approve", "reject")
    fields = ("instance", "step_id", "approvers_text", "status", "due_at", "decided_by", "decided_at", "note")
    readonly_fields = fields

    def has_decide_permission(self, request) -> bool:
        """Deciding is changing the approval."""
        return request.user.has_perm("workflows.change_approval")

    @admin.display(description="workflow", ordering="instance__workflow__name")
    def workflow(self, obj: Approval) -> str:
        return obj.instance.workflow.name

    @admin.display(description="contact")
    def contact(self, obj: Approval) -> str:
        return str(obj.instance.contact)

    @admin.display(description="approvers")
    def approvers_text(self, obj: Approval) -> str:
        if obj.approvers.get("role"):
            return f"role: {obj.approvers['role']}"
        return f"users: {', '.join(map(str, obj.approvers.get('users', [])))}"

    def _decide(self, request, queryset, approved: bool) -> None:
        decided = 0
        for approval in queryset.order_by("pk"):
            try:
                services.approval_decide(approval=approval, approved=approved, by=request.user)
            except ValidationError as exc:
                self.message_user(request, f"Approval #{approval.pk}: {'; '.join(exc.messages)}", messages.ERROR)
            else:
                decided += 1
        if decided:
            verb = "Approved" if approved else "Rejected"
            self.message_user(request, f"{verb} {decided} approval(s); their runs go on.", messages.SUCCESS)

    @admin.action(description="Approve", permissions=["decide"])
    def approve(self, request, queryset):
        self._decide(request, queryset, approved=True)

    @admin.action(description="Reject", permissions=["decide"])
    def reject(self, request, queryset):
        self._decide(request, queryset, approved=False)


# --- templates and schedules -------------------------------------------------------------------


def _created_summary(created: dict) -> str:
    """What a template's use made and reused, in words: "made 2 message templates (drafts to
    publish: a, b) and …; reused 1 destination (x)"."""
    kinds = {
        "message_templates": ("message template", "drafts to publish"),
        "destinations": ("destination", "inactive until you activate them"),
        "segments": ("segment", ""),
    }
    made, reused = [], []
    for kind, (noun, note) in kinds.items():
        new = [row["slug"] for row in created.get(kind, []) if not row["reused"]]
        old = [row["slug"] for row in created.get(kind, []) if row["reused"]]
        if new:
            plural = noun if len(new) == 1 else f"{noun}s"
            made.append(f"{len(new)} {plural} ({note + ': ' if note else ''}{', '.join(new)})")
        if old:
            reused.append(f"{len(old)} {noun if len(old) == 1 else noun + 's'} ({', '.join(old)})")
    parts = [f"made {'; '.join(made)}" if made else "made nothing else"]
    if reused:
        parts.append(f"reused {'; '.join(reused)}")
    return "; ".join(parts) + "."


@admin.register(WorkflowTemplate)
class WorkflowTemplateAdmin(TenantAdmin):
    """The template library; "Use" makes a draft workflow (and the message templates, destinations
    and segments it names that the org lacks) and opens it."""

    list_display = ("name", "category", "status", "usage_count", "updated_at", "use_button")
    list_filter = ("category", "status")
    search_fields = ("name", "slug", "description")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("usage_count", "created_at", "updated_at")
    actions = ("create_workflow",)

    def has_use_permission(self, request) -> bool:
        """Using a template is adding a workflow."""
        return request.user.has_perm("workflows.add_workflow")

    def get_urls(self):
        view = self.admin_site.admin_view(self.use_view)
        return [path("<path:object_id>/use/", view, name="workflows_workflowtemplate_use"), *super().get_urls()]

    @admin.display(description="")
    def use_button(self, obj: WorkflowTemplate) -> str:
        # A submit button of the list's own form (which carries the CSRF token), posted to this
        # template's use URL: a form of its own cannot nest inside the list's.
        url = reverse("admin:workflows_workflowtemplate_use", args=[obj.pk])
        return format_html(
            '<button type="submit" formaction="{}" formmethod="post" data-use-template="{}" '
            'class="bg-primary-600 border border-primary-600 text-white font-medium px-3 py-1 rounded-default '
            'text-sm whitespace-nowrap cursor-pointer">Use this template</button>',
            url,
            obj.slug,
        )

    def _use(self, request, template: WorkflowTemplate) -> Workflow:
        workflow, created = services.library_use(template=template, by=request.user)
        self.message_user(
            request,
            format_html(
                "Created the draft workflow “{}” from “{}”; {}", workflow.name, template.name, _created_summary(created)
            ),
            messages.SUCCESS,
        )
        return workflow

    def use_view(self, request, object_id):
        """POST: uses the template and opens the new workflow."""
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:workflows_workflowtemplate_changelist"))
        if not self.has_use_permission(request):
            raise PermissionDenied
        template = self.get_object(request, unquote(object_id))
        if template is None:
            raise Http404("No such template.")
        workflow = self._use(request, template)
        return HttpResponseRedirect(reverse("admin:workflows_workflow_change", args=[workflow.pk]))

    @admin.action(description="Create a workflow from this template", permissions=["use"])
    def create_workflow(self, request, queryset):
        made = [self._use(request, template) for template in queryset.order_by("pk")]
        if len(made) == 1:  # open it; several stay listed in the messages
            return HttpResponseRedirect(reverse("admin:workflows_workflow_change", args=[made[0].pk]))
        return None


class ScheduledJobForm(forms.ModelForm):
    """A job saved through ``scheduled_job_save`` (which keeps its PeriodicTask in step).

    Called from ``clean`` so its errors (cron, interval, time) show at their field. The fields
    come from the admin: a form class declaring the foreign keys would query them at import,
    outside any org.
    """

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            scheduled_job_save(job=self.instance, **{name: cleaned.get(name) for name in self._meta.fields})
        except ValidationError as exc:
            add_errors(self, exc)
        return cleaned


@admin.register(ScheduledJob)
class ScheduledJobAdmin(TenantAdmin):
    """Segment enrolments on a schedule; each job is backed by a beat PeriodicTask."""

    form = ScheduledJobForm
    fields = ("name", "workflow", "segment", "kind", "run_at", "every_seconds", "cron", "time_zone", "enabled")
    list_display = ("name", "workflow", "segment", "kind", "schedule", "enabled", "last_run_at", "last_enrolled")
    list_filter = ("kind", "enabled", ("workflow", AutocompleteSelectFilter))
    list_filter_submit = True
    search_fields = ("name",)
    list_select_related = ("workflow", "segment")
    readonly_fields = ("periodic_task", "last_run_at", "last_enrolled", "created_at")

    @admin.display(description="schedule")
    def schedule(self, obj: ScheduledJob) -> str:
        if obj.kind == ScheduledJob.Kind.CRON:
            return f"{obj.cron} ({obj.time_zone})"
        if obj.kind == ScheduledJob.Kind.RECURRING:
            return f"every {obj.every_seconds} s"
        return f"at {obj.run_at:%Y-%m-%d %H:%M}" if obj.run_at else "—"

    def save_model(self, request, obj, form, change):
        pass  # ScheduledJobForm.clean saved it through scheduled_job_save

    def delete_model(self, request, obj):
        scheduled_job_delete(job=obj)

    def delete_queryset(self, request, queryset):
        for job in queryset.order_by("pk"):
            scheduled_job_delete(job=job)


# --- records -------------------------------------------------------------------------------------


@admin.register(WorkflowStepRun)
class WorkflowStepRunAdmin(marketing_admin.SystemInternals, ReadOnlyAdmin):
    """Every step a run took, across runs (System): what went in and out, and the error."""

    list_display = ("step_id", "step_type", "workflow", "instance", "status", "visit", "attempt", "started_at")
    list_filter = ("status", CompletedFilter, StepTypeFilter, ("workflow", AutocompleteSelectFilter))
    list_filter_submit = True
    search_fields = ("=idempotency_key", "=step_id")
    search_help_text = "Exact step id or idempotency key (instance:step:visit)."
    list_select_related = ("workflow", "instance__workflow")  # a run's name names its workflow
    show_full_result_count = False
    paginator = EstimatedCountPaginator  # a large list's count is the planner's estimate
    list_per_page = 50
    readonly_fields = (
        "instance",
        "workflow",
        "step_id",
        "step_type",
        "visit",
        "attempt",
        "idempotency_key",
        "status",
        "started_at",
        "completed_at",
        "duration_ms",
        "input",
        "output",
        "error",
        "next_step",
    )


@admin.register(Delivery)
class DeliveryAdmin(marketing_admin.SystemInternals, ReadOnlyAdmin):
    """Outbound calls recorded under their idempotency key (docs/workflows.md)."""

    list_display = ("idempotency_key", "action", "status", "attempts", "next_attempt_at", "created_at", "sent_at")
    list_filter = ("status", "action", "created_at")
    search_fields = ("=idempotency_key",)
    search_help_text = "Exact idempotency key (instance:step:visit)."
    show_full_result_count = False
    fields = (
        "idempotency_key",
        "instance",
        "step_id",
        "action",
        "status",
        ("attempts", "max_attempts"),
        "next_attempt_at",
        "lease_until",
        "created_at",
        "sent_at",
        "request_json",
        "response_json",
        "error",
    )
    readonly_fields = (
        "idempotency_key",
        "instance",
        "step_id",
        "action",
        "status",
        "attempts",
        "max_attempts",
        "next_attempt_at",
        "lease_until",
        "created_at",
        "sent_at",
        "request_json",
        "response_json",
        "error",
    )

    @admin.display(description="request")
    def request_json(self, obj: Delivery) -> str:
        # The signing secret of a webhook travels in the request; it is not for display.
        request = obj.request
        if isinstance(request, dict) and request.get("secret"):
            request = {**request, "secret": "…"}
        return pretty_json(request)

    @admin.display(description="response")
    def response_json(self, obj: Delivery) -> str:
        return pretty_json(obj.response)


@admin.register(AutomationExecution)
class AutomationExecutionAdmin(ReadOnlyAdmin):
    """Finished runs, for audit and analytics."""

    list_display = ("workflow", "contact", "status", "result", "started_at", "finished_at", "duration_ms")
    list_filter = ("status", "result", ("workflow", AutocompleteSelectFilter), "finished_at")
    list_filter_submit = True
    search_fields = ("contact__email",)
    search_help_text = "Contact email (or part of it)."
    list_select_related = ("workflow", "contact")
    show_full_result_count = False
    readonly_fields = (
        "workflow",
        "instance",
        "contact",
        "status",
        "result",
        "started_at",
        "finished_at",
        "duration_ms",
        "error",
    )


# --- manual enrolment, on the contact and segment pages -----------------------------------------


class EnrolForm(forms.Form):
    workflow = forms.ModelChoiceField(queryset=Workflow.objects.none(), label="Workflow")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The current org's (the manager is scoped): active and published.
        self.fields["workflow"].queryset = Workflow.objects.filter(
            status=Workflow.Status.ACTIVE, live_version__isnull=False
        ).order_by("name")


def may_enrol(request) -> bool:
    """Starting runs by hand is for those who may change workflows."""
    return request.user.has_perm("workflows.change_workflow")


def enrol_page(modeladmin, request, *, contact_ids, what: str):
    """The intermediate page of "Enrol in a workflow…": pick an active workflow, then enrol
    ``contact_ids`` (a query of contact ids, read only when the form is submitted)."""
    form = EnrolForm(request.POST if "apply" in request.POST else None)
    if form.is_valid():
        workflow = form.cleaned_data["workflow"]
        ids = list(contact_ids)
        try:
            started = services.workflow_enrol_manually(workflow=workflow, contact_ids=ids, by=request.user)
        except ValidationError as exc:
            modeladmin.message_user(request, "; ".join(exc.messages), messages.ERROR)
        else:
            left_out = len(set(ids)) - started
            note = f" ({left_out} left out by its re-enrolment policy)" if left_out else ""
            modeladmin.message_user(request, f"Enrolled {started} contact(s) in “{workflow}”{note}.", messages.SUCCESS)
        return HttpResponseRedirect(request.get_full_path())
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Enrol in a workflow",
        "what": what,
        "form": form,
        "opts": modeladmin.model._meta,
        "action": request.POST.get("action"),
        "action_checkbox_name": ACTION_CHECKBOX_NAME,
        "select_across": request.POST.get("select_across") == "1",
        "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
    }
    return TemplateResponse(request, "admin/workflows/enrol.html", context)


@admin.action(description="Enrol in a workflow…", permissions=["enrol"])
def enrol_contacts(modeladmin, request, queryset):
    """Enrols the selected contacts in an active workflow."""
    return enrol_page(
        modeladmin,
        request,
        contact_ids=queryset.values_list("pk", flat=True),
        what=f"{queryset.count()} selected contact(s)",
    )


@admin.action(description="Enrol the members in a workflow…", permissions=["enrol"])
def enrol_segment_members(modeladmin, request, queryset):
    """Enrols the current members of the selected segments in an active workflow."""
    names = format_html_join(", ", "“{}”", ((segment.name,) for segment in queryset))
    # A contact in two of the segments is enrolled once: the service takes the ids as a set.
    members = SegmentMembership.objects.filter(segment__in=queryset, exited_at__isnull=True).values_list(
        "contact_id", flat=True
    )
    return enrol_page(modeladmin, request, contact_ids=members, what=format_html("the current members of {}", names))


def _add_enrol_action(model, action) -> None:
    """Adds ``action`` to the console page of ``model``, which ``marketing`` registered."""
    model_admin = admin.site.get_model_admin(model)
    model_admin.actions = (*(model_admin.actions or ()), action)
    model_admin.has_enrol_permission = may_enrol  # what ``permissions=["enrol"]`` asks


_add_enrol_action(Contact, enrol_contacts)
_add_enrol_action(Segment, enrol_segment_members)
