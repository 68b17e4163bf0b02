"""REST API for the console's pickers: ``/api/v1/members/``, ``/api/v1/tags/``, ``/api/v1/lists/``,
``/api/v1/event-types/`` and ``/api/v1/conditions/fields/``.

The lists are read-only, paginated and searchable (``?search=``); the fields are every path a
rule may read, with its type and, where the values are known, the choices. The org is the key's
or the session's.
"""

from functools import cache

import django_filters
from babel import Locale
from django.db import connection
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from marketing.admin import FIELD_CHOICES, FIELD_LABELS
from marketing.api import CrudViewSet
from marketing.conditions.fields import CONTACT, EVENT, NAMES, namespace_fields
from marketing.models import Contact, ContactList, Membership, PropertyDefinition, Role, Tag

EVENT_TYPES_SHOWN = 200
# The types the product records itself or names as canonical (docs/events.md): offered in a pick-list
# before the org has stored one (a dry run may simulate an email open nobody has made yet).
BUILT_IN_EVENT_TYPES = (
    "page_view",
    "form_submitted",
    "email_opened",
    "email_clicked",
    "content_downloaded",
    "demo_requested",
    "trial_started",
    "purchase",
    "unsubscribed",
    "mention",
    "message_bounced",
    "message_complained",
)
EVENTS_READ_PER_TYPE = 200  # the newest events of a type whose property keys are listed
# CLDR regions, pseudo-locales and ISO's exceptionally reserved codes: no contact lives there.
NOT_COUNTRIES = {"EU", "EZ", "UN", "QO", "ZZ", "XA", "XB", "AC", "CP", "CQ", "DG", "EA", "IC", "TA"}


class MemberOutput(serializers.ModelSerializer):
    id = serializers.IntegerField(source="user_id", help_text="The user's id (what a user picker stores).")
    name = serializers.SerializerMethodField()
    email = serializers.EmailField(source="user.email")

    class Meta:
        model = Membership
        fields = ("id", "name", "email", "role")
        read_only_fields = fields

    def get_name(self, membership) -> str:
        return membership.user.get_full_name() or membership.user.username


class MemberFilter(django_filters.FilterSet):
    role = django_filters.ChoiceFilter(choices=Role.choices)

    class Meta:
        model = Membership
        fields = ()


class TagOutput(serializers.ModelSerializer):
    class Meta:
        model = Tag
        fields = ("id", "name")
        read_only_fields = fields


class ListOutput(serializers.ModelSerializer):
    class Meta:
        model = ContactList
        fields = ("id", "slug", "name", "description")
        read_only_fields = fields


@extend_schema_view(list=extend_schema(summary="The org's members, for a user picker"), retrieve=extend_schema())
class MemberViewSet(CrudViewSet):
    """Members of the org: the user's id, name, email and role here. Filter with ``?role=``."""

    model = Membership
    output_serializer = MemberOutput
    filterset_class = MemberFilter
    search_fields = ("user__first_name", "user__last_name", "user__email", "user__username")
    ordering_fields = ("user__first_name", "user__last_name", "user__email", "role")
    ordering = ("user__first_name", "user__last_name", "user__username", "id")
    lookup_field = "user_id"
    lookup_url_kwarg = "pk"

    def org_queryset(self, org):
        return Membership.objects.filter(org=org, user__is_active=True).select_related("user")


@extend_schema_view(list=extend_schema(summary="The org's tags, for a tag picker"), retrieve=extend_schema())
class TagViewSet(CrudViewSet):
    """Tags of the org, by name."""

    model = Tag
    output_serializer = TagOutput
    search_fields = ("name",)
    ordering_fields = ("name",)
    ordering = ("name", "id")

    def org_queryset(self, org):
        return Tag.objects.filter(org=org)


@extend_schema_view(list=extend_schema(summary="The org's lists, for a list picker"), retrieve=extend_schema())
class ListViewSet(CrudViewSet):
    """Static lists of the org; rules and steps name them by slug."""

    model = ContactList
    output_serializer = ListOutput
    search_fields = ("name", "slug")
    ordering_fields = ("name", "slug", "created_at")
    ordering = ("name", "id")

    def org_queryset(self, org):
        return ContactList.objects.filter(org=org)


# -- condition fields --------------------------------------------------------------------------------


