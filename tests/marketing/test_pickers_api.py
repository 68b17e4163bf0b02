"""The console's pickers on the API: message templates, destinations, members, tags, lists (the org's
rows only, searched and filtered), the fields a rule may read, and a rule's preview."""

import pytest
from django.utils import timezone
from django_scopes import scopes_disabled

from channels_app.models import Destination, MessageTemplate
from channels_app.template_versions import template_publish
from marketing.models import Event, PropertyDefinition, Role
from marketing.segments import segment_save
from marketing.tenancy import org_context
from tests.factories import ContactFactory, ContactListFactory, MembershipFactory, TagFactory
from workflows.services import workflow_create

JSON = "application/json"
EMAIL_VARIANTS = [
    {"name": "A", "weight": 50, "subject": "Hi", "html": "<p>Hi</p>", "text": "Hi"},
    {"name": "B", "weight": 50, "subject": "Hello", "html": "<p>Hello</p>", "text": "Hello"},
]


def results(client, url: str, **params) -> list[dict]:
    response = client.get(url, params)
    assert response.status_code == 200, response.content
    return response.json()["results"]


@pytest.fixture
def templates(org, other_org):
    welcome = MessageTemplate.objects.create(
        org=org, slug="welcome", name="Welcome mail", channel="email", variants=EMAIL_VARIANTS
    )
    template_publish(template=welcome, by=None)
    MessageTemplate.objects.create(org=org, slug="reminder", name="Reminder", channel="sms", variants=[{"name": "A"}])
    with org_context(other_org):
        MessageTemplate.objects.create(org=other_org, slug="welcome", name="Their welcome", channel="email")


def test_message_templates_list_the_orgs_own_with_status_and_variant_names(templates, console):
    listed = results(console, "/api/v1/message-templates/")

    assert [t["slug"] for t in listed] == ["reminder", "welcome"]
    welcome = listed[1]
    assert welcome["channel"] == "email" and welcome["published"] is True and welcome["status"] == "published"
    assert welcome["variants"] == ["A", "B"]
    assert listed[0]["status"] == "draft"
    assert [t["slug"] for t in results(console, "/api/v1/message-templates/", channel="sms")] == ["reminder"]
    assert [t["slug"] for t in results(console, "/api/v1/message-templates/", search="welc")] == ["welcome"]
    assert [t["slug"] for t in results(console, "/api/v1/message-templates/", published="false")] == ["reminder"]
    assert console.get("/api/v1/message-templates/", {"channel": "fax"}).status_code == 400


def test_destinations_list_active_and_channel_without_credentials(org, other_org, api):
    Destination.objects.create(org=org, slug="sales", name="Sales room", channel="slack", url="https://h.test/s")
    Destination.objects.create(
        org=org, slug="crm", name="CRM hook", channel="webhook", url="https://h.test/w", secret="s3", active=False
    )
    with org_context(other_org):
        Destination.objects.create(org=other_org, slug="theirs", name="Theirs", channel="slack", url="https://h.t/")

    listed = results(api, "/api/v1/destinations/")

    assert [d["slug"] for d in listed] == ["crm", "sales"]
    assert not {"url", "secret"} & set(listed[0])
    assert [d["slug"] for d in results(api, "/api/v1/destinations/", channel="slack")] == ["sales"]
    assert [d["slug"] for d in results(api, "/api/v1/destinations/", active="true")] == ["sales"]
    assert [d["slug"] for d in results(api, "/api/v1/destinations/", search="hook")] == ["crm"]


def test_members_list_the_orgs_users_with_their_role(org, other_org, marketer, member_factory, console):
    rep = member_factory(org, Role.SALES, username="sam", first_name="Sam", last_name="Reed", email="sam@acme.test")
    with scopes_disabled():
        MembershipFactory(org=other_org, user__username="stranger", user__first_name="Sam")

    listed = results(console, "/api/v1/members/")

    assert {m["id"] for m in listed} == {marketer.pk, rep.pk}
    sam = next(m for m in listed if m["id"] == rep.pk)
    assert sam == {"id": rep.pk, "name": "Sam Reed", "email": "sam@acme.test", "role": "sales"}
    assert [m["id"] for m in results(console, "/api/v1/members/", search="sam")] == [rep.pk]
    assert [m["id"] for m in results(console, "/api/v1/members/", role="marketer")] == [marketer.pk]
    assert console.get(f"/api/v1/members/{rep.pk}/").json()["name"] == "Sam Reed"


