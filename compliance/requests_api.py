"""REST API of data-subject requests: ``/api/v1/data-subject-requests/``.

``POST`` records a request a person made through the org's own channels (its help desk, its
app); the person is mailed a link to confirm it, as from the preference centre. ``GET`` lists
(``?status=``, ``?kind=``, ``?law=``, ``?overdue=true``, ``?email=``) and retrieves them, soonest
due first. The org is the server key's; another org's request answers like a missing one.
Answering requests (extend, complete, reject) happens in the console, where the compliance
team's permissions apply.
"""

import django_filters
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status

from compliance.data_subject_requests import request_receive
from compliance.models import DataSubjectRequest, Law, RequestKind, RequestSource, RequestStatus
from marketing.api import CrudViewSet
from marketing.email_addresses import normalise_email

OPEN_STATUSES = (RequestStatus.UNVERIFIED, RequestStatus.OPEN)


class DataSubjectRequestOutput(serializers.ModelSerializer):
    overdue = serializers.SerializerMethodField()

    class Meta:
        model = DataSubjectRequest
        fields = (
            "id",
            "kind",
            "status",
            "law",
            "source",
            "email",
            "contact",
            "details",
            "received_at",
            "verified_at",
            "due_at",
            "overdue",
            "extended",
            "extension_reason",
            "completed_at",
            "outcome",
        )
        read_only_fields = fields

    def get_overdue(self, obj: DataSubjectRequest) -> bool:
        return obj.status in OPEN_STATUSES and obj.due_at <= self.context.get("now", timezone.now())


class DataSubjectRequestInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=RequestKind.choices)
    email = serializers.CharField(max_length=254, help_text="The person's address; the confirmation link goes there.")
    law = serializers.ChoiceField(
        choices=Law.choices, required=False, help_text="Sets the due date; the installation's default when left out."
    )
    details = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")

    def validate_email(self, value: str) -> str:
        try:
            return normalise_email(value)
        except ValidationError as exc:
            raise serializers.ValidationError(f"Check the address: {exc.messages[0]}") from None


class DataSubjectRequestFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=RequestStatus.choices)
    kind = django_filters.ChoiceFilter(choices=RequestKind.choices)
    law = django_filters.ChoiceFilter(choices=Law.choices)
    email = django_filters.CharFilter(method="filter_email")
    overdue = django_filters.BooleanFilter(method="filter_overdue")

    class Meta:
        model = DataSubjectRequest
        fields = ()

    def filter_email(self, queryset, name, value):
        return queryset.filter(email=value.strip().lower())

    def filter_overdue(self, queryset, name, value):
        late = Q(status__in=OPEN_STATUSES, due_at__lte=timezone.now())
        return queryset.filter(late) if value else queryset.exclude(late)


@extend_schema_view(
    list=extend_schema(summary="The org's data-subject requests, soonest due first"),
    retrieve=extend_schema(summary="One data-subject request"),
    create=extend_schema(
        summary="Record a data-subject request (the person is mailed a link to confirm it)",
        request=DataSubjectRequestInput,
        responses={201: DataSubjectRequestOutput},
    ),
)
class DataSubjectRequestViewSet(CrudViewSet):
    """Data-subject requests of the key's org."""

    model = DataSubjectRequest
    input_serializer = DataSubjectRequestInput
    output_serializer = DataSubjectRequestOutput
    filterset_class = DataSubjectRequestFilter
    ordering_fields = ("due_at", "received_at")
    ordering = ("due_at", "id")
    search_fields = ()

    def org_queryset(self, org):
        return DataSubjectRequest.objects.filter(org=org)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "now": timezone.now()}

    def create(self, request):
        data = self._input()
        made = request_receive(
            org=request.auth.org,
            kind=data["kind"],
            email=data["email"],
            law=data.get("law"),
            details=data["details"],
            source=RequestSource.API,
            by=request.user if getattr(request.user, "is_authenticated", False) else None,
        )
        return self._output(made, status.HTTP_201_CREATED)
