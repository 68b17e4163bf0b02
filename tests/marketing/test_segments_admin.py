"""The segment editor in the console: saving through segment_save, the
recompute and CSV export actions, static add/remove, the membership history, and the rule
builder driven in Chromium."""

import csv
import io
import json
import warnings
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled

from marketing.models import Event, PropertyDefinition, Role, Segment, SegmentMembership
from marketing.segments import segment_add_contacts, segment_recompute, segment_save
from marketing.tenancy import no_org, org_context
from tests.browser import CHROMIUM, CHROMIUM_ARGS, login, playwright_or_skip
from tests.factories import CompanyFactory, ContactFactory, SegmentFactory

CHANGELIST = "/admin/marketing/segment/"
GERMANS = {"==": [{"var": "country"}, "DE"]}


def page_view(contact, *, days_ago: float, n: int = 0) -> Event:
    occurred = timezone.now() - timedelta(days=days_ago)
    return Event.objects.create(
        org_id=contact.org_id,
        contact=contact,
        type="page_view",
        occurred_at=occurred,
        message_id=f"pv-{contact.pk}-{days_ago}-{n}",
    )


def open_members(segment) -> set[int]:
    return set(
        SegmentMembership.objects.filter(segment=segment, exited_at__isnull=True).values_list("contact_id", flat=True)
    )


def client_for(member_factory, org, role) -> Client:
    client = Client()
    client.force_login(member_factory(org, role))
    return client


# --- saving ---------------------------------------------------------------------------------------


def add_form(rule, **fields) -> dict:
    return {
        "name": "Germans",
        "slug": "germans",
        "kind": "dynamic",
        "description": "",
        "rule": rule if isinstance(rule, str) else json.dumps(rule),
        **fields,
    }


@pytest.mark.parametrize(
    ("rule", "named"),
    [
        ({"==": [{"var": "shoe_size"}, 44]}, "shoe_size"),
        ({"and": [GERMANS, {"frobnicate": [1]}]}, "frobnicate"),
        ({"==": [{"+": [{"var": "score"}, 1]}, 3]}, "no SQL form"),
        ("", "needs a rule"),
    ],
)
def test_saving_a_bad_rule_shows_the_error_at_the_rule_and_saves_nothing(org, console, rule, named):
    ContactFactory(org=org, country="DE")

    response = console.post(reverse("admin:marketing_segment_add"), add_form(rule))

    assert response.status_code == 200  # the form again, not a 500
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["rule"]
    assert any(named in message for message in errors["rule"]), errors["rule"]
    assert named in response.content.decode()
    assert not Segment.objects.exists()
    assert not SegmentMembership.objects.exists()


def test_a_static_segment_with_a_rule_is_refused_at_the_rule(org, console):
    response = console.post(reverse("admin:marketing_segment_add"), add_form(GERMANS, kind="static"))

    assert "has no rule" in " ".join(response.context["adminform"].form.errors["rule"])
    assert not Segment.objects.exists()


def test_a_taken_slug_is_refused_at_the_slug(org, console):
    SegmentFactory(org=org, slug="germans")

    response = console.post(reverse("admin:marketing_segment_add"), add_form(GERMANS))

    assert list(response.context["adminform"].form.errors) == ["slug"]
    assert Segment.objects.count() == 1


def test_saving_a_good_rule_computes_the_segment(org, console):
    ana, ben = ContactFactory(org=org, country="DE"), ContactFactory(org=org, country="DE")
    ContactFactory(org=org, country="FR")

    response = console.post(reverse("admin:marketing_segment_add"), add_form(GERMANS), follow=True)

    segment = Segment.objects.get(slug="germans")
    assert segment.rule == GERMANS
    assert segment.member_count == 2 and segment.computed_at is not None
    assert open_members(segment) == {ana.pk, ben.pk}
    assert "“Germans” has 2 member(s) now." in [str(m) for m in response.context["messages"]]

    page = console.get(reverse("admin:marketing_segment_change", args=[segment.pk])).content.decode()
    # The saved rule comes back laid out as the builder writes it, one condition a line.
    assert "{&quot;==&quot;: [{&quot;var&quot;: &quot;country&quot;}, &quot;DE&quot;]}" in page


