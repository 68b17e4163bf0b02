"""REST API of segments and of the condition language: ``/api/v1/segments/`` (with
``segments/preview/``, what a rule would select before it is saved) and
``/api/v1/conditions/validate/``.

Segments are written through ``marketing.segments`` (which validates a dynamic segment's rule,
compiles it to SQL and computes its members); the views validate input, call the service and
serialise. The org is the API key's or the console session's; another org's segment id answers 404.
"""

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from marketing import selectors
from marketing.api import ContactOutput, CrudViewSet
from marketing.api_auth import HasServerKey
from marketing.audit import Verb, audit_record
from marketing.conditions import NotCompilable, to_q, validate
from marketing.conditions.fields import SUBJECTS
from marketing.models import Contact, Segment
from marketing.segments import (
    contacts_matching_rule,
    segment_add_contacts,
    segment_delete,
    segment_recompute,
    segment_remove_contacts,
    segment_save,
)

MAX_CONTACT_IDS = 1000
PREVIEW_SAMPLE = 10


class SegmentInput(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    kind = serializers.ChoiceField(choices=Segment.Kind.choices, default=Segment.Kind.DYNAMIC)
    rule = serializers.JSONField(
        required=False, allow_null=True, default=None, help_text="A JsonLogic rule over contacts (dynamic only)."
    )


class SegmentOutput(serializers.ModelSerializer):
    rule = serializers.JSONField(read_only=True, allow_null=True)

    class Meta:
        model = Segment
        fields = (
            "id",
            "name",
            "slug",
            "description",
            "kind",
            "rule",
            "member_count",
            "computed_at",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


class SegmentFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=Segment.Kind.choices)

    class Meta:
        model = Segment
        fields = ()


class ContactIdsInput(serializers.Serializer):
    contact_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), min_length=1, max_length=MAX_CONTACT_IDS
    )


class PreviewInput(serializers.Serializer):
    rule = serializers.JSONField(help_text="A JsonLogic rule over contacts, as a dynamic segment holds.")


class PreviewOutput(serializers.Serializer):
    count = serializers.IntegerField(help_text="Contacts the rule selects now: the count saving would give.")
    sample = ContactOutput(many=True, help_text=f"The first {PREVIEW_SAMPLE} of them, by id.")


MembersChanged = inline_serializer(
    "SegmentMembersChanged",
    {
        "added": serializers.IntegerField(required=False, help_text="Contacts that entered (POST)."),
        "removed": serializers.IntegerField(required=False, help_text="Contacts that left (DELETE)."),
        "member_count": serializers.IntegerField(),
    },
)
PAGE_PARAMETERS = [
    OpenApiParameter("page", int, description="A page number within the paginated result set."),
    OpenApiParameter("page_size", int, description="Results per page (default 50, at most 500)."),
]


