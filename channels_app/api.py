"""REST API of channels for the console's pickers: ``/api/v1/message-templates/`` and
``/api/v1/destinations/``, read-only, searchable (``?search=``) and filtered by ``?channel=``;
and ``POST /api/v1/message-templates/preview/``, one variant rendered as the sender would render
it, for the template page's live preview.

They list what a workflow step may name (a template by slug, a destination by slug); the org is
the key's or the session's, and another org's id answers 404. A destination's URL and secret are
credentials and are never listed.
"""

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from channels_app.models import Channel, Destination, MessageTemplate, Purpose
from channels_app.rendering import FIELDS, RenderError
from channels_app.template_problems import template_problems
from channels_app.template_versions import SAMPLE_FACTS, variant_preview
from marketing.api import CrudViewSet
from marketing.conditions.facts import contact_facts
from marketing.models import Contact


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


class TemplatePreviewInput(serializers.Serializer):
    channel = serializers.ChoiceField(choices=Channel.choices)
    purpose = serializers.ChoiceField(choices=Purpose.choices, default=Purpose.MARKETING)
    variant = serializers.DictField(
        help_text="One variant's fields, as the template's variants hold them: email subject, preheader, html, "
        "text; SMS text; push title, body, url; Slack, webhook and social text or payload (name and weight "
        "are optional)."
    )
    contact = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        help_text="The contact to render for (an id in the org); none: the org's first contact, or a sample one.",
    )


class TemplatePreviewContact(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True, help_text="None for the sample contact.")
    email = serializers.CharField()
    name = serializers.CharField()
    sample = serializers.BooleanField(help_text="A made-up contact: the org has none yet.")


class TemplatePreviewOutput(serializers.Serializer):
    contact = TemplatePreviewContact()
    content = serializers.DictField(
        help_text="The rendered fields (email: subject, preheader, html, text; the HTML sanitised, its links "
        "tracked as a preview's, the footer added as sent)."
    )


class TemplatePreviewProblem(serializers.Serializer):
    field = serializers.CharField(help_text="The variant's field (subject, html, …).")
    path = serializers.CharField(help_text="Inside a payload: the path of the string.")
    line = serializers.IntegerField(allow_null=True)
    column = serializers.IntegerField(allow_null=True)
    message = serializers.CharField()


class TemplatePreviewErrors(serializers.Serializer):
    variant = serializers.ListField(child=serializers.CharField(), help_text="The problems as sentences.")
    problems = TemplatePreviewProblem(many=True)


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

    @extend_schema(
        summary="One variant, unsaved, rendered for a contact as the sender would render it",
        description="The same sandbox and sanitiser as sending. A Liquid syntax error or a sandbox limit (time, "
        "loops, output, memory) is a 400 naming the field, with its line and column when known. The contact must "
        "be the org's (another id is a 400 on `contact`). Reading templates is enough: nothing is saved or sent.",
        request=TemplatePreviewInput,
        responses={200: TemplatePreviewOutput, 400: TemplatePreviewErrors},
    )
    @action(detail=False, methods=["post"], filter_backends=[], pagination_class=None)
    def preview(self, request):
        serializer = TemplatePreviewInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        org, wanted = request.auth.org, serializer.validated_data.get("contact")
        channel, variant = serializer.validated_data["channel"], serializer.validated_data["variant"]
        messages = _field_errors(channel, variant)
        if messages:
            return self._problems(messages, variant)
        contacts = Contact.objects.filter(org=org).select_related("company")
        contact = contacts.filter(pk=wanted).first() if wanted else contacts.order_by("pk").first()
        if wanted and contact is None:
            raise serializers.ValidationError({"contact": [f"No contact with id {wanted} in this organisation."]})
        facts = contact_facts(contact) if contact else SAMPLE_FACTS
        try:
            content = variant_preview(
                org=org,
                channel=channel,
                purpose=serializer.validated_data["purpose"],
                variant={**variant, "name": str(variant.get("name") or "preview")},
                facts=facts,
            )
        except RenderError as exc:
            return self._problems([str(exc)], variant)
        name = " ".join(filter(None, [facts.get("first_name"), facts.get("last_name")]))
        shown = {"id": contact.pk if contact else None, "email": facts.get("email") or "", "name": name}
        return Response({"contact": {**shown, "sample": contact is None}, "content": content})

    def _problems(self, messages: list[str], variant: dict) -> Response:
        named = {**variant, "name": str(variant.get("name") or "preview")}
        problems = [
            {k: p[k] for k in ("field", "path", "line", "column", "message")}
            for p in template_problems(messages, [named])
        ]
        return Response({"variant": messages, "problems": problems}, status=status.HTTP_400_BAD_REQUEST)


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


def _field_errors(channel: str, variant: dict) -> list[str]:
    """Fields the channel does not have, and values that are not text (a payload may also be an
    object or a list), named as ``template_errors`` names them."""
    prefix = f"variants[{variant.get('name') or 'preview'}]"
    errors = []
    for field, value in variant.items():
        if field in ("name", "weight") or value is None:
            continue
        if field not in FIELDS[channel]:
            errors.append(f"{prefix}.{field}: not a field of {channel} ({', '.join(FIELDS[channel])}).")
        elif not isinstance(value, str) and not (field == "payload" and isinstance(value, dict | list)):
            errors.append(f"{prefix}.{field}: must be text.")
    return errors
