"""The preference centre: its reads and writes (compliance.preference_centre), its signed link
(compliance.preference_links) and its page (compliance.preference_pages)."""

import re
import time
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django_scopes import scopes_disabled

from channels_app.models import Message
from compliance.models import ConsentRecord, ConsentRegime, DataSubjectRequest, TopicChoice
from compliance.preference_centre import (
    preferences_save,
    preferences_unsubscribe_all,
    purpose_states,
    topic_choice_record,
    topic_states,
    topics_left,
)
from compliance.preference_links import PreferenceLinkError, preference_link_read, preference_url
from compliance.services import consent_record
from marketing.identity import contact_merge
from marketing.tenancy import org_context
from tests.factories import ContactFactory, SubscriptionTypeFactory

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
PROOF = {"ip": "203.0.113.9", "user_agent": "test", "page": "preference_centre"}


def states(org, contact) -> dict[str, bool]:
    return {s.purpose: s.granted for s in purpose_states(org=org, contact=contact)}


def path(url: str) -> str:
    return urlsplit(url).path


@pytest.fixture
def person(org):
    contact = ContactFactory(org=org, email="ana@example.com")
    consent_record(org=org, contact=contact, purpose="email_marketing", granted=True, source="form")
    return contact


@pytest.fixture
def topics(org):
    return {
        "news": SubscriptionTypeFactory(org=org, name="Newsletter", description="Monthly news."),
        "events": SubscriptionTypeFactory(org=org, name="Events"),
    }


@pytest.fixture
def browser():
    return Client(enforce_csrf_checks=True, HTTP_USER_AGENT=BROWSER)


def csrf_post(browser, url, data):
    page = browser.get(url)
    token = page.cookies["csrftoken"].value if "csrftoken" in page.cookies else browser.cookies["csrftoken"].value
    return browser.post(url, {**data, "csrfmiddlewaretoken": token})


# --- services -----------------------------------------------------------------------------------------


def test_a_purpose_without_a_record_shows_the_default_and_a_record_wins(org, person):
    assert states(org, person) == {
        "email_marketing": True,  # the person's grant
        "sms": False,  # messages: not until the person says yes
        "push": False,
        "tracking": True,  # the default regimes act on these until an opt-out
        "profiling": True,
        "sale_sharing": True,
    }
    consent_record(org=org, contact=person, purpose="tracking", granted=False, source="form")
    consent_record(org=org, contact=person, purpose="email_marketing", granted=False, source="one_click")

    assert states(org, person)["tracking"] is False and states(org, person)["email_marketing"] is False


def test_an_opt_in_regime_shows_an_unasked_purpose_off(org, person):
    ConsentRegime.objects.create(org=org, tracking="opt_in")

    assert states(org, person)["tracking"] is False and states(org, person)["profiling"] is True


def test_save_appends_only_what_changed_with_its_source_and_proof(org, person, topics):
    changes = preferences_save(
        org=org,
        contact=person,
        purposes={"email_marketing": True, "sms": True, "tracking": False},
        topics={topics["news"].pk: False, topics["events"].pk: True},
        proof=PROOF,
    )

    assert {(c.kind, c.name, c.on) for c in changes} == {
        ("purpose", "SMS marketing", True),
        ("purpose", "Tracking", False),
        ("topic", "Newsletter", False),
    }
    new = ConsentRecord.objects.filter(source="preference_centre")
    assert {(r.purpose, r.granted) for r in new} == {("sms", True), ("tracking", False)}
    assert all(r.proof == PROOF and r.subject_email == "ana@example.com" for r in new)
    choice = TopicChoice.objects.get()
    assert (choice.topic, choice.subscribed, choice.source, choice.proof) == (
        topics["news"],
        False,
        "preference_centre",
        PROOF,
    )

    again = preferences_save(
        org=org,
        contact=person,
        purposes={"email_marketing": True, "sms": True, "tracking": False},
        topics={topics["news"].pk: False, topics["events"].pk: True},
        proof=PROOF,
    )
    assert again == [] and ConsentRecord.objects.count() == 3 and TopicChoice.objects.count() == 1