def test_members_are_not_for_a_sales_rep(org, member_factory):
    from django.test import Client

    client = Client()
    client.force_login(member_factory(org, Role.SALES, username="sam"))
    assert client.get("/api/v1/members/").status_code == 403


def test_tags_and_lists_are_the_orgs_searched(org, other_org, console):
    TagFactory(org=org, name="vip")
    TagFactory(org=org, name="webinar-2026")
    ContactListFactory(org=org, slug="newsletter", name="Newsletter")
    ContactListFactory(org=org, slug="beta", name="Beta testers")
    with scopes_disabled():
        TagFactory(org=other_org, name="vip-theirs")
        ContactListFactory(org=other_org, slug="newsletter-theirs", name="Newsletter")

    assert [t["name"] for t in results(console, "/api/v1/tags/")] == ["vip", "webinar-2026"]
    assert [t["name"] for t in results(console, "/api/v1/tags/", search="vi")] == ["vip"]
    assert [x["slug"] for x in results(console, "/api/v1/lists/")] == ["beta", "newsletter"]
    assert [x["slug"] for x in results(console, "/api/v1/lists/", search="news")] == ["newsletter"]


@pytest.fixture
def vocabulary(org, other_org):
    """Properties and events in the org, and others in another org that must not show."""
    PropertyDefinition.objects.create(
        org=org, subject="contact", key="plan", label="Plan", type="enum", options=["free", "pro"]
    )
    PropertyDefinition.objects.create(org=org, subject="company", key="tier", type="string")
    PropertyDefinition.objects.create(org=org, subject="event", key="form", type="string")
    contact = ContactFactory(org=org)
    for n, (kind, properties) in enumerate([("form_submitted", {"form": "demo"}), ("page_view", {"url": "/x"})]):
        Event.objects.create(
            org=org, contact=contact, type=kind, properties=properties, occurred_at=timezone.now(), message_id=f"m{n}"
        )
    with org_context(other_org):
        PropertyDefinition.objects.create(org=other_org, subject="contact", key="secret_plan", type="string")
        theirs = ContactFactory(org=other_org)
        Event.objects.create(
            org=other_org, contact=theirs, type="their_event", occurred_at=timezone.now(), message_id="t"
        )


def test_condition_fields_cover_the_orgs_properties_and_event_types_only(vocabulary, console):
    body = console.get("/api/v1/conditions/fields/").json()
    fields = {f["path"]: f for f in body["fields"]}

    assert fields["email"]["type"] == "string"
    assert fields["score"]["type"] == "number"
    assert {"value": "lead", "label": "Lead"} in fields["lifecycle_stage"]["choices"]
    assert {"value": "DE", "label": "Germany"} in fields["country"]["choices"]
    assert fields["properties.plan"] == {
        "path": "properties.plan",
        "label": "Plan",
        "group": "Custom properties",
        "type": "enum",
        "choices": [{"value": "free", "label": "free"}, {"value": "pro", "label": "pro"}],
    }
    assert fields["company.properties.tier"]["type"] == "string"
    assert "company.industry" in fields and "event.properties.form" in fields
    assert "properties.secret_plan" not in fields
    types = {t["type"]: t["properties"] for t in body["event_types"]}
    assert types == {"form_submitted": ["form"], "page_view": ["url"]}
    assert {c["value"] for c in fields["event.type"]["choices"]} == {"form_submitted", "page_view"}

    event = console.get("/api/v1/conditions/fields/", {"subject": "event"}).json()
    assert {f["path"] for f in event["fields"]} == {"type", "occurred_at", "properties.form"}
    assert console.get("/api/v1/conditions/fields/", {"subject": "deal"}).status_code == 400


def test_condition_fields_with_a_workflow_add_its_paths(org, vocabulary, console):
    workflow = workflow_create(
        org=org,
        name="Demo follow-up",
        slug="demo",
        definition={
            "trigger": {"type": "event", "event": "form_submitted"},
            "steps": [
                {"id": "lookup", "name": "Look up CRM", "type": "action", "action": "log", "config": {"message": "hi"}}
            ],
        },
    )

    body = console.get("/api/v1/conditions/fields/", {"workflow": workflow.pk}).json()
    fields = {f["path"]: f for f in body["fields"]}

    assert fields["workflow.steps.lookup.result"]["label"] == "Result of “Look up CRM”"
    assert "workflow.trigger.properties.form" in fields
    assert "workflow.steps.lookup.result" not in {
        f["path"] for f in console.get("/api/v1/conditions/fields/").json()["fields"]
    }