class FieldsInput(serializers.Serializer):
    subject = serializers.ChoiceField(choices=["contact", "event"], default="contact")
    workflow = serializers.IntegerField(min_value=1, max_value=2**63 - 1, required=False)


class FieldOutput(serializers.Serializer):
    path = serializers.CharField(help_text='What the rule reads: {"var": path}.')
    label = serializers.CharField()
    group = serializers.CharField(help_text="Contact, Company, Custom properties, Event, Workflow…")
    type = serializers.CharField(
        help_text="string, number, boolean, datetime, enum (see choices), list, tags, lists or object."
    )
    choices = serializers.ListField(
        child=inline_serializer("FieldChoice", {"value": serializers.JSONField(), "label": serializers.CharField()}),
        required=False,
        help_text="The values it takes, where they are known.",
    )


class EventTypeOutput(serializers.Serializer):
    type = serializers.CharField()
    properties = serializers.ListField(
        child=serializers.CharField(), help_text="Property keys seen on this type's newest events."
    )


class EventTypeChoiceOutput(serializers.Serializer):
    type = serializers.CharField(help_text="What events of this type carry as their type.")
    label = serializers.CharField(help_text="The type in words, e.g. Email opened.")
    built_in = serializers.BooleanField(help_text="One the product records or names itself.")
    seen = serializers.BooleanField(help_text="The org has stored events of this type.")


class EventTypesInput(serializers.Serializer):
    search = serializers.CharField(required=False, allow_blank=True, max_length=100)