def test_changing_the_rule_recomputes_the_members(org, console):
    ana, ben = ContactFactory(org=org, country="DE"), ContactFactory(org=org, country="FR")
    segment = segment_save(org=org, name="Germans", slug="germans", rule=GERMANS)

    rule = {"or": [GERMANS, {"==": [{"var": "country"}, "FR"]}]}
    console.post(reverse("admin:marketing_segment_change", args=[segment.pk]), add_form(rule))

    segment.refresh_from_db()
    assert segment.rule == rule
    assert segment.member_count == 2 and open_members(segment) == {ana.pk, ben.pk}


def test_the_form_offers_the_builder_the_orgs_fields_only(org, other_org, console):
    PropertyDefinition.objects.create(
        org=org, subject="contact", key="plan", label="Plan", type="enum", options=["pro"]
    )
    PropertyDefinition.objects.create(org=org, subject="company", key="tier", type="string")
    with org_context(other_org):
        PropertyDefinition.objects.create(org=other_org, subject="contact", key="globex_secret", type="string")

    response = console.get(reverse("admin:marketing_segment_add"))

    config = response.context["rule_builder"]
    paths = [f["path"] for f in config["fields"]]
    assert {"country", "email", "company.name", "tags", "lists", "score"} <= set(paths)
    assert "properties.plan" in paths
    assert "properties.globex_secret" not in paths and "properties.tier" not in paths
    plan = next(f for f in config["fields"] if f["path"] == "properties.plan")
    assert plan["kind"] == "enum" and plan["options"] == [["pro", "pro"]]
    page = response.content.decode()
    assert 'id="rule-builder-config"' in page and "console/rule_builder.js" in page
    assert "globex_secret" not in page


def test_a_segment_another_rule_names_is_not_deleted(org, console):
    from django.contrib.admin.models import LogEntry

    ContactFactory(org=org, country="DE")
    germans = segment_save(org=org, name="Germans", slug="germans", rule=GERMANS)
    segment_save(org=org, name="German VIPs", slug="german-vips", rule={"in_segment": "germans"})
    unused = SegmentFactory(org=org, name="Unused")

    one = console.post(reverse("admin:marketing_segment_delete", args=[germans.pk]), {"post": "yes"}, follow=True)
    both = console.post(
        CHANGELIST,
        {"action": "delete_selected", "_selected_action": [germans.pk, unused.pk], "post": "yes"},
        follow=True,
    )

    for response in (one, both):
        assert "german-vips use this segment" in " ".join(str(m) for m in response.context["messages"])
    assert set(Segment.objects.values_list("slug", flat=True)) == {"germans", "german-vips", unused.slug}
    assert SegmentMembership.objects.filter(segment=germans).count() == 1
    assert not LogEntry.objects.exists()  # no deletion logged for what was kept

    segment_add_contacts(segment=unused, contacts=ContactFactory.create_batch(3, org=org))
    confirm = console.get(reverse("admin:marketing_segment_delete", args=[unused.pk])).content.decode()
    assert "3 membership stay(s), current and past" in confirm
    console.post(reverse("admin:marketing_segment_delete", args=[unused.pk]), {"post": "yes"})
    assert not Segment.objects.filter(pk=unused.pk).exists()
    assert not SegmentMembership.objects.filter(segment_id=unused.pk).exists()


# --- actions --------------------------------------------------------------------------------------