def test_condition_fields_queries_are_bounded(vocabulary, console, django_assert_max_num_queries):
    console.get("/api/v1/conditions/fields/")
    with django_assert_max_num_queries(10):
        assert console.get("/api/v1/conditions/fields/").status_code == 200


def test_event_types_are_the_orgs_stored_ones_and_the_built_in_ones(org, vocabulary, console, api):
    Event.objects.create(
        org=org, contact=ContactFactory(org=org), type="webinar_attended", occurred_at=timezone.now(), message_id="w"
    )

    listed = results(console, "/api/v1/event-types/")
    by_type = {t["type"]: t for t in listed}

    assert [t["type"] for t in listed] == sorted(by_type)
    assert by_type["webinar_attended"] == {
        "type": "webinar_attended",
        "label": "Webinar attended",
        "built_in": False,
        "seen": True,
    }
    assert by_type["form_submitted"]["built_in"] is True and by_type["form_submitted"]["seen"] is True
    assert by_type["email_opened"] == {"type": "email_opened", "label": "Email opened", "built_in": True, "seen": False}
    assert "their_event" not in by_type  # another org's
    assert [t["type"] for t in results(console, "/api/v1/event-types/", search="WEBINAR")] == ["webinar_attended"]
    assert [t["type"] for t in results(api, "/api/v1/event-types/", search="opened")] == ["email_opened"]


def test_event_types_are_refused_without_a_key_or_session(org, client):
    assert client.get("/api/v1/event-types/").status_code in {401, 403}


def test_picker_lists_have_bounded_queries(org, templates, member_factory, console, django_assert_max_num_queries):
    for i in range(10):
        member_factory(org, Role.SALES, username=f"rep{i}")
        TagFactory(org=org)
    console.get("/api/v1/members/")
    urls = ("/api/v1/members/", "/api/v1/tags/", "/api/v1/message-templates/", "/api/v1/lists/", "/api/v1/event-types/")
    for url in urls:
        with django_assert_max_num_queries(10):
            assert console.get(url).status_code == 200


def test_segment_preview_counts_what_the_segment_would_hold(org, console, api):
    for country in ("DE", "DE", "FR"):
        ContactFactory(org=org, country=country)
    rule = {"==": [{"var": "country"}, "DE"]}

    response = api.post("/api/v1/segments/preview/", {"rule": rule}, content_type=JSON)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == 2 and len(body["sample"]) == 2
    assert {c["country"] for c in body["sample"]} == {"DE"}
    saved = segment_save(org=org, name="Germany", slug="de", kind="dynamic", rule=rule)
    saved.refresh_from_db()
    assert saved.member_count == body["count"]


def test_segment_preview_names_a_bad_rules_error(org, api):
    unknown = api.post("/api/v1/segments/preview/", {"rule": {"==": [{"var": "shoe_size"}, 4]}}, content_type=JSON)
    assert unknown.status_code == 400
    assert "shoe_size" in " ".join(unknown.json()["rule"])
    empty = api.post("/api/v1/segments/preview/", {"rule": None}, content_type=JSON)
    assert empty.status_code == 400 and "rule" in empty.json()


def test_segment_preview_is_refused_to_a_sales_rep_and_counts_once_per_contact(org, member_factory, api):
    from django.test import Client

    tagged = ContactFactory(org=org)
    for name in ("vip", "gold"):
        tagged.tags.add(TagFactory(org=org, name=name))
    rule = {"or": [{"in": ["vip", {"var": "tags"}]}, {"in": ["gold", {"var": "tags"}]}]}
    assert api.post("/api/v1/segments/preview/", {"rule": rule}, content_type=JSON).json()["count"] == 1

    rep = Client()
    rep.force_login(member_factory(org, Role.SALES, username="sam"))
    assert rep.post("/api/v1/segments/preview/", {"rule": rule}, content_type=JSON).status_code == 403
