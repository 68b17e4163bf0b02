"""Segments: full recompute in SQL, incremental checks from dispatch, history, events."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from marketing.dispatch import dispatch_batch_run
from marketing.models import DispatchBatch, Event, PropertyDefinition, Segment, SegmentMembership
from marketing.segments import (
    rule_reads,
    segment_add_contacts,
    segment_recompute,
    segment_remove_contacts,
    segment_save,
    segments_affected,
)
from marketing.tasks import segments_recompute_all
from marketing.tenancy import no_org, org_context
from tests.factories import ContactFactory, SegmentFactory

GERMANS = {"==": [{"var": "country"}, "DE"]}
ENGAGED = {">=": [{"event_count": ["page_view", None, 30]}, 2]}


def members(segment):
    return set(
        SegmentMembership.objects.filter(segment=segment, exited_at__isnull=True).values_list("contact_id", flat=True)
    )


def test_a_new_segment_is_computed_without_enter_events(org):
    ana, ben = ContactFactory(org=org, country="DE"), ContactFactory(org=org, country="DE")
    ContactFactory(org=org, country="FR")

    segment = segment_save(org=org, name="Germans", slug="germans", rule=GERMANS)

    assert members(segment) == {ana.pk, ben.pk}
    segment.refresh_from_db()
    assert segment.member_count == 2 and segment.computed_at is not None
    assert not Event.objects.filter(type="segment_entered").exists()


def test_recompute_closes_departed_stays_opens_new_ones_and_emits_events(org):
    ana, ben = ContactFactory(org=org, country="DE"), ContactFactory(org=org, country="FR")
    segment = segment_save(org=org, name="Germans", slug="germans", rule=GERMANS)
    ana.country, ben.country = "FR", "DE"
    ana.save()
    ben.save()

    result = segment_recompute(segment=segment)

    assert result == {"members": 1, "entered": 1, "exited": 1}
    assert members(segment) == {ben.pk}
    stays = SegmentMembership.objects.filter(segment=segment, contact=ana).get()
    assert stays.exited_at is not None  # history kept, not deleted
    events = {(e.type, e.contact_id) for e in Event.objects.filter(source="segment")}
    assert events == {("segment_entered", ben.pk), ("segment_exited", ana.pk)}
    assert Event.objects.get(type="segment_entered").properties == {"segment": "germans", "segment_id": segment.pk}
    assert DispatchBatch.objects.count() == 2
    assert segment_recompute(segment=segment) == {"members": 1, "entered": 0, "exited": 0}


def test_the_beat_job_recomputes_the_dynamic_segments_of_every_org(org, other_org):
    """Beat runs it outside any org: it finds every org's dynamic segments itself."""
    ana = ContactFactory(org=org, country="FR")
    ours = segment_save(org=org, name="Germans", slug="germans", rule=GERMANS)
    SegmentFactory(org=org)  # static: edited by hand, not recomputed
    with org_context(other_org):
        bo = ContactFactory(org=other_org, country="FR")
        theirs = segment_save(org=other_org, name="Germans", slug="germans", rule=GERMANS)
        bo.country = "DE"
        bo.save()
    ana.country = "DE"
    ana.save()

    with no_org():
        assert segments_recompute_all() == 2

    assert members(ours) == {ana.pk}
    with org_context(other_org):
        assert members(theirs) == {bo.pk}


def test_coming_back_opens_a_second_stay(org):
    ana = ContactFactory(org=org, country="DE")
    segment = segment_save(org=org, name="Germans", slug="germans", rule=GERMANS)
    for country in ("FR", "DE"):
        ana.country = country
        ana.save()
        segment_recompute(segment=segment)
    assert SegmentMembership.objects.filter(segment=segment, contact=ana).count() == 2
    assert members(segment) == {ana.pk}


def test_events_move_contacts_in_and_out_incrementally(org, api):
    segment = segment_save(org=org, name="Engaged", slug="engaged", rule=ENGAGED)
    now = timezone.now()
    views = [
        {"type": "page_view", "email": "ana@example.com", "occurred_at": (now - timedelta(days=d)).isoformat()}
        for d in (1, 2)
    ]
    api.post("/api/v1/events/", {"events": views}, content_type="application/json")
    for batch in DispatchBatch.objects.all():
        dispatch_batch_run(batch_id=batch.pk)

    ana = ContactFactory._meta.model.objects.get(email="ana@example.com")
    assert members(segment) == {ana.pk}
    assert Event.objects.filter(type="segment_entered", contact=ana).count() == 1