def test_recompute_action_brings_dynamic_segments_in_step_and_skips_static_ones(org, console):
    ContactFactory(org=org, country="DE")
    segment = segment_save(org=org, name="Germans", slug="germans", rule=GERMANS)
    static = SegmentFactory(org=org)
    newcomer = ContactFactory(org=org, country="DE")

    response = console.post(
        CHANGELIST, {"action": "recompute", "_selected_action": [segment.pk, static.pk]}, follow=True
    )

    segment.refresh_from_db()
    assert segment.member_count == 2 and newcomer.pk in open_members(segment)
    shown = [str(m) for m in response.context["messages"]]
    assert "“Germans”: 2 member(s), 1 entered, 0 left." in shown
    assert "Skipped 1 static segment(s): they have no rule." in shown
    assert Event.objects.filter(type="segment_entered", contact=newcomer).exists()


def test_recompute_reports_a_rule_that_no_longer_compiles(org, console):
    plan = PropertyDefinition.objects.create(org=org, subject="contact", key="plan", type="string")
    ContactFactory(org=org, properties={"plan": "pro"})
    segment = segment_save(org=org, name="Pro", slug="pro", rule={"==": [{"var": "properties.plan"}, "pro"]})
    plan.delete()

    response = console.post(CHANGELIST, {"action": "recompute", "_selected_action": [segment.pk]}, follow=True)

    assert response.status_code == 200
    shown = " ".join(str(m) for m in response.context["messages"])
    assert "“Pro” was not recomputed" in shown and "properties.plan" in shown
    segment.refresh_from_db()
    assert segment.member_count == 1


def test_analyst_may_not_recompute(org, member_factory):
    ContactFactory(org=org, country="DE")
    segment = segment_save(org=org, name="Germans", slug="germans", rule=GERMANS)
    ContactFactory(org=org, country="DE")
    analyst = client_for(member_factory, org, Role.ANALYST)

    analyst.post(CHANGELIST, {"action": "recompute", "_selected_action": [segment.pk]})

    segment.refresh_from_db()
    assert segment.member_count == 1


def read_csv(response) -> list[list[str]]:
    """Reads a streaming response the way a server does: after the request's middleware (and its
    org scope) is gone. Tenant queries outside a scope see nothing, so rows only appear if the
    response's generator enters the org itself."""
    assert response.streaming
    with no_org():
        body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def test_export_streams_the_current_members_as_csv(org, other_org, console, django_assert_max_num_queries):
    acme = CompanyFactory(org=org, name="Acme")
    ana = ContactFactory(
        org=org, country="DE", email="ana@acme.example", first_name="Ana", last_name="Lima", company=acme
    )
    eve = ContactFactory(org=org, country="DE", email="eve@acme.example", first_name="=HYPERLINK(1)", last_name="")
    leaver = ContactFactory(org=org, country="DE", email="leaver@acme.example")
    ContactFactory(org=org, country="FR", email="fr@acme.example")
    segment = segment_save(org=org, name="Germans", slug="germans", rule=GERMANS)
    leaver.country = "FR"
    leaver.save()
    segment_recompute(segment=segment)
    with scopes_disabled(), org_context(other_org):
        ContactFactory(org=other_org, country="DE", email="secret@globex.example")
        segment_save(org=other_org, name="Germans", slug="germans", rule=GERMANS)

    response = console.post(CHANGELIST, {"action": "export_members_csv", "_selected_action": [segment.pk]})
    with django_assert_max_num_queries(1):  # one chunked query, however many members
        rows = read_csv(response)

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="segment-germans-members.csv"' in response["Content-Disposition"]
    assert rows[0] == ["email", "first_name", "last_name", "company", "entered_at"]
    stay = SegmentMembership.objects.get(segment=segment, contact=ana)
    assert rows[1:] == [
        ["ana@acme.example", "Ana", "Lima", "Acme", stay.entered_at.strftime("%Y-%m-%dT%H:%M:%SZ")],
        ["eve@acme.example", "'=HYPERLINK(1)", "", "", rows[2][4]],  # a formula is written as text
    ]
    assert eve.pk in open_members(segment)