@extend_schema_view(
    create=extend_schema(request=SegmentInput, responses={201: SegmentOutput}),
    update=extend_schema(request=SegmentInput, responses=SegmentOutput),
    partial_update=extend_schema(request=SegmentInput, responses=SegmentOutput),
)
class SegmentViewSet(CrudViewSet):
    """Segments of the key's org: dynamic ones are a rule kept in step with the contacts,
    static ones a set of contacts added by hand."""

    model = Segment
    input_serializer = SegmentInput
    output_serializer = SegmentOutput
    filterset_class = SegmentFilter
    search_fields = ("name", "slug")
    ordering_fields = ("name", "slug", "created_at", "member_count")
    ordering = ("name", "id")

    def org_queryset(self, org):
        return Segment.objects.filter(org=org)

    def create(self, request):
        segment = segment_save(org=request.auth.org, **self._input())
        return self._output(segment, status.HTTP_201_CREATED)

    def update(self, request, pk=None, partial=False):
        segment = self.get_object()
        current = {
            "name": segment.name,
            "slug": segment.slug,
            "description": segment.description,
            "kind": segment.kind,
            "rule": segment.rule,
        }
        fields = self._input(partial=partial)
        if partial:  # PATCH: what was not sent stays as it is
            fields = {**current, **fields}
        segment = segment_save(org=request.auth.org, segment=segment, **fields)
        return self._output(segment)

    def partial_update(self, request, pk=None):
        return self.update(request, pk, partial=True)

    def destroy(self, request, pk=None):
        segment_delete(segment=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="What a rule would select now (count and a sample), without saving a segment",
        description="Checked and compiled to SQL as saving a dynamic segment does: a rule with an unknown "
        "field or operator, or a part with no SQL form, is a 400 naming it on `rule`.",
        request=PreviewInput,
        responses={200: PreviewOutput},
    )
    @action(detail=False, methods=["post"], filter_backends=[])
    def preview(self, request):
        serializer = PreviewInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        rule, org = serializer.validated_data["rule"], request.auth.org
        if rule is None:
            raise ValidationError({"rule": ["Write a rule first (or build one with the rule builder)."]})
        try:
            chosen = contacts_matching_rule(org=org, rule=rule)
        except DjangoValidationError as exc:
            raise ValidationError({"rule": exc.messages}) from None
        matching = selectors.contacts_for(org=org).filter(pk__in=chosen.values("pk"))
        sample = matching.order_by("pk")[:PREVIEW_SAMPLE]
        return Response({"count": matching.count(), "sample": ContactOutput(sample, many=True).data})

    # -- members --------------------------------------------------------------------------------

    @extend_schema(
        summary="The segment's current members, newest entries first",
        parameters=PAGE_PARAMETERS,
        responses=ContactOutput(many=True),
    )
    @action(detail=True, methods=["get"], url_path="contacts", filter_backends=[])
    def contacts(self, request, pk=None):
        segment = self.get_object()
        members = (
            selectors.contacts_for(org=request.auth.org)
            .filter(segment_memberships__segment=segment, segment_memberships__exited_at__isnull=True)
            .order_by("-segment_memberships__entered_at", "-id")
        )
        page = self.paginate_queryset(members)
        # Contacts read: one audit entry for the page, with its size (not the ids).
        audit_record(
            org=request.auth.org, verb=Verb.LISTED, target=segment, fields=ContactOutput.Meta.fields, count=len(page)
        )
        return self.get_paginated_response(ContactOutput(page, many=True).data)

    @extend_schema(
        summary="Add contacts to a static segment",
        request=ContactIdsInput,
        responses={200: MembersChanged},
    )
    @contacts.mapping.post
    def add_contacts(self, request, pk=None):
        segment = self.get_object()
        added = segment_add_contacts(segment=segment, contacts=self._contacts(request))
        return self._members_changed(segment, added=added)

    @extend_schema(
        summary="Take contacts out of a static segment",
        description='The body is the same as for adding: `{"contact_ids": [1, 2]}` (OpenAPI 3.0 cannot '
        "describe a DELETE body). Their stay is closed, not deleted.",
        request=ContactIdsInput,
        responses={200: MembersChanged},
    )
    @contacts.mapping.delete
    def remove_contacts(self, request, pk=None):
        segment = self.get_object()
        removed = segment_remove_contacts(segment=segment, contacts=self._contacts(request))
        return self._members_changed(segment, removed=removed)

    @extend_schema(
        summary="Recompute a dynamic segment now",
        request=None,
        responses={
            200: inline_serializer(
                "SegmentRecomputed",
                {
                    "members": serializers.IntegerField(),
                    "entered": serializers.IntegerField(),
                    "exited": serializers.IntegerField(),
                },
            )
        },
    )
    @action(detail=True, methods=["post"])
    def recompute(self, request, pk=None):
        segment = self.get_object()
        if segment.kind != Segment.Kind.DYNAMIC:
            # A static segment has no rule: recomputing it would take every member out.
            raise ValidationError(
                {"segment": ["Only dynamic segments are recomputed; a static one is edited by hand."]}
            )
        return Response(segment_recompute(segment=segment))

    def _contacts(self, request) -> list[Contact]:
        serializer = ContactIdsInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        ids = set(serializer.validated_data["contact_ids"])
        found = list(Contact.objects.filter(org=request.auth.org, pk__in=ids).only("pk", "org_id"))
        unknown = sorted(ids - {c.pk for c in found})
        if unknown:
            raise ValidationError({"contact_ids": [f"No contact with id {', '.join(map(str, unknown))}."]})
        return found

    def _members_changed(self, segment: Segment, **changed: int) -> Response:
        segment.refresh_from_db(fields=["member_count"])
        return Response({**changed, "member_count": segment.member_count})


class ConditionInput(serializers.Serializer):
    rule = serializers.JSONField(help_text="A JsonLogic rule.")
    subject = serializers.ChoiceField(choices=sorted(SUBJECTS), default="contact")


class ConditionsValidateView(APIView):
    """Checks a rule as it would be checked when saved: every operator and path must be known.

    A valid rule may still have no SQL form (``if``, arithmetic, two fields compared): it can run
    where rules run in Python (workflow conditions) but not as a segment; ``compilable`` says which,
    and ``count`` is how many contacts match now (subject ``contact`` only).
    """

    permission_classes = [HasServerKey]
    permission_model = Contact  # a session needs to read contacts: the answer counts them
    permission_actions = {"post": "view"}

    @extend_schema(
        request=ConditionInput,
        responses={
            200: inline_serializer(
                "ConditionValid",
                {
                    "valid": serializers.BooleanField(),
                    "compilable": serializers.BooleanField(),
                    "not_compilable": serializers.CharField(required=False, help_text="Why it has no SQL form."),
                    "count": serializers.IntegerField(required=False, help_text="Contacts matching now."),
                },
            ),
            400: inline_serializer(
                "ConditionInvalid",
                {"valid": serializers.BooleanField(), "errors": serializers.ListField(child=serializers.CharField())},
            ),
        },
    )
    def post(self, request):
        serializer = ConditionInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        rule, subject = serializer.validated_data["rule"], serializer.validated_data["subject"]
        org = request.auth.org
        try:
            validate(rule, subject, org=org)
        except DjangoValidationError as exc:
            return Response({"valid": False, "errors": exc.messages}, status=status.HTTP_400_BAD_REQUEST)
        try:
            q = to_q(rule, subject, org=org)
        except NotCompilable as exc:
            return Response({"valid": True, "compilable": False, "not_compilable": str(exc)})
        body = {"valid": True, "compilable": True}
        if subject == "contact":
            # distinct: a rule over tags or lists may join a contact once per tag
            body["count"] = Contact.objects.filter(org=org).filter(q).values("pk").distinct().count()
        return Response(body)