def test_save_refuses_an_unknown_purpose_naming_it(org, person):
    with pytest.raises(ValueError, match="purposes: unknown purpose 'fax'"):
        preferences_save(org=org, contact=person, purposes={"fax": True}, topics={}, proof=PROOF)
    assert ConsentRecord.objects.count() == 1


def test_the_newest_topic_choice_wins(org, person, topics):
    news = topics["news"]
    topic_choice_record(org=org, contact=person, topic=news, subscribed=False, source="preference_centre")
    assert topics_left(org=org, contact_ids=[person.pk], topic_ids=[news.pk]) == {(person.pk, news.pk)}

    topic_choice_record(org=org, contact=person, topic=news, subscribed=True, source="console")
    assert topics_left(org=org, contact_ids=[person.pk], topic_ids=[news.pk]) == set()
    assert [s.subscribed for s in topic_states(org=org, contact=person)] == [True, True]


def test_unsubscribe_from_all_withdraws_the_messaging_purposes_and_every_topic(org, person, topics):
    consent_record(org=org, contact=person, purpose="sms", granted=True, source="form")

    changes = preferences_unsubscribe_all(org=org, contact=person, proof=PROOF)

    assert {c.name for c in changes} == {"Email marketing", "SMS marketing", "Newsletter", "Events"}
    assert states(org, person) == {
        "email_marketing": False,
        "sms": False,
        "push": False,  # never granted: nothing appended for it
        "tracking": True,  # tracking, profiling and sharing keep their own switches
        "profiling": True,
        "sale_sharing": True,
    }
    assert not ConsentRecord.objects.filter(purpose="push").exists()
    assert [s.subscribed for s in topic_states(org=org, contact=person)] == [False, False]
    assert preferences_unsubscribe_all(org=org, contact=person, proof=PROOF) == []


def test_inactive_and_other_orgs_topics_are_neither_offered_nor_written(org, other_org, person, topics):
    hidden = SubscriptionTypeFactory(org=org, name="Old", active=False)
    with org_context(other_org):
        theirs = SubscriptionTypeFactory(org=other_org, name="Theirs")

    assert [s.topic.name for s in topic_states(org=org, contact=person)] == ["Events", "Newsletter"]
    preferences_save(org=org, contact=person, purposes={}, topics={hidden.pk: False, theirs.pk: False}, proof=PROOF)
    with scopes_disabled():
        assert not TopicChoice.objects.exists()


def test_a_merge_keeps_both_contacts_topic_choices(org, person, topics):
    other = ContactFactory(org=org, email="ana.work@example.com")
    topic_choice_record(org=org, contact=other, topic=topics["events"], subscribed=False, source="preference_centre")

    contact_merge(org=org, kept=person, gone=other, reason="same person")

    assert topics_left(org=org, contact_ids=[person.pk], topic_ids=[topics["events"].pk]) == {
        (person.pk, topics["events"].pk)
    }


# --- the link -----------------------------------------------------------------------------------------


def test_the_link_names_org_contact_and_message_and_a_changed_one_is_refused(org, person):
    url = preference_url(org_id=org.pk, contact_id=person.pk, message_id=7)
    token = path(url).rstrip("/").rsplit("/", 1)[1]

    assert preference_link_read(token) == (org.pk, person.pk, 7, False)
    assert preference_link_read(
        path(preference_url(org_id=org.pk, contact_id=person.pk, preview=True)).rstrip("/").rsplit("/", 1)[1]
    ) == (org.pk, person.pk, None, True)
    with pytest.raises(PreferenceLinkError) as broken:
        preference_link_read(token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))
    assert broken.value.reason == "broken"


def test_an_old_link_has_expired(org, person, settings, monkeypatch):
    token = path(preference_url(org_id=org.pk, contact_id=person.pk)).rstrip("/").rsplit("/", 1)[1]
    later = time.time() + (settings.PREFERENCE_LINK_MAX_AGE_DAYS + 1) * 86400
    monkeypatch.setattr("django.core.signing.time.time", lambda: later)

    with pytest.raises(PreferenceLinkError) as expired:
        preference_link_read(token)
    assert expired.value.reason == "expired"


# --- the page -----------------------------------------------------------------------------------------


