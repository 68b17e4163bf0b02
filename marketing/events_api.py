"""``POST /api/v1/events/``: a batch of up to 1,000 events, with a result per event.

Write keys may call it (it is how sites and apps send behaviour), as may server keys. A bad
event is reported with its field and reason; the valid ones in the same batch are stored.
"""

from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from marketing.api_auth import HasTrackingKey
from marketing.identity import Trust
from marketing.ingestion import MAX_BATCH, events_ingest, events_validate
from marketing.json_input import JsonInputError, json_parse, json_problem

MAX_BODY_BYTES = 5 * 1024 * 1024  # 1,000 events of ~5 KB; settings.DATA_UPLOAD_MAX_MEMORY_SIZE is above it


class BatchJSONParser(JSONParser):
    """JSON whose bad values are the bad events' errors, not the request's: a body with a NUL
    character in one event is parsed again without the per-value checks (``check=False``) and
    ``events_validate`` checks each event on its own, so the others are stored.

    Most bodies are clean, and one walk (``json_parse``) checks all of them at once; the request's
    ``body_checked`` tells the view which it was, so that clean events are not walked twice.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        raw = (stream.read() if stream is not None else b"") or b"null"
        request = (parser_context or {}).get("request")
        try:
            data, checked = json_parse(raw), True
        except JsonInputError:
            try:
                data, checked = json_parse(raw, check=False), False
            except JsonInputError as exc:  # not JSON, or nested too deeply to read at all
                raise ParseError(f"JSON parse error: {exc}.") from None
        if request is not None:
            request.body_checked = checked
        return data


def _declared_length(request) -> int:
    try:
        return int(request.headers.get("Content-Length") or 0)
    except ValueError:  # not a number: Django reads no body either
        return 0


class EventResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["stored", "duplicate", "error"])
    event_id = serializers.IntegerField(required=False, allow_null=True, help_text="null for a duplicate")
    contact_id = serializers.IntegerField(required=False, allow_null=True)
    message_id = serializers.CharField(required=False, allow_null=True)
    errors = serializers.DictField(child=serializers.CharField(), required=False)


class EventsView(APIView):
    """Stores a batch of events; each names its contact by contact_id, email, external_id or anonymous_id."""

    permission_classes = [HasTrackingKey]
    parser_classes = [BatchJSONParser, FormParser, MultiPartParser]

    @extend_schema(
        request=inline_serializer("EventBatch", {"events": serializers.ListField(child=serializers.DictField())}),
        responses={
            200: inline_serializer(
                "EventBatchResult",
                {
                    "stored": serializers.IntegerField(),
                    "duplicates": serializers.IntegerField(),
                    "errors": serializers.IntegerField(),
                    "results": EventResultSerializer(many=True),
                },
            )
        },
        examples=[
            OpenApiExample(
                "Two events",
                request_only=True,
                value={
                    "events": [
                        {
                            "type": "page_view",
                            "email": "ana@example.com",
                            "properties": {"path": "/pricing"},
                            "occurred_at": "2026-11-29T10:00:00Z",
                            "message_id": "b1c9…",
                        },
                        {"type": "demo_requested", "anonymous_id": "a-5f2e", "properties": {}},
                    ]
                },
            )
        ],
    )
    def post(self, request):
        if _declared_length(request) > MAX_BODY_BYTES:
            return Response(
                {"detail": f"Request body over {MAX_BODY_BYTES // 1024 // 1024} MB; send smaller batches."},
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        raw = request.data.get("events") if isinstance(request.data, dict) else None
        if not isinstance(raw, list):
            raise ValidationError({"events": ["Send a JSON object with a list under “events”."]})
        # The rest of the body is the request's own: a bad value there refuses the request.
        problem = json_problem({key: value for key, value in request.data.items() if key != "events"})
        if problem:
            raise ValidationError({problem.path: [problem.reason]})
        if len(raw) > MAX_BATCH:
            raise ValidationError({"events": [f"At most {MAX_BATCH} events per batch; this one has {len(raw)}."]})
        items, errors = events_validate(raw, checked=getattr(request, "body_checked", False))
        trust = Trust.of_key(request.auth)  # write keys may send events too, but never merge known contacts
        results = events_ingest(org=request.auth.org, items=items, errors=errors, source="api", trust=trust)
        counts = {"stored": 0, "duplicate": 0, "error": 0}
        for result in results:
            counts[result.status] += 1
        return Response(
            {
                "stored": counts["stored"],
                "duplicates": counts["duplicate"],
                "errors": counts["error"],
                "results": [r.as_dict() for r in results],
            },
            status=status.HTTP_200_OK,
        )
