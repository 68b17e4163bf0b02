"""REST API of segments and conditions: CRUD through the services, rules checked on every write,
org isolation, members of dynamic and static segments, the rule check endpoint and the preview
(the segment builder's live count)."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django_scopes import scopes_disabled

from marketing.models import Event, Role, Segment, SegmentMembership
from marketing.segments import segment_add_contacts, segment_save
from marketing.services import api_key_create
from marketing.tenancy import org_context
from tests.factories import CompanyFactory, ContactFactory, SegmentFactory, TagFactory

SEGMENTS = "/api/v1/segments/"
VALIDATE = "/api/v1/conditions/validate/"
GERMANS = {"==": [{"var": "country"}, "DE"]}


def post(client, url, body):
    return client.post(url, body, content_type="application/json")


def member_ids(client, segment_id) -> list[int]:
    return [c["id"] for c in client.get(f"{SEGMENTS}{segment_id}/contacts/", {"page_size": 500}).json()["results"]]


@pytest.fixture
def theirs(other_org):
    """A static segment of another org, with one member."""
    with org_context(other_org):
        segment = SegmentFactory(org=other_org, slug="their-vips", name="Their VIPs")
        SegmentMembership.objects.create(org=other_org, segment=segment, contact=ContactFactory(org=other_org))
    return segment


# -- CRUD ---------------------------------------------------------------------------------------


def test_create_a_dynamic_segment_computes_its_members_at_once(org, api):
    germans = ContactFactory.create_batch(2, org=org, country="DE")
    ContactFactory(org=org, country="FR")

    response = post(api, SEGMENTS, {"name": "Germany", "slug": "germany", "rule": GERMANS})

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {
        "id",
        "name",
        "slug",
        "description",
        "kind",
        "rule",
        "member_count",
        "computed_at",
        "created_at",
        "updated_at",
    }
    assert body["kind"] == "dynamic"
    assert body["rule"] == GERMANS
    assert body["member_count"] == 2
    assert body["computed_at"] is not None
    assert sorted(member_ids(api, body["id"])) == sorted(c.pk for c in germans)
    assert Segment.objects.get(pk=body["id"]).org == org


def test_a_rule_over_owner_and_tags_selects_those_contacts(org, api, member_factory):
    owner = member_factory(org, Role.SALES, username="sam")
    vip = TagFactory(org=org, name="vip")
    theirs_and_vip, only_theirs = ContactFactory(org=org, owner=owner), ContactFactory(org=org, owner=owner)
    theirs_and_vip.tags.add(vip)
    ContactFactory(org=org).tags.add(vip)
    rule = {"and": [{"==": [{"var": "owner"}, owner.pk]}, {"in": ["vip", {"var": "tags"}]}]}

    created = post(api, SEGMENTS, {"name": "Sam's VIPs", "slug": "sams-vips", "rule": rule}).json()

    assert member_ids(api, created["id"]) == [theirs_and_vip.pk]
    assert only_theirs.pk not in member_ids(api, created["id"])


def test_list_is_paginated_filtered_and_scoped_to_the_keys_org(org, api, theirs):
    SegmentFactory.create_batch(3, org=org)
    segment_save(org=org, name="Germany", slug="germany", rule=GERMANS)

    body = api.get(SEGMENTS, {"page_size": 2}).json()

    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 4
    assert len(body["results"]) == 2 and "page=2" in body["next"]
    everything = api.get(SEGMENTS, {"page_size": 50}).json()["results"]
    assert "their-vips" not in {s["slug"] for s in everything}
    assert [s["slug"] for s in api.get(SEGMENTS, {"kind": "dynamic"}).json()["results"]] == ["germany"]


def test_put_replaces_the_rule_and_recomputes(org, api):
    german, french = ContactFactory(org=org, country="DE"), ContactFactory(org=org, country="FR")
    segment = segment_save(org=org, name="Germany", slug="germany", rule=GERMANS)
    url = f"{SEGMENTS}{segment.pk}/"

    response = api.put(
        url,
        {"name": "France", "slug": "france", "rule": {"==": [{"var": "country"}, "FR"]}},
        content_type="application/json",
    )

    assert response.status_code == 200, response.content
    assert response.json()["slug"] == "france"
    assert response.json()["member_count"] == 1
    assert member_ids(api, segment.pk) == [french.pk]
    assert german.pk not in member_ids(api, segment.pk)


def test_patch_changes_only_what_is_sent(org, api):
    german = ContactFactory(org=org, country="DE")
    segment = segment_save(org=org, name="Germany", slug="germany", rule=GERMANS, description="DACH, for now")

    response = api.patch(f"{SEGMENTS}{segment.pk}/", {"name": "Deutschland"}, content_type="application/json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["name"], body["slug"], body["description"]) == ("Deutschland", "germany", "DACH, for now")
    assert body["rule"] == GERMANS and body["kind"] == "dynamic"
    assert member_ids(api, segment.pk) == [german.pk]


def test_delete_removes_the_segment_and_its_memberships(org, api):
    ContactFactory(org=org, country="DE")
    segment = segment_save(org=org, name="Germany", slug="germany", rule=GERMANS)

    assert api.delete(f"{SEGMENTS}{segment.pk}/").status_code == 204

    assert not Segment.objects.filter(pk=segment.pk).exists()
    assert not SegmentMembership.objects.filter(segment_id=segment.pk).exists()
    assert api.get(f"{SEGMENTS}{segment.pk}/").status_code == 404


def test_a_segment_another_rule_uses_cannot_be_deleted(org, api):
    base = segment_save(org=org, name="Germany", slug="germany", rule=GERMANS)
    segment_save(org=org, name="German leads", slug="german-leads", rule={"and": [{"in_segment": "germany"}, True]})

    response = api.delete(f"{SEGMENTS}{base.pk}/")

    assert response.status_code == 400
    assert "german-leads" in response.json()["segment"][0]
    assert Segment.objects.filter(pk=base.pk).exists()


@pytest.mark.parametrize(
    ("rule", "named"),
    [
        ({"frobnicate": [{"var": "country"}, "DE"]}, "frobnicate"),
        ({"==": [{"var": "favourite_colour"}, "red"]}, "favourite_colour"),
        ({"==": [{"var": "properties.plan"}, "pro"]}, "properties.plan"),  # no PropertyDefinition
        ({"and": [GERMANS, {">=": [{"event_count": ["", None, 30]}, 1]}]}, "event_count"),
    ],
)
def test_a_bad_rule_is_a_400_naming_it_on_create_and_on_update(org, api, rule, named):
    created = post(api, SEGMENTS, {"name": "Bad", "slug": "bad", "rule": rule})

    assert created.status_code == 400
    assert named in " ".join(created.json()["rule"])
    assert not Segment.objects.filter(slug="bad").exists()

    segment = segment_save(org=org, name="Germany", slug="germany", rule=GERMANS)
    url = f"{SEGMENTS}{segment.pk}/"
    put = api.put(url, {"name": "Germany", "slug": "germany", "rule": rule}, content_type="application/json")
    patch = api.patch(url, {"rule": rule}, content_type="application/json")

    for response in (put, patch):
        assert response.status_code == 400
        assert named in " ".join(response.json()["rule"])
    segment.refresh_from_db()
    assert segment.rule == GERMANS


@pytest.mark.parametrize(
    ("payload", "field", "fragment"),
    [
        ({"name": "No rule", "slug": "no-rule"}, "rule", "needs a rule"),
        ({"name": "Static", "slug": "static", "kind": "static", "rule": GERMANS}, "rule", "no rule"),
        ({"name": "If", "slug": "if", "rule": {"if": [GERMANS, True, False]}}, "rule", "“if” has no SQL form"),
        ({"name": "Kind", "slug": "kind", "kind": "smart", "rule": GERMANS}, "kind", "not a valid choice"),
        ({"name": "Slug", "slug": "not a slug", "rule": GERMANS}, "slug", "letters"),
        ({"slug": "nameless", "rule": GERMANS}, "name", "required"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(org, api, payload, field, fragment):
    response = post(api, SEGMENTS, payload)

    assert response.status_code == 400
    assert fragment in " ".join(response.json()[field])
    assert not Segment.objects.exists()


def test_slugs_are_unique_per_org(org, api, theirs):
    assert post(api, SEGMENTS, {"name": "Ours", "slug": "their-vips", "kind": "static"}).status_code == 201

    duplicate = post(api, SEGMENTS, {"name": "Again", "slug": "their-vips", "kind": "static"})

    assert duplicate.status_code == 400
    assert "already exists" in duplicate.json()["slug"][0]


def test_another_orgs_segment_is_404_for_every_verb(org, other_org, api, theirs):
    url = f"{SEGMENTS}{theirs.pk}/"
    contact = ContactFactory(org=org)
    ids = {"contact_ids": [contact.pk]}

    assert api.get(url).status_code == 404
    replace = {"name": "Hacked", "slug": "hacked", "kind": "static"}
    assert api.put(url, replace, content_type="application/json").status_code == 404
    assert api.patch(url, {"name": "Hacked"}, content_type="application/json").status_code == 404
    assert api.get(f"{url}contacts/").status_code == 404
    assert post(api, f"{url}contacts/", ids).status_code == 404
    assert api.delete(f"{url}contacts/", ids, content_type="application/json").status_code == 404
    assert post(api, f"{url}recompute/", {}).status_code == 404
    assert api.delete(url).status_code == 404
    with org_context(other_org):
        theirs.refresh_from_db()
        assert theirs.name == "Their VIPs"
        assert SegmentMembership.objects.filter(segment=theirs, exited_at__isnull=True).count() == 1


def test_a_write_key_may_not_use_the_segments_api(org, theirs):
    write = Client(headers={"Authorization": f"Bearer {api_key_create(org=org, name='site', scope='write')[1]}"})

    assert write.get(SEGMENTS).status_code == 403
    assert post(write, SEGMENTS, {"name": "X", "slug": "x", "kind": "static"}).status_code == 403
    assert post(write, VALIDATE, {"rule": GERMANS}).status_code == 403
    assert Client().get(SEGMENTS).status_code == 401


# -- members ------------------------------------------------------------------------------------


def test_static_segment_contacts_are_added_and_removed_by_hand(org, api):
    first, second, third = ContactFactory.create_batch(3, org=org)
    segment = SegmentFactory(org=org)
    url = f"{SEGMENTS}{segment.pk}/contacts/"

    assert post(api, url, {"contact_ids": [second.pk]}).json() == {"added": 1, "member_count": 1}
    assert post(api, url, {"contact_ids": [first.pk, second.pk]}).json() == {"added": 1, "member_count": 2}
    # newest entries first: first entered after second, though it is the older contact
    assert member_ids(api, segment.pk) == [first.pk, second.pk]

    removed = api.delete(url, {"contact_ids": [second.pk, third.pk]}, content_type="application/json")

    assert removed.status_code == 200
    assert removed.json() == {"removed": 1, "member_count": 1}
    assert member_ids(api, segment.pk) == [first.pk]
    assert api.get(f"{SEGMENTS}{segment.pk}/").json()["member_count"] == 1
    # the stay is closed, not deleted
    assert SegmentMembership.objects.filter(segment=segment, contact=second, exited_at__isnull=False).exists()


def test_contact_ids_must_be_the_orgs_contacts(org, api, other_org):
    ours = ContactFactory(org=org)
    with scopes_disabled():
        stranger = ContactFactory(org=other_org)
    segment = SegmentFactory(org=org)
    url = f"{SEGMENTS}{segment.pk}/contacts/"

    response = post(api, url, {"contact_ids": [ours.pk, stranger.pk]})

    assert response.status_code == 400
    assert str(stranger.pk) in response.json()["contact_ids"][0]
    assert member_ids(api, segment.pk) == []
    assert post(api, url, {"contact_ids": []}).status_code == 400
    assert post(api, url, {"contact_ids": "all"}).status_code == 400


def test_a_dynamic_segment_takes_no_contacts_by_hand(org, api):
    french = ContactFactory(org=org, country="FR")
    segment = segment_save(org=org, name="Germany", slug="germany", rule=GERMANS)
    url = f"{SEGMENTS}{segment.pk}/contacts/"

    added = post(api, url, {"contact_ids": [french.pk]})
    removed = api.delete(url, {"contact_ids": [french.pk]}, content_type="application/json")

    for response in (added, removed):
        assert response.status_code == 400
        assert "static" in response.json()["segment"][0]
    assert member_ids(api, segment.pk) == []


def test_recompute_brings_a_dynamic_segment_in_step(org, api):
    first = ContactFactory(org=org, country="DE")
    segment = segment_save(org=org, name="Germany", slug="germany", rule=GERMANS)
    # changed behind the segment's back (no incremental check runs for a direct write)
    late = ContactFactory(org=org, country="DE")
    first.country = "AT"
    first.save(update_fields=["country"])

    response = post(api, f"{SEGMENTS}{segment.pk}/recompute/", {})

    assert response.status_code == 200, response.content
    assert response.json() == {"members": 1, "entered": 1, "exited": 1}
    assert member_ids(api, segment.pk) == [late.pk]
    assert api.get(f"{SEGMENTS}{segment.pk}/").json()["member_count"] == 1


def test_a_static_segment_is_not_recomputed(org, api):
    contact = ContactFactory(org=org)
    segment = SegmentFactory(org=org)
    segment_add_contacts(segment=segment, contacts=[contact])

    response = post(api, f"{SEGMENTS}{segment.pk}/recompute/", {})

    assert response.status_code == 400
    assert "dynamic" in response.json()["segment"][0]
    assert member_ids(api, segment.pk) == [contact.pk]


def test_members_list_query_count_does_not_grow_with_rows(org, api, django_assert_max_num_queries):
    company = CompanyFactory(org=org)
    contacts = ContactFactory.create_batch(30, org=org, company=company)
    for contact in contacts:
        contact.tags.add(TagFactory(org=org), TagFactory(org=org))
    segment = SegmentFactory(org=org)
    segment_add_contacts(segment=segment, contacts=contacts)

    with django_assert_max_num_queries(7):  # key and its last-used stamp, segment, count, page, tags, audit entry
        body = api.get(f"{SEGMENTS}{segment.pk}/contacts/").json()

    assert body["count"] == 30
    assert len(body["results"]) == 30
    assert all(len(c["tags"]) == 2 and c["company"] == company.pk for c in body["results"])


# -- conditions/validate ------------------------------------------------------------------------


def test_a_good_rule_is_valid_compilable_and_counted(org, api):
    ContactFactory.create_batch(2, org=org, country="DE")
    ContactFactory(org=org, country="FR")

    response = post(api, VALIDATE, {"rule": GERMANS, "subject": "contact"})

    assert response.status_code == 200
    assert response.json() == {"valid": True, "compilable": True, "count": 2}


def test_the_count_is_of_contacts_not_of_joined_rows(org, api):
    contact = ContactFactory(org=org)
    contact.tags.add(TagFactory(org=org), TagFactory(org=org), TagFactory(org=org))
    ContactFactory(org=org)

    assert post(api, VALIDATE, {"rule": {"var": "tags"}}).json()["count"] == 1


@pytest.mark.parametrize(
    ("rule", "subject", "named"),
    [
        ({"frobnicate": [1, 2]}, "contact", "frobnicate"),
        ({"and": [True, {"==": [{"var": "favourite_colour"}, "red"]}]}, "contact", "favourite_colour"),
        ({"==": [{"var": "country"}, "DE"]}, "event", "country"),  # a contact field, not an event's
        ({"==": [{"var": [{"cat": ["coun", "try"]}]}, "DE"]}, "contact", "var"),  # a computed path
        ({"days_since": "created_at"}, "company", "days_since"),
    ],
)
def test_an_invalid_rule_is_a_400_naming_the_operator_or_path(org, api, rule, subject, named):
    response = post(api, VALIDATE, {"rule": rule, "subject": subject})

    assert response.status_code == 400
    body = response.json()
    assert body["valid"] is False
    assert body["errors"] and any(named in error for error in body["errors"])


def test_a_valid_rule_without_sql_form_is_not_compilable(org, api):
    rule = {"if": [{"==": [{"var": "country"}, "DE"]}, True, {">": [{"var": "score"}, 10]}]}

    response = post(api, VALIDATE, {"rule": rule, "subject": "contact"})

    assert response.status_code == 200
    body = response.json()
    assert (body["valid"], body["compilable"]) == (True, False)
    assert "“if”" in body["not_compilable"]
    assert "count" not in body


def test_other_subjects_are_checked_against_their_own_fields(org, api):
    event_rule = {"==": [{"var": "type"}, "page_view"]}

    assert post(api, VALIDATE, {"rule": event_rule, "subject": "event"}).json() == {"valid": True, "compilable": True}
    assert post(api, VALIDATE, {"rule": event_rule, "subject": "contact"}).status_code == 400
    unknown_subject = post(api, VALIDATE, {"rule": event_rule, "subject": "deal"})
    assert unknown_subject.status_code == 400 and "subject" in unknown_subject.json()
    assert "rule" in post(api, VALIDATE, {"subject": "contact"}).json()


# -- preview (the segment builder's live count) ---------------------------------------------------

PREVIEW = f"{SEGMENTS}preview/"


def page_view(contact, *, days_ago: float) -> Event:
    return Event.objects.create(
        org_id=contact.org_id,
        contact=contact,
        type="page_view",
        occurred_at=timezone.now() - timedelta(days=days_ago),
        message_id=f"pv-{contact.pk}-{days_ago}",
    )


def test_preview_counts_the_matching_contacts_and_samples_the_first_ten_by_id(org, api):
    germans = [ContactFactory(org=org, country="DE", first_name=f"Ana{i}", last_name="Lima") for i in range(12)]
    ContactFactory(org=org, country="FR")

    response = post(api, PREVIEW, {"rule": GERMANS})

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 12
    assert [c["id"] for c in body["sample"]] == [c.pk for c in germans[:10]]
    assert (body["sample"][0]["email"], body["sample"][0]["first_name"]) == (germans[0].email, "Ana0")


def test_preview_counts_events_in_the_window(org, api):
    recent, stale, _never = (ContactFactory(org=org) for _ in range(3))
    page_view(recent, days_ago=2)
    page_view(stale, days_ago=45)

    body = post(api, PREVIEW, {"rule": {">=": [{"event_count": ["page_view", None, 30]}, 1]}}).json()

    assert body["count"] == 1
    assert [c["id"] for c in body["sample"]] == [recent.pk]


@pytest.mark.parametrize(
    ("rule", "named"),
    [
        ({"frobnicate": [{"var": "country"}]}, "frobnicate"),
        ({"==": [{"var": "properties.plan"}, "pro"]}, "properties.plan"),
        ({"==": [{"+": [{"var": "score"}, 1]}, 3]}, "no SQL form"),
    ],
)
def test_preview_reports_errors_naming_the_bad_part(org, api, rule, named):
    ContactFactory(org=org, country="DE")

    response = post(api, PREVIEW, {"rule": rule})

    assert response.status_code == 400
    body = response.json()
    assert "count" not in body
    assert any(named in message for message in body["rule"]), body


def test_preview_never_counts_or_shows_another_orgs_contacts(org, other_org, api):
    mine = ContactFactory(org=org, country="DE", email="mine@acme.example")
    page_view(mine, days_ago=1)
    with org_context(other_org):
        for n in range(3):
            page_view(ContactFactory(org=other_org, country="DE", email=f"secret{n}@globex.example"), days_ago=1)

    for rule in (GERMANS, {">=": [{"event_count": ["page_view", None, 30]}, 1]}):
        response = post(api, PREVIEW, {"rule": rule})
        assert response.json()["count"] == 1
        assert "globex" not in response.content.decode()


def test_preview_in_the_console_session_is_open_to_roles_that_view_segments(org, member_factory):
    ContactFactory(org=org, country="DE")
    analyst = Client()
    analyst.force_login(member_factory(org, Role.ANALYST))  # may view segments, not change them

    assert post(analyst, PREVIEW, {"rule": GERMANS}).json()["count"] == 1
    assert analyst.get(PREVIEW).status_code == 405