def test_the_page_shows_the_current_state_accessibly(org, person, topics, browser):
    topic_choice_record(org=org, contact=person, topic=topics["events"], subscribed=False, source="console")
    url = path(preference_url(org_id=org.pk, contact_id=person.pk, message_id=3))

    page = browser.get(url)

    html = page.content.decode()
    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    assert '<html lang="en">' in html and "Your preferences with Org A" in html
    assert (
        html.count("<fieldset>") == 2
        and "<legend>What we may do</legend>" in html
        and "<legend>Topics</legend>" in html
    )
    for input_id in re.findall(r'<input type="checkbox"[^>]* id="([^"]+)"', html):
        assert f'<label for="{input_id}">' in html  # every box has its label
    checked = set(re.findall(r'<input type="checkbox" name="\w+" value="([^"]+)"[^>]* checked', html))
    assert checked == {"email_marketing", "tracking", "profiling", "sale_sharing", str(topics["news"].pk)}
    assert 'role="status"' in html and "csrfmiddlewaretoken" in html
    assert 'id="unsubscribe"' in html and "Download my data" in html and "Delete my data" in html


def test_saving_records_the_choices_with_the_proof_and_confirms(org, person, topics, browser):
    url = path(preference_url(org_id=org.pk, contact_id=person.pk, message_id=42))

    response = csrf_post(
        browser, url, {"action": "save", "purposes": ["email_marketing", "sms"], "topics": [str(topics["events"].pk)]}
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert re.search(r'role="status".*Your choices are saved\.', html, re.S)
    assert "Newsletter: unsubscribed" in html and "Tracking: off" in html and "SMS marketing: on" in html
    record = ConsentRecord.objects.get(purpose="sms")
    assert record.granted and record.source == "preference_centre"
    assert record.proof == {"ip": "127.0.0.1", "user_agent": BROWSER, "page": "preference_centre", "message": 42}
    assert topics_left(org=org, contact_ids=[person.pk], topic_ids=[topics["news"].pk]) == {
        (person.pk, topics["news"].pk)
    }
    checked = set(re.findall(r'<input type="checkbox" name="\w+" value="([^"]+)"[^>]* checked', html))
    assert checked == {"email_marketing", "sms", str(topics["events"].pk)}  # the page shows the new state


def test_a_post_without_the_csrf_token_changes_nothing(org, person, browser):
    url = path(preference_url(org_id=org.pk, contact_id=person.pk))

    response = browser.post(url, {"action": "unsubscribe_all"})

    assert response.status_code == 403
    assert ConsentRecord.objects.count() == 1


def test_unsubscribe_from_all_on_the_page(org, person, topics, browser):
    url = path(preference_url(org_id=org.pk, contact_id=person.pk, message_id=5))

    response = csrf_post(browser, url, {"action": "unsubscribe_all"})

    assert b"You are unsubscribed from all marketing messages from Org A." in response.content
    assert states(org, person)["email_marketing"] is False
    assert TopicChoice.objects.filter(subscribed=False).count() == 2


@pytest.mark.parametrize(("action", "kind"), [("export", "access"), ("erase", "erasure")])
def test_download_and_delete_open_a_request_confirmed_by_email(org, person, browser, action, kind):
    url = path(preference_url(org_id=org.pk, contact_id=person.pk))

    response = csrf_post(browser, url, {"action": action})

    assert b"We sent an email to a\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2@example.com" in response.content
    request = DataSubjectRequest.objects.get()
    assert (request.kind, request.source, request.status, request.contact) == (
        kind,
        "preference_centre",
        "unverified",
        person,
    )
    with scopes_disabled():
        notice = Message.objects.get(purpose="transactional")
    assert notice.to == "ana@example.com" and "/privacy/requests/confirm/" in notice.content["text"]
    assert ConsentRecord.objects.count() == 1  # nothing else changed


def test_a_contact_without_an_email_is_told_how_else_to_ask(org, browser):
    nobody = ContactFactory(org=org, email=None)
    url = path(preference_url(org_id=org.pk, contact_id=nobody.pk))

    response = csrf_post(browser, url, {"action": "erase"})

    assert response.status_code == 200 and b'role="alert"' in response.content
    assert not DataSubjectRequest.objects.exists()


def test_a_tampered_link_shows_a_clear_page_and_changes_nothing(org, person, browser):
    token = path(preference_url(org_id=org.pk, contact_id=person.pk)).rstrip("/").rsplit("/", 1)[1]
    forged = token[:-3] + ("abc" if token[-3:] != "abc" else "xyz")

    page = browser.get(f"/preferences/{forged}/")
    post = Client(HTTP_USER_AGENT=BROWSER).post(f"/preferences/{forged}/", {"action": "unsubscribe_all"})

    assert page.status_code == 400 and b"This link does not work" in page.content
    assert post.status_code == 400
    assert ConsentRecord.objects.count() == 1 and not TopicChoice.objects.exists()


def test_an_expired_link_says_so(org, person, browser, settings, monkeypatch):
    url = path(preference_url(org_id=org.pk, contact_id=person.pk))
    later = time.time() + (settings.PREFERENCE_LINK_MAX_AGE_DAYS + 1) * 86400
    monkeypatch.setattr("django.core.signing.time.time", lambda: later)

    page = browser.get(url)

    assert page.status_code == 400 and b"This link has expired" in page.content


def test_the_link_of_a_deleted_contact_is_a_404(org, browser):
    gone = ContactFactory(org=org)
    url = path(preference_url(org_id=org.pk, contact_id=gone.pk))
    gone.delete()

    page = browser.get(url)

    assert page.status_code == 404 and b"no longer on file" in page.content


def test_a_preview_link_shows_the_page_and_changes_nothing(org, person, topics, browser):
    url = path(preference_url(org_id=org.pk, contact_id=person.pk, preview=True))

    page = browser.get(url)
    response = csrf_post(browser, url, {"action": "unsubscribe_all"})
    sample = browser.get(path(preference_url(org_id=org.pk, contact_id=0, preview=True)))

    assert page.status_code == 200 and b"Preview." in page.content
    assert b"This is a preview: nothing was changed." in response.content
    assert sample.status_code == 200 and b"Newsletter" in sample.content
    assert ConsentRecord.objects.count() == 1 and not TopicChoice.objects.exists()


def test_a_link_opens_only_its_own_org_and_contact(org, other_org, person, browser):
    with org_context(other_org):
        theirs = ContactFactory(org=other_org, email="bo@example.com")
    # A token naming another org's contact with this org's id: no such contact here.
    url = path(preference_url(org_id=org.pk, contact_id=theirs.pk))

    assert browser.get(url).status_code == 404


# --- the console --------------------------------------------------------------------------------------


def test_a_marketer_adds_a_topic_in_the_console_and_sees_the_choices_read_only(org, console, person):
    from django.urls import reverse

    from compliance.models import SubscriptionType

    added = console.post(
        reverse("admin:compliance_subscriptiontype_add"),
        {"name": "Product news", "description": "What is new.", "purpose": "email_marketing", "active": "on"},
    )
    topic = SubscriptionType.objects.get(name="Product news")
    topic_choice_record(org=org, contact=person, topic=topic, subscribed=False, source="preference_centre")
    choices = console.get(reverse("admin:compliance_topicchoice_changelist"))
    duplicate = console.post(
        reverse("admin:compliance_subscriptiontype_add"), {"name": "Product news", "purpose": "email_marketing"}
    )

    assert added.status_code == 302 and topic.org == org
    assert choices.status_code == 200 and b"ana@example.com" in choices.content
    assert b"Add topic choice" not in choices.content  # appended by the centre, never by hand
    assert duplicate.status_code == 200 and b"already exists" in duplicate.content


def test_saves_beyond_the_links_budget_are_refused_and_change_nothing(org, person, browser, monkeypatch):
    monkeypatch.setattr("compliance.preference_pages.SAVE_RATE", "1/m")
    url = path(preference_url(org_id=org.pk, contact_id=person.pk, message_id=99))

    first = csrf_post(browser, url, {"action": "save", "purposes": ["email_marketing"]})
    second = csrf_post(browser, url, {"action": "unsubscribe_all"})

    assert first.status_code == 200
    assert second.status_code == 429 and second["Retry-After"] == "60"
    assert states(org, person)["email_marketing"] is True  # the second POST withdrew nothing