def test_export_under_asgi_is_sent_chunk_by_chunk(org, marketer, monkeypatch):
    """Under daphne Django would read a synchronous stream to its end before sending; the export
    hands it over a chunk at a time instead, each step in the generator's own org context."""
    monkeypatch.setattr("marketing.admin.EXPORT_CHUNK", 2)
    germans = ContactFactory.create_batch(3, org=org, country="DE")
    segment = segment_save(org=org, name="Germans", slug="germans", rule=GERMANS)
    client = AsyncClient()
    client.force_login(marketer)

    async def export():
        response = await client.post(CHANGELIST, {"action": "export_members_csv", "_selected_action": [segment.pk]})
        return response, [part async for part in response.streaming_content]

    with warnings.catch_warnings(record=True) as caught, no_org():
        warnings.simplefilter("always")
        response, parts = async_to_sync(export)()

    assert response.is_async
    assert not [w for w in caught if "synchronous iterators" in str(w.message)]
    assert len(parts) == 3  # the header, then chunks of two rows
    rows = list(csv.reader(io.StringIO(b"".join(parts).decode())))
    assert [row[0] for row in rows[1:]] == [c.email for c in germans]


def test_export_reaches_only_the_orgs_segments(org, other_org, console):
    with scopes_disabled(), org_context(other_org):
        ContactFactory(org=other_org, country="DE", email="secret@globex.example")
        theirs = segment_save(org=other_org, name="Germans", slug="germans", rule=GERMANS)

    by_action = console.post(CHANGELIST, {"action": "export_members_csv", "_selected_action": [theirs.pk]})
    by_url = console.get(reverse("admin:marketing_segment_members_csv", args=[theirs.pk]))

    assert not by_action.streaming and by_action.status_code == 302  # nothing selected: back to the list
    assert by_url.status_code == 404


def test_export_link_on_the_change_page_gives_the_same_csv(org, console):
    ana = ContactFactory(org=org, country="DE", email="ana@acme.example")
    segment = segment_save(org=org, name="Germans", slug="germans", rule=GERMANS)

    rows = read_csv(console.get(reverse("admin:marketing_segment_members_csv", args=[segment.pk])))

    assert [row[0] for row in rows] == ["email", ana.email]


def test_export_asks_for_one_segment(org, console):
    one, two = SegmentFactory(org=org), SegmentFactory(org=org)

    response = console.post(
        CHANGELIST, {"action": "export_members_csv", "_selected_action": [one.pk, two.pk]}, follow=True
    )

    assert not response.streaming
    assert "Select one segment to export its members." in [str(m) for m in response.context["messages"]]


# --- static segments ------------------------------------------------------------------------------


def test_contacts_are_added_to_and_taken_out_of_a_static_segment(org, other_org, console):
    segment = SegmentFactory(org=org, name="Hand-picked")
    ana, ben = ContactFactory(org=org), ContactFactory(org=org)
    url = reverse("admin:marketing_segment_contacts", args=[segment.pk])
    with scopes_disabled():
        theirs = ContactFactory(org=other_org)

    added = console.post(url, {"contacts": [ana.pk, ben.pk], "add": "Add"}, follow=True)
    assert open_members(segment) == {ana.pk, ben.pk}
    assert "Added 2 contact(s) to “Hand-picked”." in [str(m) for m in added.context["messages"]]

    console.post(url, {"contacts": [ana.pk], "remove": "Take out"})
    assert open_members(segment) == {ben.pk}
    assert SegmentMembership.objects.get(segment=segment, contact=ana).exited_at is not None
    segment.refresh_from_db()
    assert segment.member_count == 1

    refused = console.post(url, {"contacts": [theirs.pk], "add": "Add"}, follow=True)
    assert "Select a valid choice" in " ".join(str(m) for m in refused.context["messages"])
    assert open_members(segment) == {ben.pk}