class EventTypesView(APIView):
    """The event types a pick-list offers: the org's stored ones (up to ``EVENT_TYPES_SHOWN``)
    and the built-in ones, by type, each marked as built in, seen, or both."""

    permission_model = Contact

    @extend_schema(
        summary="The event types to pick from",
        parameters=[OpenApiParameter("search", str, description="Only types containing this text.")],
        responses={200: inline_serializer("EventTypes", {"results": EventTypeChoiceOutput(many=True)})},
    )
    def get(self, request):
        serializer = EventTypesInput(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        wanted = serializer.validated_data.get("search", "").strip().lower()
        seen = {t["type"] for t in event_types_seen(org=request.auth.org)}
        types = sorted(seen | set(BUILT_IN_EVENT_TYPES))
        results = [
            {"type": t, "label": event_type_label(t), "built_in": t in BUILT_IN_EVENT_TYPES, "seen": t in seen}
            for t in types
            if wanted in t.lower()
        ]
        return Response({"results": results})


def event_type_label(event_type: str) -> str:
    """``email_opened`` → ``Email opened``: the type as a person reads it."""
    words = event_type.replace("_", " ").replace("-", " ").strip()
    return words[:1].upper() + words[1:] if words else event_type


class FieldsOutput(serializers.Serializer):
    subject = serializers.CharField()
    fields = FieldOutput(many=True)
    event_types = EventTypeOutput(many=True, help_text="Event types seen in the org, newest-first keys.")


class ConditionFieldsView(APIView):
    """Every field a rule may read for a subject, for the rule builder: the built-in fields, the
    org's custom properties, the company's fields, the event's and, with ``workflow``, the paths
    that workflow's trigger and steps give a run (``workflow.*``)."""

    permission_model = Contact

    @extend_schema(
        summary="The fields a rule may read",
        parameters=[
            OpenApiParameter("subject", str, enum=["contact", "event"], description="Whose fields (default contact)."),
            OpenApiParameter("workflow", OpenApiTypes.INT, description="Add the paths this workflow's runs carry."),
        ],
        responses={200: FieldsOutput},
    )
    def get(self, request):
        serializer = FieldsInput(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        org, subject = request.auth.org, serializer.validated_data["subject"]
        workflow_id = serializer.validated_data.get("workflow")
        event_types = event_types_seen(org=org)
        definitions = list(PropertyDefinition.objects.filter(org=org).order_by("key"))
        if subject == "event":
            fields = event_fields(prefix="", definitions=definitions, event_types=event_types, group="Event")
        else:
            fields = contact_fields(org=org, definitions=definitions)
            fields += event_fields(prefix="event.", definitions=definitions, event_types=event_types, group="Event")
        if workflow_id is not None:
            # ``workflows`` provides them: this app sits below it and never reads a workflow.
            fields += namespace_fields("workflow", org=org, ref=workflow_id, event_types=event_types)
        return Response({"subject": subject, "fields": fields, "event_types": event_types})


def _field(path: str, label: str, group: str, type_: str, choices=None) -> dict:
    entry = {"path": path, "label": label, "group": group, "type": type_}
    if choices is not None:
        entry["choices"] = [{"value": value, "label": str(text)} for value, text in choices]
    return entry


def _label(path: str) -> str:
    return FIELD_LABELS.get(path, path.rsplit(".", 1)[-1].replace("_", " ").capitalize())


def _property_fields(prefix: str, group: str, definitions) -> list[dict]:
    fields = []
    for d in definitions:
        choices = [(o, o) for o in d.options] if d.type == PropertyDefinition.Type.ENUM and d.options else None
        fields.append(_field(f"{prefix}{d.key}", d.label or d.key, group, d.type, choices))
    return fields


@cache
def country_choices() -> list[tuple[str, str]]:
    """ISO 3166 alpha-2 codes with their English names, by name (babel's CLDR territories)."""
    territories = Locale("en").territories
    codes = (c for c in territories if len(c) == 2 and c.isalpha() and c not in NOT_COUNTRIES)
    return sorted(((c, territories[c]) for c in codes), key=lambda pair: pair[1])


def contact_fields(*, org, definitions) -> list[dict]:
    """A contact rule's fields: the contact's own, its custom properties, its company's."""
    members = Membership.objects.filter(org=org).select_related("user").order_by("user__first_name", "user_id")
    known = {
        **FIELD_CHOICES,  # lifecycle stages, lead statuses
        "country": country_choices(),
        "owner": [(m.user_id, m.user.get_full_name() or m.user.username) for m in members],
    }
    fields = []
    for path, info in CONTACT.items():
        group = "Company" if path.startswith("company.") else "Contact"
        if info.type == NAMES:
            fields.append(_field(path, _label(path), "Tags and lists", path))
        elif path in known:
            fields.append(_field(path, _label(path), group, "enum", known[path]))
        else:
            label = f"Company {_label(path).lower()}" if group == "Company" else _label(path)
            fields.append(_field(path, label, group, info.type))
    subject = PropertyDefinition.Subject
    own = [d for d in definitions if d.subject == subject.CONTACT]
    company = [d for d in definitions if d.subject == subject.COMPANY]
    fields += _property_fields("properties.", "Custom properties", own)
    return fields + _property_fields("company.properties.", "Company properties", company)


def event_fields(*, prefix: str, definitions, event_types: list[dict], group: str) -> list[dict]:
    """An event's fields: its type (one of those seen), when, and the event properties defined."""
    fields = [
        _field(f"{prefix}type", "Event type", group, "enum", [(t["type"], t["type"]) for t in event_types]),
        _field(f"{prefix}occurred_at", "Event time", group, EVENT["occurred_at"].type),
    ]
    event_definitions = [d for d in definitions if d.subject == PropertyDefinition.Subject.EVENT]
    return fields + _property_fields(f"{prefix}properties.", f"{group} properties", event_definitions)


def event_types_seen(*, org) -> list[dict]:
    """The event types the org has stored (up to ``EVENT_TYPES_SHOWN``, by name), each with the
    property keys of its newest events. One query: a skip scan over the (org, type, time) index
    finds the types without reading every event."""
    sql = """
        WITH RECURSIVE types(type) AS (
            (SELECT type FROM marketing_event WHERE org_id = %(org)s ORDER BY type LIMIT 1)
            UNION ALL
            SELECT (SELECT e.type FROM marketing_event e WHERE e.org_id = %(org)s AND e.type > types.type
                    ORDER BY e.type LIMIT 1)
            FROM types WHERE types.type IS NOT NULL
        )
        SELECT types.type, ARRAY(
            SELECT DISTINCT key FROM (
                SELECT properties FROM marketing_event e WHERE e.org_id = %(org)s AND e.type = types.type
                ORDER BY e.occurred_at DESC LIMIT %(per_type)s
            ) newest, jsonb_object_keys(
                CASE WHEN jsonb_typeof(newest.properties) = 'object' THEN newest.properties ELSE '{}' END
            ) AS key ORDER BY key
        )
        FROM types WHERE types.type IS NOT NULL LIMIT %(limit)s
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, {"org": org.pk, "per_type": EVENTS_READ_PER_TYPE, "limit": EVENT_TYPES_SHOWN})
        return [{"type": row[0], "properties": list(row[1])} for row in cursor.fetchall()]
