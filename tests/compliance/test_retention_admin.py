"""The console's Data retention page: a line per data kind with its days and the dry-run count,
Preview counts without saving, Save keeps the days; errors on their field; admins and
compliance officers change it, a marketer only reads it; it fits 1366 px in Chromium."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from compliance.models import RetentionPolicy
from compliance.retention import retention_policies_save
from marketing.models import Event, Role
from tests.factories import ContactFactory

PAGE = reverse("admin:compliance_retentionpolicy_changelist")
ALL_FOREVER = {f"days_{kind}": "" for kind in ("events", "messages", "message_bodies", "step_runs", "instances")}
ALL_FOREVER |= {"days_imports": "", "days_logs": ""}


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def officer(org, member_factory):
    return member_factory(org, Role.COMPLIANCE, username="cora")


@pytest.fixture
def old_events(org):
    contact = ContactFactory(org=org)
    at = timezone.now() - timedelta(days=200)
    for n in range(3):
        Event.objects.create(
            org=org, contact=contact, type="page_viewed", occurred_at=at, received_at=at, message_id=f"m{n}"
        )


def test_the_page_lists_every_kind_with_what_the_next_purge_would_delete(org, officer, old_events):
    retention_policies_save(org=org, days={"events": 180})
    html = client_for(officer).get(PAGE).content.decode()
    for label in ("Events", "Messages", "Message bodies", "Workflow step runs", "Finished workflow runs", "Imports"):
        assert label in html
    assert "3 rows would be deleted at the next purge" in html
    assert "Kept forever: nothing is deleted" in html
    assert 'name="days_events"' in html and 'value="180"' in html
    assert "Preview counts" in html and "Save" in html


def test_preview_counts_the_days_typed_without_saving_them(org, officer, old_events):
    response = client_for(officer).post(PAGE, {**ALL_FOREVER, "days_events": "90", "preview": "1"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "(preview, not saved)" in html and "3 rows would be deleted at the next purge" in html
    assert not RetentionPolicy.objects.exists()
    assert Event.objects.count() == 3


def test_save_keeps_the_days_and_empty_means_forever(org, officer):
    retention_policies_save(org=org, days={"logs": 30})
    response = client_for(officer).post(PAGE, {**ALL_FOREVER, "days_events": "365", "save": "1"})
    assert response.status_code == 302
    days = dict(RetentionPolicy.objects.values_list("kind", "days"))
    assert days["events"] == 365 and days["logs"] is None and days["messages"] is None
    assert RetentionPolicy.objects.get(kind="events").updated_by.username == "cora"


def test_errors_are_on_their_field_and_nothing_is_saved(org, officer):
    response = client_for(officer).post(
        PAGE, {**ALL_FOREVER, "days_messages": "7", "days_events": "soon", "days_logs": "30", "save": "1"}
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors["days_messages"] == ["Messages: at least 30 day(s), or empty for forever."]
    assert form.errors["days_events"] == ["Enter a whole number."]
    assert "days_logs" not in form.errors
    assert not RetentionPolicy.objects.exists()


def test_an_admin_may_change_a_marketer_only_reads_and_sales_do_not_see_it(org, member_factory, old_events):
    retention_policies_save(org=org, days={"events": 180})
    admin = client_for(member_factory(org, Role.ADMIN, username="ada"))
    assert admin.post(PAGE, {**ALL_FOREVER, "days_events": "180", "days_imports": "60", "save": "1"}).status_code == 302
    assert RetentionPolicy.objects.get(kind="imports").days == 60

    marketer = client_for(member_factory(org, Role.MARKETER, username="mara"))
    html = marketer.get(PAGE).content.decode()
    assert "180 days" in html and "3 rows would be deleted" in html
    assert 'name="days_events"' not in html and "Save" not in html
    assert marketer.post(PAGE, {**ALL_FOREVER, "days_events": "1", "save": "1"}).status_code == 403
    assert RetentionPolicy.objects.get(kind="events").days == 180

    sales = client_for(member_factory(org, Role.SALES, username="sam"))
    assert sales.get(PAGE).status_code == 403


def test_the_page_is_in_the_compliance_section(org, officer):
    html = client_for(officer).get(reverse("admin:index")).content.decode()
    assert "Data retention" in html and PAGE in html


def test_the_page_in_chromium_previews_then_saves(org, officer, old_events, live_server):
    from tests.browser import WIDTH, assert_no_sideways_scroll, launch, login, shots_dir

    shots = shots_dir("retention-shots")
    with launch() as browser:
        tab = browser.new_page(viewport={"width": WIDTH, "height": 900})
        login(tab, live_server.url, "cora")
        tab.goto(f"{live_server.url}{PAGE}")
        assert_no_sideways_scroll(tab)
        tab.fill("#id_days_events", "90")
        tab.fill("#id_days_messages", "7")
        with tab.expect_navigation():
            tab.click("text=Preview counts")
        error = tab.inner_text("#retention-messages .errorlist")
        tab.fill("#id_days_messages", "400")
        with tab.expect_navigation():
            tab.click("text=Preview counts")
        preview = tab.inner_text("#retention-events")
        tab.screenshot(path=str(shots / "preview.png"), full_page=True)
        assert_no_sideways_scroll(tab)
        with tab.expect_navigation():
            tab.click("button.save")
        saved = tab.inner_text("body")
        tab.screenshot(path=str(shots / "saved.png"), full_page=True)

    assert "at least 30" in error
    assert "3 rows would be deleted at the next purge" in preview
    assert "Data retention saved" in saved
    assert dict(RetentionPolicy.objects.values_list("kind", "days"))["messages"] == 400
