"""REST API of workflows: ``/api/v1/workflows/`` and ``/api/v1/workflow-instances/``.

Views validate with an input serializer, call a service (``workflows.services``), a selector or
the dry run, and serialise. Every endpoint needs a server key; the org is always the key's, and
another org's workflow or run answers 404 like a missing one. A definition that cannot be
published is a 400 on ``definition`` listing each problem as "steps[id].field: what"
(``workflows.definitions``), and on ``problems`` as ``{step, path, message}`` for the canvas;
``catalog/`` serves the registries' step types, actions and triggers with their forms. See
docs/workflows.md, "REST API" and "The catalog".
"""

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_view
from drf_spectacular.utils import inline_serializer as inline
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from marketing.api import CrudViewSet
from marketing.api_auth import HasServerKey
from marketing.models import Contact, Segment, SegmentMembership
from workflows import selectors, services
from workflows.analytics import automation_performance
from workflows.catalog import workflow_catalog
from workflows.definitions import definition_problems, problems_for
from workflows.diff import definition_diff
from workflows.dry_run import DECISIONS, MAX_EVENTS, workflow_dry_run
from workflows.models import (
    ACTIVE_STATUSES,
    InstanceStatus,
    Workflow,
    WorkflowInstance,
    WorkflowStepRun,
    WorkflowTemplate,
    WorkflowVersion,
)
from workflows.projection import workflow_project

MAX_CONTACT_IDS = 1000
PAGE_PARAMETERS = [
    OpenApiParameter("page", int, description="A page number within the paginated result set."),
    OpenApiParameter("page_size", int, description="Results per page (default 50, at most 500)."),
]

# -- serializers ------------------------------------------------------------------------------


