"""REST API of the sales handoff queue: ``/api/v1/handoffs/``.

List (``?contact=``, ``?status=``, ``?assignee=``, ``?reason=``, ``?sla_state=``), retrieve, hand a
contact over by hand (``POST``; 409 when one is open), and the rep's moves as ``POST`` actions
(``accept``, ``reject`` with a ``reason``, ``convert``). The org is the server key's; another
org's handoff or contact answers like a missing one (404, or an empty list).

An API key is an org-level server credential, so it acts as the org (like a sales manager): it
may act on any of the org's handoffs. The console is where per-rep permissions apply.
"""

import django_filters
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from marketing.api import CrudViewSet
from marketing.models import ApiKey, Contact
from scoring.handoffs import (
    LIVE,
    HandoffStateError,
    SlaState,
    handoff_accept,
    handoff_convert,
    handoff_create,
    handoff_reject,
    handoff_sla_state,
    handoffs_visible_to,
    sla_state_q,
)
from scoring.models import Handoff
from scoring.selectors import scoring_model_get


class AssigneeOutput(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class HandoffOutput(serializers.ModelSerializer):
    assignee = serializers.SerializerMethodField()
    sla_state = serializers.SerializerMethodField()

    class Meta:
        model = Handoff
        fields = (
            "id",
            "contact",
            "assignee",
            "status",
            "reason",
            "detail",
            "score",
            "sla_due_at",
            "sla_state",
            "rejection_reason",
            "created_at",
            "accepted_at",
            "closed_at",
        )
        read_only_fields = fields

    @extend_schema_field(AssigneeOutput(allow_null=True))
    def get_assignee(self, obj: Handoff) -> dict | None:
        rep = obj.assignee
        return {"id": rep.pk, "username": rep.username} if rep else None

    @extend_schema_field(serializers.ChoiceField(choices=SlaState.CHOICES))
    def get_sla_state(self, obj: Handoff) -> str:
        return handoff_sla_state(obj, now=self.context.get("now"))


class HandoffInput(serializers.Serializer):
    contact_id = serializers.IntegerField()
    detail = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")

    def validate_contact_id(self, value):
        contact = Contact.objects.filter(org=self.context["request"].auth.org, pk=value).first()
        if contact is None:
            raise serializers.ValidationError("There is no such contact.")
        return contact


class RejectInput(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, help_text="Why the contact goes back to nurture.")


class Conflict(serializers.Serializer):
    detail = serializers.CharField()
    handoff = serializers.IntegerField(required=False)


class HandoffFilter(django_filters.FilterSet):
    contact = django_filters.NumberFilter(field_name="contact_id")
    status = django_filters.ChoiceFilter(choices=Handoff.Status.choices)
    reason = django_filters.ChoiceFilter(choices=Handoff.Reason.choices)
    assignee = django_filters.NumberFilter(field_name="assignee_id")
    sla_state = django_filters.ChoiceFilter(choices=SlaState.CHOICES, method="filter_sla_state")

    class Meta:
        model = Handoff
        fields = ()

    def filter_sla_state(self, queryset, name, value):
        return queryset.filter(sla_state_q(value, now=timezone.now()))


@extend_schema_view(
    list=extend_schema(summary="The org's handoffs (the sales queue)"),
    retrieve=extend_schema(summary="One handoff"),
    create=extend_schema(
        summary="Hand a contact to sales by hand",
        request=HandoffInput,
        responses={201: HandoffOutput, 409: OpenApiResponse(Conflict, description="The contact has an open handoff")},
    ),
)
class HandoffViewSet(CrudViewSet):
    """Handoffs of the key's org, soonest SLA first."""

    model = Handoff
    input_serializer = HandoffInput
    output_serializer = HandoffOutput
    filterset_class = HandoffFilter
    ordering_fields = ("sla_due_at", "created_at", "score")
    ordering = ("sla_due_at", "id")
    search_fields = ()

    def org_queryset(self, org):
        handoffs = Handoff.objects.filter(org=org).select_related("assignee")
        if isinstance(self.request.auth, ApiKey):
            return handoffs
        # A console session sees what the console shows it: a rep their own, a manager all.
        return handoffs_visible_to(user=self.request.user, org=org, queryset=handoffs)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "now": timezone.now()}

    def create(self, request):
        data = self._input()
        org, contact = request.auth.org, data["contact_id"]
        handoff = handoff_create(
            org=org,
            contact=contact,
            reason=Handoff.Reason.MANUAL,
            model=scoring_model_get(org=org),
            detail=data["detail"] or "Handed over through the API",
        )
        if handoff is None:
            live = Handoff.objects.filter(org=org, contact=contact, status__in=LIVE).first()
            return Response(
                {"detail": "This contact already has an open handoff.", "handoff": live.pk if live else None},
                status=status.HTTP_409_CONFLICT,
            )
        return self._output(handoff, status.HTTP_201_CREATED)

    def _act(self, service, **kwargs) -> Response:
        try:
            handoff = service(handoff=self.get_object(), **self._caller(), **kwargs)
        except HandoffStateError as exc:
            return Response({"detail": " ".join(exc.messages)}, status=status.HTTP_409_CONFLICT)
        return self._output(handoff)

    def _caller(self) -> dict:
        """A key acts as the org; a session as its user (the assignee or a manager)."""
        auth = self.request.auth
        return {"api_key": auth} if isinstance(auth, ApiKey) else {"user": self.request.user}

    @extend_schema(
        summary="Accept (the rep takes the contact)",
        request=None,
        responses={200: HandoffOutput, 409: OpenApiResponse(Conflict, description="Not open")},
    )
    @action(detail=True, methods=["post"])
    def accept(self, request, pk=None):
        return self._act(handoff_accept)

    @extend_schema(
        summary="Reject (back to nurture, with a reason)",
        request=RejectInput,
        responses={200: HandoffOutput, 409: OpenApiResponse(Conflict, description="Already closed")},
    )
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        serializer = RejectInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._act(handoff_reject, reason=serializer.validated_data["reason"])

    @extend_schema(
        summary="Mark converted (the contact becomes an opportunity)",
        request=None,
        responses={200: HandoffOutput, 409: OpenApiResponse(Conflict, description="Already closed")},
    )
    @action(detail=True, methods=["post"])
    def convert(self, request, pk=None):
        return self._act(handoff_convert)
