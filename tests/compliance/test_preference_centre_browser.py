"""The preference centre in headless chromium, opened from the link in a real marketing email: a
topic unticked and a purpose turned off and saved (the confirmation read from the page's status
region), then "Unsubscribe from all" with JavaScript off on a phone-sized window; neither width
scrolls sideways. Screenshots go to the temp dir's preference-centre-shots/."""

import re
from html import unescape

import pytest

from channels_app.models import MessageTemplate
from channels_app.outbox import message_enqueue
from channels_app.template_versions import template_publish
from compliance.preference_centre import purpose_states, topic_states
from compliance.services import consent_record
from tests import browser
from tests.factories import ContactFactory, SubscriptionTypeFactory

PHONE = 390


@pytest.mark.slow
def test_a_person_changes_their_preferences_then_unsubscribes_from_all(org, live_server, settings):
    settings.SITE_URL = live_server.url  # the message's links lead to this server
    person = ContactFactory(org=org, email="ana@example.com", first_name="Ana")
    for purpose in ("email_marketing", "sms"):
        consent_record(org=org, contact=person, purpose=purpose, granted=True, source="form")
    SubscriptionTypeFactory(org=org, name="Newsletter", description="Monthly news about the product.")
    SubscriptionTypeFactory(org=org, name="Events", description="Invitations to meetups and webinars.")
    template = MessageTemplate.objects.create(
        org=org,
        slug="news",
        name="News",
        channel="email",
        variants=[{"name": "A", "weight": 1, "subject": "News", "html": "<p>Hello {{ first_name }}.</p>"}],
    )
    template_publish(template=template)
    template.refresh_from_db()
    message = message_enqueue(org=org, contact=person, template=template, idempotency_key="news:1")
    [link] = {
        unescape(href) for href in re.findall(r'href="([^"]+)"', message.content["html"]) if "/preferences/" in href
    }
    shots = browser.shots_dir("preference-centre-shots")

    with browser.launch() as chromium:
        page = chromium.new_page(viewport={"width": browser.WIDTH, "height": 900})
        page.goto(link)
        title = page.title()
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")  # past the page's first focusable thing, onto a checkbox
        focus_outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        page.screenshot(path=str(shots / "1-centre-1366.png"), full_page=True)
        browser.assert_no_sideways_scroll(page)
        before = {
            name: page.get_by_label(name, exact=True).is_checked()
            for name in ("Email marketing", "SMS marketing", "Newsletter", "Events")
        }

        page.get_by_label("Events", exact=True).uncheck()
        page.get_by_label("SMS marketing", exact=True).uncheck()
        with page.expect_navigation():
            page.get_by_role("button", name="Save my choices").click()
        saved = page.get_by_role("status").inner_text()
        page.screenshot(path=str(shots / "2-saved-1366.png"), full_page=True)
        browser.assert_no_sideways_scroll(page)

        phone = chromium.new_context(java_script_enabled=False, viewport={"width": PHONE, "height": 844})
        small = phone.new_page()
        small.goto(link)
        unticked = {name: small.get_by_label(name, exact=True).is_checked() for name in ("SMS marketing", "Events")}
        small.screenshot(path=str(shots / "3-centre-390-no-js.png"), full_page=True)
        browser.assert_no_sideways_scroll(small, PHONE)
        with small.expect_navigation():
            small.get_by_role("button", name="Unsubscribe from all").click()
        unsubscribed = small.get_by_role("status").inner_text()
        small.screenshot(path=str(shots / "4-unsubscribed-390-no-js.png"), full_page=True)
        browser.assert_no_sideways_scroll(small, PHONE)
        phone.close()

    assert title == "Your preferences – Org A"
    assert focus_outline == "solid"  # a visible focus ring
    assert before == {"Email marketing": True, "SMS marketing": True, "Newsletter": True, "Events": True}
    assert saved.startswith("Your choices are saved.")
    assert "Events: unsubscribed" in saved and "SMS marketing: off" in saved
    assert unticked == {"SMS marketing": False, "Events": False}  # the second visit shows the saved state
    assert unsubscribed.startswith("You are unsubscribed from all marketing messages from Org A.")
    states = {s.purpose: s.granted for s in purpose_states(org=org, contact=person)}
    assert (states["email_marketing"], states["sms"], states["push"]) == (False, False, False)
    assert [(s.topic.name, s.subscribed) for s in topic_states(org=org, contact=person)] == [
        ("Events", False),
        ("Newsletter", False),
    ]
    records = person.consent_records.filter(source="preference_centre").order_by("recorded_at", "id")
    assert [(r.purpose, r.granted) for r in records] == [("sms", False), ("email_marketing", False)]
    assert all(r.proof["message"] == message.pk and "HeadlessChrome" in r.proof["user_agent"] for r in records)


@pytest.mark.slow
def test_a_marketer_adds_a_topic_and_gives_a_template_its_topic(org, live_server, member_factory):
    from marketing.models import Role

    member_factory(org, Role.MARKETER, username="mara")
    template = MessageTemplate.objects.create(
        org=org,
        slug="news",
        name="News",
        channel="email",
        variants=[{"name": "A", "weight": 1, "subject": "News", "html": "<p>Hello.</p>"}],
    )
    shots = browser.shots_dir("preference-centre-shots")

    with browser.launch() as chromium:
        page = chromium.new_page(viewport={"width": browser.WIDTH, "height": 900})
        browser.login(page, live_server.url, "mara", next_url="/admin/compliance/subscriptiontype/add/")
        page.get_by_label("Name").fill("Product news")
        page.get_by_label("Description").fill("What is new in the product, once a month.")
        page.screenshot(path=str(shots / "5-topic-add.png"), full_page=True)
        browser.assert_no_sideways_scroll(page)
        with page.expect_navigation():
            page.locator("[name=_save]").click()
        listed = page.locator("#result_list").inner_text()
        page.screenshot(path=str(shots / "6-topics.png"), full_page=True)
        browser.assert_no_sideways_scroll(page)

        page.goto(f"{live_server.url}/admin/channels_app/messagetemplate/{template.pk}/change/")
        page.locator("#id_topic").select_option(label="Product news")
        page.screenshot(path=str(shots / "7-template-topic.png"), full_page=True)
        browser.assert_no_sideways_scroll(page)
        with page.expect_navigation():
            page.locator("[name=_continue]").click()
        chosen = page.locator("#id_topic option:checked").inner_text()

    assert "Product news" in listed and "Email marketing" in listed
    assert chosen == "Product news"
    template.refresh_from_db()
    assert template.topic.name == "Product news" and template.topic.org == org