def test_static_segment_page_offers_the_contact_picker_and_dynamic_does_not(org, console, member_factory):
    static = SegmentFactory(org=org)
    dynamic = segment_save(org=org, name="Germans", slug="germans", rule=GERMANS)

    static_page = console.get(reverse("admin:marketing_segment_change", args=[static.pk])).content.decode()
    dynamic_page = console.get(reverse("admin:marketing_segment_change", args=[dynamic.pk])).content.decode()

    assert 'id="segment-contacts"' in static_page and "admin-autocomplete" in static_page
    assert 'id="segment-contacts"' not in dynamic_page
    refused = console.post(
        reverse("admin:marketing_segment_contacts", args=[dynamic.pk]),
        {"contacts": [ContactFactory(org=org).pk], "add": "Add"},
        follow=True,
    )
    assert "Only static segments" in " ".join(str(m) for m in refused.context["messages"])
    analyst = client_for(member_factory, org, Role.ANALYST)
    contact = ContactFactory(org=org)
    url = reverse("admin:marketing_segment_contacts", args=[static.pk])
    assert analyst.post(url, {"contacts": [contact.pk], "add": "Add"}).status_code == 403
    assert open_members(static) == set()


# --- history --------------------------------------------------------------------------------------


def test_change_page_shows_who_entered_and_left(org, console):
    ContactFactory(org=org, country="DE", email="ana@acme.example")
    ben = ContactFactory(org=org, country="DE", email="ben@acme.example")
    segment = segment_save(org=org, name="Germans", slug="germans", rule=GERMANS)
    ben.country = "FR"
    ben.save()
    segment_recompute(segment=segment)

    page = console.get(reverse("admin:marketing_segment_change", args=[segment.pk])).content.decode()
    history = page.split('id="segment-history"')[1]

    assert history.index("ben@acme.example") < history.index("ana@acme.example")  # newest move first
    ben_row = history.split("ben@acme.example")[1].split("</tr>")[0]
    ana_row = history.split("ana@acme.example")[1].split("</tr>")[0]
    assert "still in" in ana_row and "still in" not in ben_row
    assert f"/admin/marketing/segmentmembership/?segment__id__exact={segment.pk}" in history
    assert "2 stays" in history


def test_history_shows_the_latest_hundred_and_links_to_all(org, console, django_assert_max_num_queries):
    segment = SegmentFactory(org=org)
    contacts = ContactFactory.create_batch(105, org=org)
    segment_add_contacts(segment=segment, contacts=contacts)
    url = reverse("admin:marketing_segment_change", args=[segment.pk])

    with django_assert_max_num_queries(16):
        page = console.get(url).content.decode()

    assert "The latest 100 of 105 stays" in page
    assert page.count('class="stay-current"') == 100


def test_membership_list_is_read_only_and_filters_by_segment(org, console):
    ana, ben = ContactFactory(org=org, email="ana@acme.example"), ContactFactory(org=org, email="ben@acme.example")
    one, two = SegmentFactory(org=org), SegmentFactory(org=org)
    segment_add_contacts(segment=one, contacts=[ana])
    segment_add_contacts(segment=two, contacts=[ben])
    stay = SegmentMembership.objects.get(segment=one)

    filtered = console.get("/admin/marketing/segmentmembership/", {"segment__id__exact": one.pk}).content.decode()

    assert "ana@acme.example" in filtered and "ben@acme.example" not in filtered
    assert console.get("/admin/marketing/segmentmembership/add/").status_code == 403
    console.post(reverse("admin:marketing_segmentmembership_change", args=[stay.pk]), {"exited_at": "2020-01-01"})
    stay.refresh_from_db()
    assert stay.exited_at is None


# --- the builder in a browser ----------------------------------------------------------------------


