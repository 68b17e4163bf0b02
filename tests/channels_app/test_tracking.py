"""The public endpoints behind message links: open pixel, click redirect, unsubscribe."""

import re
import uuid
from urllib.parse import unquote, urlsplit

import pytest
from django.core import signing
from django.test import Client
from django_scopes import scopes_disabled

from channels_app import signed_links
from channels_app.models import Message, MessageTemplate, TemplateVersion
from channels_app.template_versions import template_preview
from compliance.models import ConsentRecord
from compliance.selectors import consent_given
from compliance.services import consent_record
from marketing.models import Event
from marketing.tenancy import org_context
from marketing.web_tracking import PIXEL_GIF
from tests.factories import ContactFactory

BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


@pytest.fixture
def client():
    return Client(HTTP_USER_AGENT=BROWSER)


def make_message(org, *, status="sent", **fields):
    contact = fields.pop("contact", None) or ContactFactory(org=org)
    template = MessageTemplate.objects.create(org=org, slug=f"t-{uuid.uuid4().hex[:8]}", name="News", channel="email")
    version = TemplateVersion.objects.create(org=org, template=template, number=1, variants=[])
    return Message.objects.create(
        org=org,
        contact=contact,
        channel="email",
        template_version=version,
        variant="A",
        idempotency_key=uuid.uuid4().hex,
        to=contact.email,
        status=status,
        **fields,
    )


def path_of(url):
    return urlsplit(url).path


# --- open -------------------------------------------------------------------------------------------


def test_pixel_records_one_open_event_and_marks_the_message_opened(org, client):
    message = make_message(org)

    first = client.get(path_of(signed_links.open_url(message.pk)))
    second = client.get(path_of(signed_links.open_url(message.pk)))

    assert first.status_code == second.status_code == 200
    assert first["Content-Type"] == "image/gif" and first.content == PIXEL_GIF
    [event] = Event.objects.filter(type="email_opened")
    assert event.contact_id == message.contact_id
    assert event.message_id == f"open:{message.pk}"
    assert event.source == "email"
    assert "machine_reason" not in event.properties
    assert event.properties["template"] == message.template_version.template.slug
    message.refresh_from_db()
    assert message.status == "opened"
    assert [h["status"] for h in message.status_history] == ["opened"]


def test_pixel_with_a_bad_token_still_answers_the_gif(org, client):
    response = client.get("/m/o/not-a-token.gif")
    assert response.status_code == 200 and response.content == PIXEL_GIF
    assert not Event.objects.exists()


def test_machine_open_is_its_own_type_and_does_not_change_the_status(org, client):
    message = make_message(org)

    client.get(path_of(signed_links.open_url(message.pk)), HTTP_USER_AGENT="Mozilla/5.0")  # Apple MPP
    message.refresh_from_db()
    assert message.status == "sent"
    client.get(path_of(signed_links.open_url(message.pk)))  # then the person

    machine, person = Event.objects.order_by("id")
    assert (machine.type, machine.message_id) == ("email_opened_machine", f"open-machine:{message.pk}")
    assert (person.type, person.message_id) == ("email_opened", f"open:{message.pk}")
    message.refresh_from_db()
    assert message.status == "opened"


def test_an_open_never_undoes_a_click(org, client):
    message = make_message(org, status="clicked")
    client.get(path_of(signed_links.open_url(message.pk)))
    message.refresh_from_db()
    assert message.status == "clicked"


# --- click ------------------------------------------------------------------------------------------


def test_click_redirects_exactly_and_records_the_click(org, client):
    message = make_message(org)
    url = "https://acme.io/pricing?utm_source=newsletter&utm_medium=email&utm_campaign=nov&q=a%20b#plans"

    response = client.get(path_of(signed_links.click_url(message.pk, url)))
    client.get(path_of(signed_links.click_url(message.pk, url)))  # a second click of the same link

    assert response.status_code == 302
    assert response["Location"] == url
    [event] = Event.objects.filter(type="email_clicked")
    assert event.properties["url"] == url
    assert event.properties["utm_campaign"] == "nov"
    assert event.properties["message_id"] == message.pk
    assert event.message_id.startswith(f"click:{message.pk}:")
    message.refresh_from_db()
    assert message.status == "clicked"


