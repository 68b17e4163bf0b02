"""Topics and the preference-centre link in messages: the send guard blocks a marketing message of a
topic the contact left; every marketing email carries the centre's link (footer and the Liquid
variable ``preferences_url``); transactional mail does not; the template page picks the topic."""

import re
from datetime import UTC, datetime
from html import unescape
from urllib.parse import urlsplit

import pytest
from django_scopes import scopes_disabled

from channels_app.models import Message, MessageTemplate
from channels_app.outbox import message_enqueue, message_send, notice_enqueue
from channels_app.template_versions import template_publish
from compliance.preference_centre import topic_choice_record
from compliance.preference_links import preference_link_read
from marketing.tenancy import org_context
from tests.factories import ContactFactory, SubscriptionTypeFactory

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)  # 11:00 in Berlin: outside quiet hours


@pytest.fixture
def news(org):
    return SubscriptionTypeFactory(org=org, name="Newsletter")


def last(message: Message) -> dict:
    message.refresh_from_db()
    return message.status_history[-1]


def centre_links(text: str) -> list[str]:
    return [unescape(u) for u in re.findall(r'https?://[^\s"<>]+/preferences/[^\s"<>/]+/', text)]


def test_a_message_of_a_topic_the_contact_left_is_blocked_with_the_reason(org, contact, template, news, smtp):
    template.topic = news
    template.save(update_fields=["topic"])
    other = ContactFactory(org=org, email="bo@example.com")
    from compliance.services import consent_record

    consent_record(org=org, contact=other, purpose="email_marketing", granted=True, source="form")
    left = message_enqueue(org=org, contact=contact, template=template, idempotency_key="k1", now=T0)
    stays = message_enqueue(org=org, contact=other, template=template, idempotency_key="k2", now=T0)
    topic_choice_record(org=org, contact=contact, topic=news, subscribed=False, source="preference_centre")

    assert message_send(message_id=left.pk, now=T0) == "blocked"
    assert last(left)["reason"] == "topic left: the contact unsubscribed from “Newsletter”"
    assert message_send(message_id=stays.pk, now=T0) == "sent"
    assert [r.rcpt_tos for r in smtp.received] == [["bo@example.com"]]

    topic_choice_record(org=org, contact=contact, topic=news, subscribed=True, source="preference_centre")
    again = message_enqueue(org=org, contact=contact, template=template, idempotency_key="k3", now=T0)
    assert message_send(message_id=again.pk, now=T0) == "sent"  # rejoined: the newest choice wins


def test_a_dry_run_says_a_left_topic_blocks_the_send(org, contact, template, news):
    from workflows.actions import actions

    template.topic = news
    template.save(update_fields=["topic"])
    step = actions()["send_email"]
    before = step.dry_run_verdict(org=org, contact=contact, config={"template": template.slug}, at=T0, earlier=[])
    topic_choice_record(org=org, contact=contact, topic=news, subscribed=False, source="preference_centre")

    after = step.dry_run_verdict(org=org, contact=contact, config={"template": template.slug}, at=T0, earlier=[])

    assert before["verdict"] == "send"
    assert (after["verdict"], after["kind"], after["reason"]) == (
        "block",
        "topic",
        "topic left: the contact unsubscribed from “Newsletter”",
    )


def test_leaving_a_topic_blocks_only_that_topics_messages(org, contact, template_factory, news, smtp):
    newsletter = template_factory("newsletter")
    newsletter.topic = news
    newsletter.save(update_fields=["topic"])
    welcome = template_factory("welcome")  # no topic
    topic_choice_record(org=org, contact=contact, topic=news, subscribed=False, source="preference_centre")

    blocked = message_enqueue(org=org, contact=contact, template=newsletter, idempotency_key="n", now=T0)
    sent = message_enqueue(org=org, contact=contact, template=welcome, idempotency_key="w", now=T0)

    assert message_send(message_id=blocked.pk, now=T0) == "blocked"
    assert message_send(message_id=sent.pk, now=T0) == "sent"


