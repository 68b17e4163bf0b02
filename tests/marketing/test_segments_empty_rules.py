"""A dynamic segment whose rule matches nobody by its form (``false``, ``0``, ``[]``, an ``in`` over
an empty list) is a valid segment with no members: saving, counting, listing its members,
recomputing, previewing, exporting and the console's pages all work, and a contact event that
re-checks segments passes it by."""

import csv
import io
import json

import pytest
from django.urls import reverse

from marketing.models import PropertyDefinition, Segment, SegmentMembership
from marketing.segments import PYTHON_CHECK_MAX, segment_recompute, segment_save, segments_check_contacts
from tests.factories import ContactFactory

EMPTY_RULES = {
    "false": False,
    "zero": 0,
    "empty-list": [],
    "empty-string": "",
    "in-empty-list": {"in": [{"var": "country"}, []]},
    "not-in-empty-list": {"!": {"in": [{"var": "country"}, []]}},
    "and-with-empty-in": {"and": [{"==": [{"var": "country"}, "DE"]}, {"in": [{"var": "country"}, []]}]},
    "or-of-nothing": {"or": [False, {"in": [{"var": "lifecycle_stage"}, []]}]},
    "property-in-empty": {"in": [{"var": "properties.plan"}, []]},
    "fraction-of-events": {"==": [{"event_count": ["page_view", None, 30]}, 1.5]},
}
# Rules above that match everyone: the negation of "in nothing".
MATCH_ALL = {"not-in-empty-list"}


@pytest.fixture
def contacts(org):
    PropertyDefinition.objects.create(org=org, subject="contact", key="plan", type="string")
    return [ContactFactory(org=org, country="DE"), ContactFactory(org=org, country="FR")]


def members(segment) -> set[int]:
    return set(
        SegmentMembership.objects.filter(segment=segment, exited_at__isnull=True).values_list("contact_id", flat=True)
    )


@pytest.mark.parametrize("name", sorted(EMPTY_RULES))
def test_a_segment_whose_rule_matches_nobody_is_valid_and_empty(org, contacts, name):
    expected = {c.pk for c in contacts} if name in MATCH_ALL else set()

    segment = segment_save(org=org, name=name, slug=name, rule=EMPTY_RULES[name])
    recomputed = segment_recompute(segment=segment)
    segment.refresh_from_db()
    # Re-checks after events: a few contacts in Python, a batch in SQL; both agree with the rule.
    few = segments_check_contacts(org=org, contact_ids=[c.pk for c in contacts], segments=[segment])
    batch = ContactFactory.create_batch(PYTHON_CHECK_MAX + 1, org=org, country="DE")
    many = segments_check_contacts(org=org, contact_ids=[c.pk for c in batch], segments=[segment])

    assert members(segment) == expected | ({c.pk for c in batch} if name in MATCH_ALL else set())
    assert recomputed["members"] == len(expected)
    assert few == {"entered": 0, "exited": 0}
    assert many == {"entered": len(batch) if name in MATCH_ALL else 0, "exited": 0}


@pytest.mark.parametrize("name", sorted(EMPTY_RULES))
def test_the_api_creates_counts_lists_and_recomputes_an_empty_segment(org, api, contacts, name):
    rule = EMPTY_RULES[name]
    expected = len(contacts) if name in MATCH_ALL else 0

    created = api.post("/api/v1/segments/", {"name": name, "slug": name, "rule": rule}, content_type="application/json")
    assert created.status_code == 201, created.content
    segment_id = created.json()["id"]
    listed = api.get(f"/api/v1/segments/{segment_id}/contacts/")
    recomputed = api.post(f"/api/v1/segments/{segment_id}/recompute/")
    validated = api.post("/api/v1/conditions/validate/", {"rule": rule}, content_type="application/json")
    preview = api.post("/api/v1/segments/preview/", {"rule": rule}, content_type="application/json")

    assert created.json()["member_count"] == expected
    assert listed.status_code == 200 and listed.json()["count"] == expected
    assert recomputed.status_code == 200 and recomputed.json()["members"] == expected
    assert validated.status_code == 200 and validated.json()["count"] == expected
    assert preview.status_code == 200 and preview.json()["count"] == expected


@pytest.mark.parametrize("name", sorted(EMPTY_RULES))
def test_the_console_saves_shows_and_exports_an_empty_segment(org, console, contacts, name):
    rule = EMPTY_RULES[name]
    expected = len(contacts) if name in MATCH_ALL else 0

    added = console.post(
        reverse("admin:marketing_segment_add"),
        {"name": name, "slug": name, "kind": "dynamic", "rule": json.dumps(rule), "description": ""},
        follow=True,
    )
    segment = Segment.objects.get(slug=name)
    page = console.get(reverse("admin:marketing_segment_change", args=[segment.pk]))
    changelist = console.get("/admin/marketing/segment/")
    recomputed = console.post("/admin/marketing/segment/", {"action": "recompute", "_selected_action": [segment.pk]})
    exported = console.post(
        "/admin/marketing/segment/", {"action": "export_members_csv", "_selected_action": [segment.pk]}
    )

    assert added.status_code == 200 and segment.member_count == expected
    assert page.status_code == 200 and changelist.status_code == 200
    assert recomputed.status_code == 302
    rows = list(csv.reader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert len(rows) == 1 + expected  # the header, then the members
