"""REST API of the ground floor: ``/api/v1/contacts/`` and ``/api/v1/companies/``.

Views validate with an input serializer, call a service or selector, and serialise the result.
The org is always the API key's; an id of another org's row answers 404, like a missing one.
"""

from datetime import UTC

import django_filters
from django.core.exceptions import ValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response

from marketing import selectors, services
from marketing.audit import Verb, audit_record
from marketing.models import Company, Contact, LeadStatus, LifecycleStage, Membership, User


@extend_schema_field(OpenApiTypes.INT)
class OrgCompanyField(serializers.PrimaryKeyRelatedField):
    """A company id, looked up in the request's org only."""

    def get_queryset(self):
        return Company.objects.filter(org=self.context["request"].auth.org)


@extend_schema_field(OpenApiTypes.INT)
class OrgMemberField(serializers.PrimaryKeyRelatedField):
    """A user id, among the members of the request's org."""

    def get_queryset(self):
        org = self.context["request"].auth.org
        return User.objects.filter(pk__in=Membership.objects.filter(org=org).values("user_id"))


class ContactInput(serializers.Serializer):
    email = serializers.CharField(max_length=254, required=False, allow_null=True, allow_blank=True)
    phone = serializers.CharField(max_length=40, required=False, allow_blank=True)
    first_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    company = OrgCompanyField(required=False, allow_null=True)
    job_title = serializers.CharField(max_length=200, required=False, allow_blank=True)
    country = serializers.CharField(max_length=2, required=False, allow_blank=True)
    time_zone = serializers.CharField(max_length=64, required=False, allow_blank=True)
    locale = serializers.CharField(max_length=16, required=False, allow_blank=True)
    lifecycle_stage = serializers.ChoiceField(choices=LifecycleStage.choices, required=False)
    lead_status = serializers.ChoiceField(choices=LeadStatus.choices, required=False)
    owner = OrgMemberField(required=False, allow_null=True)
    properties = serializers.DictField(required=False)
    tags = serializers.ListField(child=serializers.CharField(max_length=100), required=False, max_length=100)


class ContactOutput(serializers.ModelSerializer):
    tags = serializers.SlugRelatedField(many=True, read_only=True, slug_field="name")

    class Meta:
        model = Contact
        fields = (
            "id",
            "email",
            "phone",
            "first_name",
            "last_name",
            "company",
            "job_title",
            "country",
            "time_zone",
            "locale",
            "lifecycle_stage",
            "lead_status",
            "owner",
            "score",
            "tags",
            "properties",
            "created_at",
            "updated_at",
            "last_activity_at",
        )
        read_only_fields = fields


class UtcDateTimeField(django_filters.fields.IsoDateTimeField):
    """An ISO-8601 datetime, turned to UTC: PostgreSQL refuses offsets of 16 hours or more, which
    Python accepts (up to 23:59), and a date near year 1 or 9999 may not exist in UTC at all."""

    def to_python(self, value):
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise ValidationError(
                "Enter a date/time that exists in UTC (this one is before year 1 or after 9999 there).",
                code="invalid",
            ) from None


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    """A datetime filter that compares in UTC whatever offset the caller sends."""

    field_class = UtcDateTimeField


# Filters are declared, not derived from Meta.fields: deriving them queries the scoped managers
# at import time, outside any org.
class ContactFilter(django_filters.FilterSet):
    lifecycle_stage = django_filters.ChoiceFilter(choices=LifecycleStage.choices)
    lead_status = django_filters.ChoiceFilter(choices=LeadStatus.choices)
    country = django_filters.CharFilter()
    email = django_filters.CharFilter(method="filter_email")
    company = django_filters.NumberFilter(field_name="company_id")
    owner = django_filters.NumberFilter(field_name="owner_id")
    tag = django_filters.CharFilter(field_name="tags__name")
    list = django_filters.CharFilter(field_name="lists__slug")
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")
    updated_after = UtcDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = Contact
        fields = ()

    def filter_email(self, queryset, name, value):
        return queryset.filter(email=value.strip().lower())