def test_a_marketing_email_carries_the_centre_link_in_its_footer_and_as_a_variable(org, contact, template_factory):
    template = template_factory(
        "offer",
        variants=[
            {
                "name": "A",
                "weight": 1,
                "subject": "Offer",
                "html": '<p>Hi. <a href="{{ preferences_url }}">Your choices</a></p>',
                "text": "Hi. Choose: {{ preferences_url }}",
            }
        ],
    )

    message = message_enqueue(org=org, contact=contact, template=template, idempotency_key="o", now=T0)

    html, text = message.content["html"], message.content["text"]
    in_html, in_text = centre_links(html), centre_links(text)
    assert len(in_html) == 2 and len(set(in_html)) == 1  # the author's link (not click-tracked) and the footer's
    assert "manage your preferences</a>" in html and "/m/u/" in html
    assert len(in_text) == 2 and f"Manage your preferences: {in_text[0]}" in text
    token = urlsplit(in_html[0]).path.rstrip("/").rsplit("/", 1)[1]
    assert preference_link_read(token) == (org.pk, contact.pk, message.pk, False)


def test_the_link_in_a_sent_email_opens_that_contacts_centre(org, contact, template, client):
    message = message_enqueue(org=org, contact=contact, template=template, idempotency_key="o", now=T0)
    [link] = set(centre_links(message.content["html"]))

    page = client.get(urlsplit(link).path)

    assert page.status_code == 200 and b"ana@example.com" in page.content


def test_transactional_email_and_notices_carry_no_centre_link(org, contact, template_factory):
    receipt = template_factory(
        "receipt",
        purpose="transactional",
        variants=[{"name": "A", "weight": 1, "subject": "Receipt", "html": "<p>Paid. {{ preferences_url }}</p>"}],
    )

    message = message_enqueue(org=org, contact=contact, template=receipt, idempotency_key="r", now=T0)
    notice = notice_enqueue(org=org, to="rep@example.com", subject="Hi", text="A notice.", key="n1")

    assert centre_links(message.content["html"]) == [] and "/m/u/" not in message.content["html"]
    with scopes_disabled():
        notice.refresh_from_db()
    assert centre_links(notice.content["text"]) == []


def test_a_preview_carries_a_preview_centre_link(org, contact, template):
    from channels_app.template_versions import template_preview

    html = template_preview(template=template, contact=contact)["html"]

    [link] = set(centre_links(html))
    assert preference_link_read(urlsplit(link).path.rstrip("/").rsplit("/", 1)[1]).preview is True


# --- the template page ------------------------------------------------------------------------------


def test_the_template_page_offers_the_orgs_topics(org, other_org, console, template, news):
    from django.urls import reverse

    with org_context(other_org):
        SubscriptionTypeFactory(org=other_org, name="Someone else's")

    page = console.get(reverse("admin:channels_app_messagetemplate_change", args=[template.pk]))

    html = page.content.decode()
    assert page.status_code == 200 and 'name="topic"' in html
    assert ">Newsletter</option>" in html and "Someone else" not in html


def test_a_topic_must_suit_the_template(org, console, news):
    from django.urls import reverse

    sms_topic = SubscriptionTypeFactory(org=org, name="Texts", purpose="sms")
    data = {
        "slug": "t",
        "name": "T",
        "channel": "email",
        "purpose": "marketing",
        "variants": '[{"name": "A", "weight": 1, "subject": "S", "text": "x"}]',
    }
    url = reverse("admin:channels_app_messagetemplate_add")

    wrong_channel = console.post(url, {**data, "topic": sms_topic.pk})
    transactional = console.post(url, {**data, "purpose": "transactional", "topic": news.pk})
    fine = console.post(url, {**data, "topic": news.pk})

    assert "“Texts” is a topic of sms marketing" in wrong_channel.content.decode()
    assert "Only marketing messages have a topic" in transactional.content.decode()
    assert fine.status_code == 302
    assert MessageTemplate.objects.get(slug="t").topic == news
    template_publish(template=MessageTemplate.objects.get(slug="t"))