class WorkflowInput(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    definition = serializers.JSONField(help_text="The draft definition (trigger, settings, steps): docs/workflows.md.")

    def validate_slug(self, value):
        # workflow_update does not check it, and the unique constraint would answer 500.
        workflow = self.context.get("workflow")
        taken = Workflow.objects.filter(org=self.context["request"].auth.org, slug=value)
        if workflow is not None:
            taken = taken.exclude(pk=workflow.pk)
        if taken.exists():
            raise serializers.ValidationError("A workflow with this slug already exists.")
        return value


class VersionOutput(serializers.ModelSerializer):
    class Meta:
        model = WorkflowVersion
        fields = ("id", "number", "published_at")
        read_only_fields = fields


def _status_field(choices) -> serializers.CharField:
    # Text, not an enum: the list and detail components would both carry the choice set, which
    # drf-spectacular can only name with a hash (a schema warning that fails check --deploy).
    return serializers.CharField(read_only=True, help_text=f"One of: {', '.join(choices)}.")


class WorkflowOutput(serializers.ModelSerializer):
    status = _status_field(Workflow.Status.values)
    definition = serializers.JSONField(source="draft_definition", read_only=True)
    live_version = VersionOutput(read_only=True, allow_null=True)
    webhook_url = serializers.SerializerMethodField(help_text="Where a webhook-triggered workflow takes deliveries.")

    class Meta:
        model = Workflow
        fields = (
            "id",
            "name",
            "slug",
            "description",
            "status",
            "definition",
            "live_version",
            "trigger_type",
            "trigger_event",
            "template",
            "webhook_url",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.STR)
    def get_webhook_url(self, workflow) -> str:
        url = reverse("workflow-webhook", args=[workflow.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request is not None else url


class WorkflowDetailOutput(WorkflowOutput):
    """One workflow, with the secret that signs its inbound and outbound webhooks."""

    running_runs = serializers.SerializerMethodField(
        help_text="Runs not finished yet (pending, running, waiting or paused): publishing asks what happens to them."
    )

    class Meta(WorkflowOutput.Meta):
        fields = (*WorkflowOutput.Meta.fields, "webhook_secret", "running_runs")
        read_only_fields = fields

    def get_running_runs(self, workflow) -> int:
        return selectors.running_runs(workflow=workflow).count()


class VersionDetailOutput(serializers.ModelSerializer):
    published_by = serializers.SerializerMethodField(help_text="The username of who published it; null for a key.")

    class Meta:
        model = WorkflowVersion
        fields = ("id", "number", "published_at", "published_by", "definition")
        read_only_fields = fields

    def get_published_by(self, version) -> str | None:
        return version.published_by.get_username() if version.published_by else None


class StepRunOutput(serializers.ModelSerializer):
    class Meta:
        model = WorkflowStepRun
        fields = (
            "id",
            "step_id",
            "step_type",
            "visit",
            "attempt",
            "status",
            "started_at",
            "completed_at",
            "duration_ms",
            "output",
            "error",
            "next_step",
        )
        read_only_fields = fields


class InstanceOutput(serializers.ModelSerializer):
    status = _status_field(InstanceStatus.values)
    version = serializers.IntegerField(source="version.number", read_only=True, help_text="The version's number.")

    class Meta:
        model = WorkflowInstance
        fields = (
            "id",
            "workflow",
            "version",
            "contact",
            "status",
            "result",
            "current_step",
            "wake_at",
            "trigger_type",
            "triggered_at",
            "started_at",
            "finished_at",
            "error",
        )
        read_only_fields = fields


class InstanceDetailOutput(InstanceOutput):
    step_runs = StepRunOutput(many=True, read_only=True)

    class Meta(InstanceOutput.Meta):
        fields = (*InstanceOutput.Meta.fields, "trigger_key", "trigger_data", "tokens", "context", "step_runs")
        read_only_fields = fields


class MoveInput(serializers.Serializer):
    map = serializers.DictField(
        child=serializers.CharField(max_length=100),
        required=False,
        default=dict,
        help_text="Old step id → new step id; a step left out keeps its id.",
    )


class PublishInput(serializers.Serializer):
    migrate = MoveInput(
        required=False,
        help_text="Move running runs to the new version with this step map ({} keeps step ids); "
        "without it they finish on their version.",
    )


class DefinitionInput(serializers.Serializer):
    definition = serializers.JSONField()


class EnrolInput(serializers.Serializer):
    contact_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, min_length=1, max_length=MAX_CONTACT_IDS
    )
    segment = serializers.SlugField(required=False, help_text="Enrol the segment's current members.")

    def validate(self, attrs):
        if ("contact_ids" in attrs) == ("segment" in attrs):
            raise serializers.ValidationError({"non_field_errors": ["Send either contact_ids or segment."]})
        return attrs


class SimulatedEventInput(serializers.Serializer):
    type = serializers.CharField(max_length=100)
    after = serializers.CharField(default="PT0S", help_text="ISO-8601 duration from the start, e.g. P1DT2H.")
    properties = serializers.DictField(required=False, default=dict)


class DryRunInput(serializers.Serializer):
    contact_id = serializers.IntegerField(min_value=1)
    start = serializers.DateTimeField(required=False, help_text="The simulated start (default now).")
    events = SimulatedEventInput(many=True, required=False, max_length=MAX_EVENTS)
    approvals = serializers.JSONField(
        required=False,
        default=True,
        help_text=f"true (approve every approval step), false (reject), or {{step id: {' | '.join(DECISIONS)}}}.",
    )
    draft = serializers.BooleanField(default=False, help_text="Run the draft instead of the live version.")
    definition = serializers.JSONField(required=False, help_text="Run this definition instead (not saved).")
    trigger = serializers.DictField(required=False, default=dict, help_text="The trigger data the run sees.")
    max_steps = serializers.IntegerField(min_value=1, max_value=1000, default=200)

    def validate_contact_id(self, value):
        if not Contact.objects.filter(org=self.context["request"].auth.org, pk=value).exists():
            raise serializers.ValidationError(f"No contact with id {value}.")
        return value


STATUS_CHANGED = inline(
    "WorkflowStatusChanged",
    {
        "workflow": WorkflowOutput(),
        "instances": serializers.IntegerField(help_text="Runs paused, resumed or cancelled."),
    },
)
PROBLEM = {
    "step": serializers.CharField(allow_null=True, help_text="The step's id; null for the trigger or settings."),
    "path": serializers.CharField(allow_blank=True, help_text="The field, e.g. config.duration; empty: the step."),
    "message": serializers.CharField(),
}
VALIDATED = inline(
    "DefinitionValid",
    {
        "valid": serializers.BooleanField(),
        "errors": serializers.ListField(child=serializers.CharField(), help_text="Each problem as a sentence."),
        "problems": inline(
            "DefinitionProblem",
            PROBLEM,
            many=True,
            required=False,
            help_text="Each problem with the step and field it is on (when not valid).",
        ),
    },
)
CATALOG_ITEM = {
    "label": serializers.CharField(),
    "description": serializers.CharField(),
    "schema": serializers.DictField(help_text="The JSON schema of its form (edges are not fields)."),
    "ui": serializers.DictField(child=serializers.CharField(), help_text="Field path → widget."),
    "edges": serializers.ListField(
        child=serializers.DictField(), help_text='Its exits: {"field", "label"} or {"array", "field", "label_from"}.'
    ),
}
CATALOG = inline(
    "WorkflowCatalog",
    {
        "steps": inline("CatalogStep", {"type": serializers.CharField(), **CATALOG_ITEM}, many=True),
        "actions": inline("CatalogAction", {"name": serializers.CharField(), **CATALOG_ITEM}, many=True),
        "triggers": inline("CatalogTrigger", {"name": serializers.CharField(), **CATALOG_ITEM}, many=True),
    },
)
ENROLLED = inline(
    "WorkflowEnrolled",
    {
        "enrolled": serializers.IntegerField(help_text="Runs started."),
        "requested": serializers.IntegerField(help_text="Contacts asked for; the re-enrolment policy may skip some."),
    },
)
ANALYTICS = inline(
    "WorkflowAnalytics",
    {
        "enrolled": serializers.IntegerField(),
        "active": serializers.IntegerField(),
        "completed": serializers.IntegerField(),
        "goal_reached": serializers.IntegerField(),
        "failed": serializers.IntegerField(),
        "steps": serializers.DictField(help_text="Per step id: runs, failed, median_s."),
        "performance": serializers.DictField(help_text="The workflow's row of v_automation_performance."),
    },
)


class ProjectionInput(serializers.Serializer):
    segment = serializers.SlugField(max_length=100, help_text="The slug of the segment whose members would start.")


PROJECTION = inline(
    "ProjectionResult",
    {
        "contacts": serializers.IntegerField(help_text="The segment's members."),
        "steps": serializers.DictField(child=serializers.IntegerField(), help_text="Step id: contacts reaching it."),
        "sends": serializers.IntegerField(help_text="Messages the send steps would send."),
        "blocked": serializers.DictField(
            child=serializers.IntegerField(), help_text="Sends stopped for good: consent, suppression, no_address."
        ),
        "held": serializers.DictField(
            child=serializers.IntegerField(), help_text="Sends held until a window opens: frequency_cap, quiet_hours."
        ),
        "sample_size": serializers.IntegerField(
            allow_null=True, help_text="null: exact; else the members dry-run, whose sums were scaled up."
        ),
    },
)
DIFF_SIDE = {
    "version": serializers.IntegerField(allow_null=True, help_text="The version's number; null: the draft or nothing."),
    "label": serializers.CharField(help_text="“version 2”, “the draft” or “nothing published yet”."),
}
DIFF = inline(
    "WorkflowDiff",
    {
        "from": inline("WorkflowDiffFrom", DIFF_SIDE),
        "to": inline("WorkflowDiffTo", DIFF_SIDE),
        "added": serializers.ListField(child=serializers.CharField(), help_text="Ids of the steps added."),
        "removed": serializers.ListField(child=serializers.CharField(), help_text="Ids of the steps removed."),
        "changed": inline(
            "WorkflowDiffChanged",
            {
                "step": serializers.CharField(),
                "fields": serializers.ListField(child=serializers.CharField(), help_text="What changed, in words."),
                "paths": serializers.ListField(
                    child=serializers.CharField(), help_text="The fields, e.g. config.subject."
                ),
            },
            many=True,
            help_text="Steps in both whose fields differ (a new position on the canvas is not a change).",
        ),
        "trigger_changed": serializers.BooleanField(),
        "trigger_fields": serializers.ListField(child=serializers.CharField()),
        "settings_changed": serializers.ListField(child=serializers.CharField()),
        "first_step": serializers.DictField(allow_null=True, help_text="{from, to}: when runs start at another step."),
        "steps": serializers.DictField(help_text="Step id: {name, type, kind} of each step named above."),
        "summary": serializers.ListField(child=serializers.CharField(), help_text="The changes as sentences."),
    },
)
DRY_RUN = inline(
    "DryRunResult",
    {
        "workflow": serializers.DictField(),
        "definition": serializers.CharField(help_text="Which definition ran."),
        "contact": serializers.DictField(),
        "started_at": serializers.DateTimeField(),
        "ended_at": serializers.DateTimeField(allow_null=True),
        "simulated_until": serializers.DateTimeField(),
        "status": serializers.CharField(),
        "result": serializers.CharField(),
        "error": serializers.CharField(),
        "stopped": serializers.CharField(allow_null=True, help_text="max_steps, horizon or waits_forever."),
        "waiting_at": serializers.ListField(child=serializers.CharField()),
        "steps_run": serializers.IntegerField(),
        "path": serializers.ListField(child=serializers.DictField()),
        "actions": serializers.ListField(child=serializers.DictField(), help_text="What the actions would have done."),
        "events": serializers.ListField(child=serializers.DictField()),
    },
)


# -- filters ----------------------------------------------------------------------------------


class WorkflowFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Workflow.Status.choices)
    trigger_type = django_filters.CharFilter()

    class Meta:
        model = Workflow
        fields = ()


class InstanceFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=InstanceStatus.choices)
    workflow = django_filters.NumberFilter(field_name="workflow_id")
    contact = django_filters.NumberFilter(field_name="contact_id")

    class Meta:
        model = WorkflowInstance
        fields = ()