class CompanyInput(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    domain = serializers.CharField(max_length=253, required=False, allow_null=True, allow_blank=True)
    industry = serializers.CharField(max_length=100, required=False, allow_blank=True)
    size = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    revenue = serializers.DecimalField(max_digits=16, decimal_places=2, required=False, allow_null=True)
    properties = serializers.DictField(required=False)


class CompanyOutput(serializers.ModelSerializer):
    class Meta:
        model = Company
        fields = ("id", "name", "domain", "industry", "size", "revenue", "properties", "created_at", "updated_at")
        read_only_fields = fields


class CompanyFilter(django_filters.FilterSet):
    industry = django_filters.CharFilter()
    domain = django_filters.CharFilter(method="filter_domain")

    class Meta:
        model = Company
        fields = ()

    def filter_domain(self, queryset, name, value):
        return queryset.filter(domain=value.strip().lower())


class CrudViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """List and retrieve from the selector; create, update and delete through the services."""

    model: type
    input_serializer: type[serializers.Serializer]
    output_serializer: type[serializers.Serializer]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no API key
            return self.model.objects.none()
        return self.org_queryset(self.request.auth.org)

    def org_queryset(self, org):
        raise NotImplementedError

    def get_serializer_class(self):
        return self.output_serializer

    def _input(self, *, partial: bool = False) -> dict:
        serializer = self.input_serializer(
            data=self.request.data, partial=partial, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def _output(self, obj, status_code=status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().get(pk=obj.pk)  # re-read: tags and the like were just written
        return Response(self.output_serializer(fresh, context=self.get_serializer_context()).data, status=status_code)


@extend_schema_view(
    create=extend_schema(request=ContactInput, responses={201: ContactOutput}),
    update=extend_schema(request=ContactInput, responses=ContactOutput),
    partial_update=extend_schema(request=ContactInput, responses=ContactOutput),
)
class ContactViewSet(CrudViewSet):
    """Contacts of the key's org. Email is stored lower-cased and is unique; phone in E.164."""

    model = Contact
    input_serializer = ContactInput
    output_serializer = ContactOutput
    filterset_class = ContactFilter
    search_fields = ("email", "first_name", "last_name")
    ordering_fields = ("created_at", "updated_at", "score", "email", "last_name")
    ordering = ("-created_at", "-id")

    def org_queryset(self, org):
        return selectors.contacts_for(org=org)

    # Contacts are personal data: every read and write through the API is in the audit log, with
    # the field names (never the values). A list is one entry with the number of contacts
    # returned, not their ids.
    def retrieve(self, request, pk=None):
        response = super().retrieve(request, pk=pk)
        audit_record(
            org=request.auth.org,
            verb=Verb.VIEWED,
            target_type="marketing.contact",
            target_id=pk,
            fields=ContactOutput.Meta.fields,
        )
        return response

    def list(self, request):
        response = super().list(request)
        results = response.data.get("results", response.data) if isinstance(response.data, dict) else response.data
        audit_record(
            org=request.auth.org,
            verb=Verb.LISTED,
            target_type="marketing.contact",
            fields=ContactOutput.Meta.fields,
            count=len(results),
        )
        return response

    def create(self, request):
        data = self._input()
        contact = services.contact_create(org=request.auth.org, **data)
        audit_record(org=request.auth.org, verb=Verb.CREATED, target=contact, fields=data)
        return self._output(contact, status.HTTP_201_CREATED)

    def update(self, request, pk=None, partial=False):
        data = self._input(partial=partial)
        contact = services.contact_update(contact=self.get_object(), **data)
        audit_record(org=request.auth.org, verb=Verb.CHANGED, target=contact, fields=data)
        return self._output(contact)

    def partial_update(self, request, pk=None):
        return self.update(request, pk, partial=True)

    def destroy(self, request, pk=None):
        contact = self.get_object()
        services.contact_delete(contact=contact)
        audit_record(org=request.auth.org, verb=Verb.DELETED, target_type="marketing.contact", target_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    create=extend_schema(request=CompanyInput, responses={201: CompanyOutput}),
    update=extend_schema(request=CompanyInput, responses=CompanyOutput),
    partial_update=extend_schema(request=CompanyInput, responses=CompanyOutput),
)
class CompanyViewSet(CrudViewSet):
    """Companies of the key's org. The domain is stored without scheme or www. and is unique."""

    model = Company
    input_serializer = CompanyInput
    output_serializer = CompanyOutput
    filterset_class = CompanyFilter
    search_fields = ("name", "domain")
    ordering_fields = ("name", "created_at", "size", "revenue")
    ordering = ("name",)

    def org_queryset(self, org):
        return selectors.companies_for(org=org)

    def create(self, request):
        company = services.company_create(org=request.auth.org, **self._input())
        return self._output(company, status.HTTP_201_CREATED)

    def update(self, request, pk=None, partial=False):
        company = services.company_update(company=self.get_object(), **self._input(partial=partial))
        return self._output(company)

    def partial_update(self, request, pk=None):
        return self.update(request, pk, partial=True)

    def destroy(self, request, pk=None):
        services.company_delete(company=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