def test_only_affected_segments_are_rechecked(org):
    segment_save(org=org, name="Engaged", slug="engaged", rule=ENGAGED)
    segment_save(org=org, name="Germans", slug="germans", rule=GERMANS)
    PropertyDefinition.objects.create(org=org, subject="contact", key="plan", type="string")

    by_type = {s.slug for s in segments_affected(org=org, event_types={"page_view"})}
    by_other_type = {s.slug for s in segments_affected(org=org, event_types={"email_opened"})}
    by_fields = {s.slug for s in segments_affected(org=org, fields_changed=True)}

    assert by_type == {"engaged"} and by_other_type == set() and by_fields == {"germans"}
    assert rule_reads({"and": [ENGAGED, {"has_tag": "vip"}]}) == ({"page_view"}, True)


def test_contact_changes_recheck_field_segments(org, eager_tasks, django_capture_on_commit_callbacks):
    from marketing.services import contact_update

    segment = segment_save(org=org, name="Germans", slug="germans", rule=GERMANS)
    ana = ContactFactory(org=org, country="FR")
    with django_capture_on_commit_callbacks(execute=True):
        contact_update(contact=ana, country="DE")
    assert members(segment) == {ana.pk}


@pytest.mark.parametrize(
    ("rule", "fragment"),
    [
        ({"lol": [1]}, "Unknown operator “lol”"),
        ({"==": [{"var": "colour"}, "red"]}, "Unknown field “colour”"),
        ({"==": [{"var": "properties.tier"}, "gold"]}, "Unknown property “properties.tier”"),
        ({"==": [{"var": {"cat": ["coun", "try"]}}, "DE"]}, "may not compute var paths"),
        ({"if": [{"var": "country"}, True, False]}, "no SQL form"),
        ({">": [{"var": "score"}, {"var": "company.size"}]}, "two computed values"),
    ],
)
def test_bad_rules_are_refused_with_a_message_naming_the_part(org, rule, fragment):
    with pytest.raises(ValidationError) as excinfo:
        segment_save(org=org, name="Bad", slug="bad", rule=rule)
    assert fragment in " ".join(excinfo.value.message_dict["rule"])
    assert not Segment.objects.exists()


def test_static_segments_take_contacts_by_hand(org):
    segment = segment_save(org=org, name="VIP picks", slug="vip-picks", kind="static")
    ana, ben = ContactFactory(org=org), ContactFactory(org=org)

    assert segment_add_contacts(segment=segment, contacts=[ana, ben]) == 2
    assert segment_add_contacts(segment=segment, contacts=[ana]) == 0
    assert segment_remove_contacts(segment=segment, contacts=[ben]) == 1
    assert members(segment) == {ana.pk}
    assert Event.objects.filter(type="segment_exited", contact=ben).count() == 1
    with pytest.raises(ValidationError):
        segment_save(org=org, name="Static with rule", slug="s2", kind="static", rule=GERMANS)
    dynamic = segment_save(org=org, name="Germans", slug="germans", rule=GERMANS)
    with pytest.raises(ValidationError):
        segment_add_contacts(segment=dynamic, contacts=[ana])


def test_event_count_filters_read_event_properties_in_python_as_in_sql(org):
    """Regression: the Python side read properties as JSON text and counted 0 where SQL counted 1."""
    from marketing.conditions import contact_facts, evaluate, to_q
    from marketing.models import Contact

    PropertyDefinition.objects.create(org=org, subject="event", key="path", type="string")
    ana = ContactFactory(org=org)
    Event.objects.create(
        org=org,
        contact=ana,
        type="email_opened",
        occurred_at=timezone.now() - timedelta(hours=1),
        properties={"path": "/pricing"},
        message_id="m1",
    )
    rule = {"<": [{"event_count": ["email_opened", {"==": [{"var": "properties.path"}, "/pricing"]}, None]}, 1]}

    assert evaluate(rule, contact_facts(ana), contact=ana) is False
    assert not Contact.objects.filter(to_q(rule, "contact", org=org)).exists()