def test_forged_or_altered_click_token_is_refused_without_redirect(org, client):
    message = make_message(org)
    token = urlsplit(signed_links.click_url(message.pk, "https://acme.io/")).path.rsplit("/", 1)[1]
    payload = {"m": message.pk, "u": "https://evil.example/"}
    other_key = signing.dumps(payload, key="not-our-secret", salt=signed_links.SALT + signed_links.CLICK)
    other_kind = signed_links.token(signed_links.UNSUBSCRIBE, payload)  # signed, but not for clicks
    altered = f"{token[:-3]}abc"
    unsigned = "eyJtIjoxLCJ1IjoiaHR0cHM6Ly9ldmlsLmV4YW1wbGUvIn0"

    for path in (f"/m/c/{t}" for t in (other_key, other_kind, altered, unsigned)):
        response = client.get(path)
        assert response.status_code == 400
        assert "Location" not in response
    assert not Event.objects.filter(type="email_clicked").exists()


def test_a_signed_link_that_is_no_http_url_is_refused(org, client):
    message = make_message(org)
    for url in ("javascript:alert(1)", "https://[broken/", "//evil.example/"):
        response = client.get(path_of(signed_links.click_url(message.pk, url)))
        assert response.status_code == 400 and "Location" not in response


def preview_links(org) -> dict[str, str]:
    """The open, click and unsubscribe paths of a marketing email's preview in the console."""
    template = MessageTemplate.objects.create(
        org=org,
        slug="preview",
        name="Preview",
        channel="email",
        variants=[{"name": "A", "weight": 1, "subject": "Hi", "html": '<p><a href="https://acme.io/">go</a></p>'}],
    )
    html = template_preview(template=template, contact=ContactFactory(org=org))["html"]
    found = dict(re.findall(r'(?:href|src)="https?://[^"/]+(/m/([ocu])/[^"]+)"', html))
    return {kind: path for path, kind in found.items()}


def test_links_from_a_preview_do_nothing_and_say_so(org, client):
    message = make_message(org)  # a real message of the org: a preview link must not reach it
    consent_record(org=org, contact=message.contact, purpose="email_marketing", granted=True, source="form")
    links = preview_links(org)

    opened = client.get(links["o"])
    clicked = client.get(links["c"])
    page = client.get(links["u"])
    one_click = client.post(
        links["u"], data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )

    assert opened.status_code == 200 and opened.content == PIXEL_GIF
    assert clicked.status_code == 200 and "Location" not in clicked
    assert b"from a preview" in clicked.content and b"https://acme.io/" in clicked.content
    assert page.status_code == 200 and b"from a preview" in page.content and b"<form" not in page.content
    assert one_click.status_code == 200 and b"from a preview" in one_click.content
    assert not Event.objects.exists() and not ConsentRecord.objects.filter(granted=False).exists()
    message.refresh_from_db()
    assert message.status == "sent" and message.status_history == []


def test_links_signed_for_message_zero_do_nothing_and_say_so(org, client):
    """Preview links minted before previews had their own signature carried message id 0."""
    clicked = client.get(path_of(signed_links.click_url(0, "https://acme.io/")))
    page = client.get(path_of(signed_links.unsubscribe_url(0)))

    assert clicked.status_code == 200 and "Location" not in clicked and b"from a preview" in clicked.content
    assert page.status_code == 200 and b"from a preview" in page.content
    assert not Event.objects.exists()


def test_a_preview_link_cannot_pass_for_a_live_one(org):
    """The preview's tokens are signed apart: the same payload never reads as a live token."""
    live = urlsplit(signed_links.click_url(7, "https://acme.io/")).path.rsplit("/", 1)[1]
    preview = urlsplit(signed_links.click_url(7, "https://acme.io/", preview=True)).path.rsplit("/", 1)[1]

    assert live != preview
    with pytest.raises(signing.BadSignature):
        signed_links.read(signed_links.CLICK, unquote(preview))


# --- unsubscribe ------------------------------------------------------------------------------------


