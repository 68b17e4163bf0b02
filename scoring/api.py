"""REST API of scoring: ``GET /api/v1/contacts/{id}/score/``, a contact's score that explains
itself (docs/scoring.md: ``base`` plus the sum of the breakdown's ``points`` equals ``score``).

The org is the API key's; another org's contact (or model) answers 404, like a missing one.
"""

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from marketing.models import Contact
from scoring.selectors import not_scored_reason, score_breakdown, scoring_model_get


class BreakdownItem(serializers.Serializer):
    rule = serializers.CharField(help_text="The rule's name, or the reason (Decay, Clamped…) for other rows.")
    rule_id = serializers.IntegerField(allow_null=True)
    reason = serializers.ChoiceField(choices=["rule", "fit", "decay", "cap", "manual", "recompute"])
    points = serializers.IntegerField(help_text="The sum of this group's ledger deltas.")
    count = serializers.IntegerField(help_text="How many ledger rows the group has.")


class RecentEvent(serializers.Serializer):
    id = serializers.IntegerField()
    type = serializers.CharField()
    occurred_at = serializers.DateTimeField()


class RecentChange(serializers.Serializer):
    at = serializers.DateTimeField()
    delta = serializers.IntegerField()
    score_after = serializers.IntegerField()
    reason = serializers.CharField()
    rule = serializers.CharField(allow_null=True)
    note = serializers.CharField(allow_blank=True)
    event = RecentEvent(allow_null=True)


class Factor(serializers.Serializer):
    feature = serializers.CharField()
    value = serializers.JSONField()
    effect = serializers.FloatField()


class ScoreOutput(serializers.Serializer):
    model = serializers.CharField(help_text="The scoring model's slug.")
    score = serializers.IntegerField()
    base = serializers.IntegerField()
    breakdown = BreakdownItem(many=True)
    recent = RecentChange(many=True, help_text="The newest ledger rows, with their events.")
    probability = serializers.FloatField(allow_null=True, help_text="Conversion probability; null: rules only.")
    factors = Factor(many=True)
    not_scored = serializers.CharField(
        allow_null=True,
        help_text="Why the contact is not scored any more (no profiling consent), or null when it is.",
    )


class ContactScoreView(APIView):
    """A contact's score in a scoring model (default: the org's default model) and its breakdown."""

    @extend_schema(
        operation_id="contacts_score_retrieve",
        parameters=[
            OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The contact's id."),
            OpenApiParameter("model", str, description="A scoring model's slug; default: the default model."),
        ],
        responses={200: ScoreOutput},
        tags=["contacts"],
    )
    def get(self, request, id: int):
        org = request.auth.org
        contact = Contact.objects.filter(org=org, pk=id).first()
        if contact is None:
            raise Http404
        slug = request.query_params.get("model")
        model = scoring_model_get(org=org, slug=slug)
        if model is None:
            raise Http404("No such scoring model." if slug else "The organisation has no default scoring model.")
        data = score_breakdown(contact=contact, model=model)
        data["not_scored"] = not_scored_reason(org=org, contact=contact)
        return Response(ScoreOutput(data).data)