@pytest.mark.slow
def test_rule_builder_in_chromium_builds_previews_and_saves(org, other_org, live_server, member_factory):
    sync_playwright = playwright_or_skip()
    member_factory(org, Role.ADMIN, username="ada")
    # A name that would run script if the page put it into the DOM as HTML.
    engaged = ContactFactory(org=org, country="DE", first_name='<img src=x onerror="window.pwned=1">')
    page_view(engaged, days_ago=3)
    twice = ContactFactory(org=org, country="DE")
    page_view(twice, days_ago=1)
    page_view(twice, days_ago=2, n=1)
    page_view(ContactFactory(org=org, country="DE"), days_ago=40)  # outside the window
    page_view(ContactFactory(org=org, country="FR"), days_ago=1)  # not in Germany
    ContactFactory(org=org, country="DE")  # no visits
    with org_context(other_org):
        page_view(ContactFactory(org=other_org, country="DE"), days_ago=1)  # another org's
    expected = {"and": [GERMANS, {">=": [{"event_count": ["page_view", None, 30]}, 1]}]}

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            login(page, live_server.url, "ada", next_url="/admin/marketing/segment/")
            with page.expect_navigation():
                page.click(f"a[href='{CHANGELIST}add/']")  # "Add segment"
            page.fill("#id_name", "Engaged Germans")

            rows = page.locator(".rule-builder-row")
            rows.nth(0).get_by_label("Field").select_option("country")
            rows.nth(0).get_by_label("Value").select_option(label="Germany")  # the countries' pick-list
            page.get_by_role("button", name="+ Add condition").click()
            rows.nth(1).get_by_label("Field").select_option("@events")
            rows.nth(1).get_by_label("Event type").fill("page_view")
            rule_text = page.input_value("#id_rule")
            counts = {"how many": rows.nth(1).get_by_label("How many events").input_value()}
            counts["days"] = rows.nth(1).get_by_label("Days").input_value()

            page.get_by_role("button", name="Preview").click()
            page.wait_for_selector(".rule-preview-result .count")
            count = page.inner_text(".rule-preview-result .count")
            sample = page.locator(".rule-preview-result tbody tr td:first-child").all_inner_texts()
            names = page.locator(".rule-preview-result tbody tr td:nth-child(2)").all_inner_texts()
            injected = page.evaluate("[window.pwned, document.querySelectorAll('.rule-preview-result img').length]")

            with page.expect_navigation():
                page.click("[name=_save]")
            message = page.inner_text("#main")  # the messages sit above the form

            # The saved rule comes back as the same two rows; a rule the builder cannot show is left alone.
            with page.expect_navigation():
                page.locator("#result_list").get_by_role("link", name="Engaged Germans").click()
            page.wait_for_selector(".rule-builder-row")  # drawn once the API has named the fields
            reloaded = page.locator(".rule-builder-row")
            shown = [reloaded.count(), reloaded.nth(0).get_by_label("Value").input_value()]
            advanced = '{"or": [{"and": [{"has_tag": "vip"}, {"!": {"var": "email"}}]}]}'
            page.fill("#id_rule", advanced)
            json_mode = page.is_visible("text=This rule is edited as JSON")
            page.get_by_role("button", name="Preview").click()  # the builder leaves the box as typed
            left_alone = page.input_value("#id_rule")
        finally:
            browser.close()

    assert counts == {"how many": "1", "days": "30"}
    assert json.loads(rule_text) == expected
    assert count == "2"
    assert sorted(sample) == sorted([engaged.email, twice.email])
    assert '<img src=x onerror="window.pwned=1"> ' + engaged.last_name in names  # shown as text
    assert injected == [None, 0]
    assert "has 2 member(s) now" in message
    segment = Segment.objects.get(slug="engaged-germans")
    assert segment.rule == expected
    assert segment.member_count == 2
    assert open_members(segment) == {engaged.pk, twice.pk}
    assert shown == [2, '"DE"']  # the pick-list's option for "DE"
    assert json_mode and left_alone == advanced