# -- views ------------------------------------------------------------------------------------


def _refuse(field: str, message: str):
    raise ValidationError({field: [message]})


def _definition_at(workflow: Workflow, field: str, wanted: str) -> tuple[dict | None, dict]:
    """The definition ``wanted`` names (a version number, ``live`` or ``draft``) and how to say it."""
    wanted = wanted.strip().lower()
    if wanted == "draft":
        return workflow.draft_definition, {"version": None, "label": "the draft"}
    if wanted == "live":
        version = workflow.live_version
        if version is None:
            return None, {"version": None, "label": "nothing published yet"}
    else:
        numbers = list(workflow.versions.order_by("number").values_list("number", flat=True))
        number = int(wanted) if wanted.isascii() and wanted.isdigit() and len(wanted) < 10 else None
        version = workflow.versions.filter(number=number).first() if number is not None else None
        if version is None:
            known = f"it has versions {numbers[0]} to {numbers[-1]}" if numbers else "it has no version yet"
            _refuse(field, f"No version “{wanted}” of this workflow ({known}); give a number, live or draft.")
    return version.definition, {"version": version.number, "label": f"version {version.number}"}


@extend_schema_view(
    create=extend_schema(request=WorkflowInput, responses={201: WorkflowDetailOutput}),
    retrieve=extend_schema(responses=WorkflowDetailOutput),
    update=extend_schema(request=WorkflowInput, responses=WorkflowDetailOutput),
    partial_update=extend_schema(request=WorkflowInput, responses=WorkflowDetailOutput),
)
class WorkflowViewSet(CrudViewSet):
    """Workflows of the key's org: the draft definition is edited here and published as a
    version; runs start on the live version."""

    model = Workflow
    input_serializer = WorkflowInput
    output_serializer = WorkflowOutput
    permission_classes = [HasServerKey]
    filterset_class = WorkflowFilter
    search_fields = ("name", "slug")
    ordering_fields = ("name", "slug", "created_at", "updated_at")
    ordering = ("name", "id")

    def org_queryset(self, org):
        return Workflow.objects.filter(org=org).select_related("live_version")

    def get_serializer_class(self):
        return WorkflowDetailOutput if self.action == "retrieve" else WorkflowOutput

    def handle_exception(self, exc):
        # The services refuse a definition with its problems as sentences; the canvas also needs
        # them as {step, path, message} to mark the node and field, so they are added here.
        response = super().handle_exception(exc)
        refused = isinstance(exc, DjangoValidationError) and "definition" in getattr(exc, "error_dict", {})
        if refused and isinstance(response.data, dict):
            sentences = exc.message_dict["definition"]
            problems = problems_for(sentences, definition=self._refused_definition(), org=self.request.auth.org)
            response.data["problems"] = [p.as_dict() for p in problems]
        return response

    def _refused_definition(self):
        if self.action == "publish":
            return self.get_object().draft_definition
        if self.action in ("create", "update", "partial_update") and isinstance(self.request.data, dict):
            return self.request.data.get("definition")
        return None

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if self.action in ("update", "partial_update"):
            context["workflow"] = self.get_object()
        return context

    def _detail(self, workflow, status_code=status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().get(pk=workflow.pk)
        return Response(WorkflowDetailOutput(fresh, context=self.get_serializer_context()).data, status=status_code)

    def create(self, request):
        fields = self._input()
        workflow = services.workflow_create(
            org=request.auth.org,
            name=fields["name"],
            slug=fields["slug"],
            description=fields["description"],
            definition=fields["definition"],
        )
        return self._detail(workflow, status.HTTP_201_CREATED)

    def update(self, request, pk=None, partial=False):
        workflow = self.get_object()
        fields = self._input(partial=partial)
        if "definition" in fields:  # (PATCH: DRF leaves out what was not sent, defaults too)
            fields["draft_definition"] = fields.pop("definition")
        workflow = services.workflow_update(workflow=workflow, **fields)
        return self._detail(workflow)

    def partial_update(self, request, pk=None):
        return self.update(request, pk, partial=True)

    def destroy(self, request, pk=None):
        services.workflow_delete(workflow=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    # -- lifecycle ------------------------------------------------------------------------------

    @extend_schema(
        summary="Publish the draft as a new live version (optionally moving running runs to it)",
        request=PublishInput,
        responses=WorkflowDetailOutput,
    )
    @action(detail=True, methods=["post"])
    def publish(self, request, pk=None):
        workflow = self.get_object()
        fields = PublishInput(data=request.data)
        fields.is_valid(raise_exception=True)
        migrate = fields.validated_data.get("migrate")
        services.workflow_publish(workflow=workflow, by=request.user, migrate=migrate)  # None for a key
        return self._detail(workflow)

    def _status_changed(self, workflow: Workflow, instances: int) -> Response:
        fresh = self.get_queryset().get(pk=workflow.pk)
        return Response(
            {"workflow": WorkflowOutput(fresh, context=self.get_serializer_context()).data, "instances": instances}
        )

    @extend_schema(
        summary="Pause: no new runs, and running ones stop where they are", request=None, responses=STATUS_CHANGED
    )
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        workflow = self.get_object()
        if workflow.status != Workflow.Status.ACTIVE:
            _refuse("status", f"Only an active workflow can be paused; this one is {workflow.status}.")
        return self._status_changed(workflow, services.workflow_pause(workflow=workflow))

    @extend_schema(summary="Resume a paused workflow and its paused runs", request=None, responses=STATUS_CHANGED)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        workflow = self.get_object()
        if workflow.status != Workflow.Status.PAUSED:
            _refuse("status", f"Only a paused workflow can be resumed; this one is {workflow.status}.")
        return self._status_changed(workflow, services.workflow_resume(workflow=workflow))

    @extend_schema(summary="Archive: cancels the active runs", request=None, responses=STATUS_CHANGED)
    @action(detail=True, methods=["post"])
    def archive(self, request, pk=None):
        workflow = self.get_object()
        if workflow.status == Workflow.Status.ARCHIVED:
            _refuse("status", "This workflow is archived already.")
        return self._status_changed(workflow, services.workflow_archive(workflow=workflow))

    @extend_schema(
        summary="Check a definition without saving it",
        request=DefinitionInput,
        responses={200: VALIDATED, 400: VALIDATED},
    )
    @action(detail=False, methods=["post"], filter_backends=[])
    def validate(self, request):
        serializer = DefinitionInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        problems = definition_problems(serializer.validated_data["definition"], org=request.auth.org)
        if not problems:
            return Response({"valid": True, "errors": []})
        return Response(
            {
                "valid": False,
                "errors": [p.sentence for p in problems],
                "problems": [p.as_dict() for p in problems],
            },
            status=status.HTTP_400_BAD_REQUEST,
        )

    @extend_schema(
        summary="The step types, actions and triggers a definition can use, with their forms",
        responses=CATALOG,
    )
    @action(detail=False, methods=["get"], filter_backends=[], pagination_class=None)
    def catalog(self, request):
        return Response(workflow_catalog())

    # -- runs -----------------------------------------------------------------------------------

    @extend_schema(
        summary="Enrol contacts (or a segment's members) by hand",
        request=EnrolInput,
        responses=ENROLLED,
    )
    @action(detail=True, methods=["post"])
    def enrol(self, request, pk=None):
        workflow = self.get_object()
        serializer = EnrolInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        org = request.auth.org
        if workflow.status != Workflow.Status.ACTIVE:
            _refuse("workflow", f"“{workflow.name}” is {workflow.status}: only an active workflow takes new runs.")
        if "segment" in serializer.validated_data:
            segment = Segment.objects.filter(org=org, slug=serializer.validated_data["segment"]).first()
            if segment is None:
                _refuse("segment", f"No segment with slug “{serializer.validated_data['segment']}”.")
            ids = list(
                SegmentMembership.objects.filter(org=org, segment=segment, exited_at__isnull=True).values_list(
                    "contact_id", flat=True
                )
            )
        else:
            wanted = set(serializer.validated_data["contact_ids"])
            ids = list(Contact.objects.filter(org=org, pk__in=wanted).values_list("pk", flat=True))
            unknown = sorted(wanted - set(ids))
            if unknown:
                _refuse("contact_ids", f"No contact with id {', '.join(map(str, unknown))}.")
        enrolled = services.workflow_enrol_manually(workflow=workflow, contact_ids=ids, by=request.user) if ids else 0
        return Response({"enrolled": enrolled, "requested": len(ids)})

    @extend_schema(
        summary="The workflow's runs, newest first",
        parameters=[
            OpenApiParameter("status", str, enum=InstanceStatus.values, description="Only runs in this status."),
            *PAGE_PARAMETERS,
        ],
        responses=InstanceOutput(many=True),
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def instances(self, request, pk=None):
        workflow = self.get_object()
        runs = WorkflowInstance.objects.filter(org=request.auth.org, workflow=workflow).select_related("version")
        wanted = request.query_params.get("status")
        if wanted:
            if wanted not in InstanceStatus.values:
                _refuse("status", f"One of {', '.join(InstanceStatus.values)}.")
            runs = runs.filter(status=wanted)
        page = self.paginate_queryset(runs.order_by("-triggered_at", "-id"))
        return self.get_paginated_response(InstanceOutput(page, many=True).data)

    @extend_schema(summary="Counts per status and per step, and the performance view's row", responses=ANALYTICS)
    @action(detail=True, methods=["get"], filter_backends=[])
    def analytics(self, request, pk=None):
        workflow = self.get_object()
        performance = automation_performance(org=request.auth.org, workflow_id=workflow.pk)
        row = performance[0] if performance else {}
        row.pop("workflow_id", None)
        row.pop("name", None)
        return Response({**selectors.workflow_analytics(workflow=workflow), "performance": row})

    @extend_schema(
        summary="The published versions, newest first, with their definitions",
        parameters=PAGE_PARAMETERS,
        responses=VersionDetailOutput(many=True),
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def versions(self, request, pk=None):
        workflow = self.get_object()
        versions = WorkflowVersion.objects.filter(workflow=workflow).select_related("published_by")
        page = self.paginate_queryset(versions.order_by("-number"))
        return self.get_paginated_response(VersionDetailOutput(page, many=True).data)

    @extend_schema(
        summary="What changed between two versions, or a version and the draft",
        description=(
            "Steps added, removed and changed (matched by id; a step moved on the canvas is not "
            "changed), the trigger, the settings and the first step, with the changes as sentences "
            "(`summary`). Compare the live version with the draft by default."
        ),
        parameters=[
            OpenApiParameter("from", str, description="A version number, `live` (default) or `draft`."),
            OpenApiParameter("to", str, description="A version number, `live` or `draft` (default)."),
        ],
        responses=DIFF,
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def diff(self, request, pk=None):
        workflow = self.get_object()
        old, before = _definition_at(workflow, "from", request.query_params.get("from") or "live")
        new, after = _definition_at(workflow, "to", request.query_params.get("to") or "draft")
        return Response({"from": before, "to": after, **definition_diff(old, new)})

    @extend_schema(
        summary="Run one contact through the workflow on a simulated clock, sending nothing",
        request=DryRunInput,
        responses=DRY_RUN,
    )
    @action(detail=True, methods=["post"], url_path="dry-run", filter_backends=[])
    def dry_run(self, request, pk=None):
        workflow = self.get_object()
        serializer = DryRunInput(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        contact = Contact.objects.select_related("company").get(org=request.auth.org, pk=data["contact_id"])
        result = workflow_dry_run(
            workflow=workflow,
            contact=contact,
            start=data.get("start"),
            definition=data.get("definition"),
            draft=data["draft"],
            events=[dict(e) for e in data.get("events", [])],
            approve=data["approvals"],
            trigger_data=data["trigger"],
            max_steps=data["max_steps"],
        )
        return Response(result)

    @extend_schema(
        summary="Projected volume over a segment, before publishing",
        description=(
            "What the workflow would do if every member of the segment started it now: contacts "
            "reaching each step, messages sent, blocked and held by the guards. It projects the draft "
            "when the draft has steps (a marketer previews before publishing), else the live version. "
            "Every wait times out and every approval is approved. Exact where every condition compiles "
            "to SQL; otherwise a deterministic sample of members is dry-run and scaled up "
            "(`sample_size`)."
        ),
        request=ProjectionInput,
        responses=PROJECTION,
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def projection(self, request, pk=None):
        workflow = self.get_object()
        serializer = ProjectionInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        slug = serializer.validated_data["segment"]
        segment = Segment.objects.filter(org=request.auth.org, slug=slug).first()
        if segment is None:
            _refuse("segment", f"No segment with slug “{slug}”.")
        return Response(workflow_project(workflow=workflow, segment=segment))


@extend_schema_view(
    list=extend_schema(parameters=PAGE_PARAMETERS),
    retrieve=extend_schema(responses=InstanceDetailOutput),
)
class WorkflowInstanceViewSet(CrudViewSet):
    """Runs of the key's org (one contact's run of one workflow version), with their step runs."""

    model = WorkflowInstance
    output_serializer = InstanceOutput
    permission_classes = [HasServerKey]
    filterset_class = InstanceFilter
    ordering_fields = ("triggered_at", "started_at", "finished_at")
    ordering = ("-triggered_at", "-id")

    def org_queryset(self, org):
        runs = WorkflowInstance.objects.filter(org=org).select_related("version")
        if self.action != "list":
            runs = runs.prefetch_related("step_runs")
        return runs

    def get_serializer_class(self):
        return InstanceOutput if self.action == "list" else InstanceDetailOutput

    def _changed(self, instance: WorkflowInstance, changed: int, verb: str) -> Response:
        if not changed:  # it moved on between the check and the change
            _refuse("status", f"This run could not be {verb}; it is {instance.status} now.")
        return Response(InstanceDetailOutput(self.get_queryset().get(pk=instance.pk)).data)

    def _one(self, instance):
        return WorkflowInstance.objects.filter(org_id=instance.org_id, pk=instance.pk)

    @extend_schema(summary="Pause the run where it is", request=None, responses=InstanceDetailOutput)
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        instance = self.get_object()
        if instance.status not in (InstanceStatus.PENDING, InstanceStatus.WAITING):
            _refuse("status", f"Only a pending or waiting run can be paused; this one is {instance.status}.")
        return self._changed(instance, services.instances_pause(instances=self._one(instance)), "paused")

    @extend_schema(summary="Resume a paused run", request=None, responses=InstanceDetailOutput)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        instance = self.get_object()
        if instance.status != InstanceStatus.PAUSED:
            _refuse("status", f"Only a paused run can be resumed; this one is {instance.status}.")
        return self._changed(instance, services.instances_resume(instances=self._one(instance)), "resumed")

    @extend_schema(summary="Cancel the run", request=None, responses=InstanceDetailOutput)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        instance = self.get_object()
        if instance.status not in ACTIVE_STATUSES:
            _refuse("status", f"Only an active run can be cancelled; this one is {instance.status}.")
        return self._changed(instance, services.instances_cancel(instances=self._one(instance)), "cancelled")

    @extend_schema(summary="Retry a failed run from the step that failed", request=None, responses=InstanceDetailOutput)
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        instance = self.get_object()
        if instance.status != InstanceStatus.FAILED:
            _refuse("status", f"Only a failed run can be retried; this one is {instance.status}.")
        return self._changed(instance, services.instances_retry(instances=self._one(instance)), "retried")


# -- the template library -----------------------------------------------------------------------


class WorkflowTemplateOutput(serializers.ModelSerializer):
    class Meta:
        model = WorkflowTemplate
        fields = ("id", "slug", "name", "description", "category", "tags", "usage_count", "updated_at")
        read_only_fields = fields


class TemplateUseInput(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, default="", help_text="Default: the template's.")
    slug = serializers.SlugField(
        max_length=100, required=False, default="", help_text="Default: the template's (then -2, -3, … when taken)."
    )


class CreatedOutput(serializers.Serializer):
    slug = serializers.CharField()
    reused = serializers.BooleanField(help_text="It existed (by slug) and was kept as it is.")


class TemplateUseOutput(serializers.Serializer):
    workflow = WorkflowDetailOutput()
    created = inline(
        "LibraryCreated",
        {
            "message_templates": CreatedOutput(many=True),
            "segments": CreatedOutput(many=True),
            "destinations": CreatedOutput(many=True),
        },
    )


class WorkflowTemplateViewSet(CrudViewSet):
    """The org's template library. Using a template makes a draft workflow and the message
    templates, segments and destinations it names that the org lacks (drafts: publish the
    templates and activate the destinations before the workflow)."""

    model = WorkflowTemplate
    output_serializer = WorkflowTemplateOutput
    permission_classes = [HasServerKey]
    search_fields = ("name", "slug", "description")
    ordering_fields = ("name", "category", "usage_count")
    ordering = ("category", "name", "id")

    def org_queryset(self, org):
        return WorkflowTemplate.objects.filter(org=org, status=WorkflowTemplate.Status.ACTIVE)

    @extend_schema(
        summary="Use the template: a draft workflow and what it names",
        request=TemplateUseInput,
        responses={201: TemplateUseOutput},
    )
    @action(detail=True, methods=["post"])
    def use(self, request, pk=None):
        template = self.get_object()
        serializer = TemplateUseInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = serializer.validated_data
        by = request.user if getattr(request.user, "is_authenticated", False) else None
        workflow, created = services.library_use(template=template, by=by, name=fields["name"], slug=fields["slug"])
        fresh = Workflow.objects.select_related("live_version").get(pk=workflow.pk)
        output = WorkflowDetailOutput(fresh, context=self.get_serializer_context()).data
        return Response({"workflow": output, "created": created}, status=status.HTTP_201_CREATED)