def test_one_click_post_withdraws_consent_at_once(org, client):
    message = make_message(org)
    consent_record(org=org, contact=message.contact, purpose="email_marketing", granted=True, source="form")

    response = client.post(
        path_of(signed_links.unsubscribe_url(message.pk)),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 200
    assert consent_given(org=org, contact_id=message.contact_id, purpose="email_marketing") is False
    record = ConsentRecord.objects.filter(contact=message.contact).first()
    assert record.source == "one_click" and record.proof["message"] == message.pk
    assert record.proof["user_agent"] == BROWSER
    message.refresh_from_db()
    assert message.status_history[-1]["status"] == "unsubscribed"
    assert Event.objects.get(type="unsubscribed").message_id == f"unsubscribe:{message.pk}"

    again = client.post(
        path_of(signed_links.unsubscribe_url(message.pk)),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert again.status_code == 200
    assert ConsentRecord.objects.filter(contact=message.contact, granted=False).count() == 1


def test_unsubscribe_link_opens_the_preference_centre_and_a_post_needs_csrf(org):
    message = make_message(org)
    consent_record(org=org, contact=message.contact, purpose="email_marketing", granted=True, source="form")
    browser = Client(enforce_csrf_checks=True, HTTP_USER_AGENT=BROWSER)
    path = path_of(signed_links.unsubscribe_url(message.pk))

    redirect = browser.get(path)
    assert redirect.status_code == 302
    centre = urlsplit(redirect["Location"])
    assert centre.path.startswith("/preferences/") and centre.fragment == "unsubscribe"
    page = browser.get(centre.path)
    assert page.status_code == 200
    assert b'id="unsubscribe"' in page.content and b"csrfmiddlewaretoken" in page.content
    assert consent_given(org=org, contact_id=message.contact_id, purpose="email_marketing") is True

    assert browser.post(path, {}).status_code == 403  # no CSRF token: refused
    assert consent_given(org=org, contact_id=message.contact_id, purpose="email_marketing") is True

    csrf = page.cookies["csrftoken"].value
    done = browser.post(path, {"csrfmiddlewaretoken": csrf})
    assert done.status_code == 200 and b"You are unsubscribed" in done.content
    assert consent_given(org=org, contact_id=message.contact_id, purpose="email_marketing") is False
    assert ConsentRecord.objects.filter(contact=message.contact).first().source == "unsubscribe_link"


def test_bad_unsubscribe_token_changes_nothing(org, client):
    message = make_message(org)
    response = client.post(
        "/m/u/forged", data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400
    assert not ConsentRecord.objects.filter(contact=message.contact).exists()


def test_other_orgs_messages_are_unaffected(org, other_org, client):
    mine = make_message(org)
    with org_context(other_org):
        theirs = make_message(other_org)

    client.get(path_of(signed_links.open_url(mine.pk)))
    client.post(
        path_of(signed_links.unsubscribe_url(mine.pk)),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )

    with scopes_disabled():
        assert Event.objects.filter(org=org).exists()
        assert Event.objects.get(type="email_opened").contact_id == mine.contact_id
    with org_context(other_org):  # the other org's rows, as that org sees them
        assert not Event.objects.exists()
        assert not ConsentRecord.objects.exists()
        theirs.refresh_from_db()
        assert theirs.status == "sent" and theirs.status_history == []


def test_over_the_rate_limit_the_pixel_answers_but_records_nothing(org, client, monkeypatch):
    monkeypatch.setattr("channels_app.tracking.OPEN_RATE", "1/m")
    message, other = make_message(org), make_message(org)

    pixel = path_of(signed_links.open_url(message.pk))  # one token, as in the email
    client.get(pixel)
    response = client.get(pixel, HTTP_USER_AGENT="Mozilla/5.0")  # would be a machine open
    other_message = client.get(path_of(signed_links.open_url(other.pk)))  # its own budget

    assert response.status_code == 200 and response.content == PIXEL_GIF
    assert other_message.status_code == 200
    assert sorted(Event.objects.filter(type="email_opened").values_list("message_id", flat=True)) == sorted(
        [f"open:{message.pk}", f"open:{other.pk}"]
    )
