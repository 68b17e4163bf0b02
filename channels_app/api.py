"""REST API of channels for the console's pickers: ``/api/v1/message-templates/`` and
``/api/v1/destinations/``, read-only, searchable (``?search=``) and filtered by ``?channel=``.

They list what a workflow step may name (a template by slug, a destination by slug); the org is
the key's or the session's, and another org's id answers 404. A destination's URL and secret are
credentials and are never listed.
"""

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers

from channels_app.models import Channel, Destination, MessageTemplate
from marketing.api import CrudViewSet


class MessageTemplateOutput(serializers.ModelSerializer):
    published = serializers.SerializerMethodField(help_text="Whether a version is live (a step may send it).")
    status = serializers.SerializerMethodField(help_text="published or draft.")
    variants = serializers.SerializerMethodField(help_text="The variants' names, in order.")

    class Meta:
        model = MessageTemplate
        fields = ("id", "slug", "name", "channel", "purpose", "published", "status", "variants", "updated_at")
        read_only_fields = fields

    def get_published(self, template) -> bool:
        return template.live_version_id is not None

    def get_status(self, template) -> str:
        return "published" if template.live_version_id is not None else "draft"

    def get_variants(self, template) -> list[str]:
        variants = template.variants if isinstance(template.variants, list) else []
        return [str(v.get("name", "")) for v in variants if isinstance(v, dict)]


class MessageTemplateFilter(django_filters.FilterSet):
    channel = django_filters.ChoiceFilter(choices=Channel.choices)
    published = django_filters.BooleanFilter(field_name="live_version", lookup_expr="isnull", exclude=True)

    class Meta:
        model = MessageTemplate
        fields = ()


class DestinationOutput(serializers.ModelSerializer):
    class Meta:
        model = Destination
        fields = ("id", "slug", "name", "channel", "active", "created_at")
        read_only_fields = fields


class DestinationFilter(django_filters.FilterSet):
    channel = django_filters.ChoiceFilter(choices=Destination.CHANNELS)
    active = django_filters.BooleanFilter()

    class Meta:
        model = Destination
        fields = ()


@extend_schema_view(
    list=extend_schema(summary="Message templates, for a step's template picker"),
    retrieve=extend_schema(summary="One message template"),
)
class MessageTemplateViewSet(CrudViewSet):
    """The org's message templates: slug, name, channel, whether published, the variants' names."""

    model = MessageTemplate
    output_serializer = MessageTemplateOutput
    filterset_class = MessageTemplateFilter
    search_fields = ("name", "slug")
    ordering_fields = ("name", "slug", "updated_at")
    ordering = ("name", "id")

    def org_queryset(self, org):
        return MessageTemplate.objects.filter(org=org).only(
            "id", "slug", "name", "channel", "purpose", "live_version_id", "variants", "updated_at"
        )


@extend_schema_view(
    list=extend_schema(summary="Destinations (Slack, webhook, social), for a step's destination picker"),
    retrieve=extend_schema(summary="One destination"),
)
class DestinationViewSet(CrudViewSet):
    """The org's destinations: slug, name, channel and whether active (never the URL or secret)."""

    model = Destination
    output_serializer = DestinationOutput
    filterset_class = DestinationFilter
    search_fields = ("name", "slug")
    ordering_fields = ("name", "slug", "created_at")
    ordering = ("name", "id")

    def org_queryset(self, org):
        return Destination.objects.filter(org=org).only("id", "slug", "name", "channel", "active", "created_at")
