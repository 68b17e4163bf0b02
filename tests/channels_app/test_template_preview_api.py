"""``POST /api/v1/message-templates/preview/``: one unsaved variant rendered as the sender renders
it (the template page's live preview), its problems on the field and line they concern, the
sandbox's limits, org isolation and who may ask."""

from django.test import Client
from django_scopes import scopes_disabled

from channels_app.models import Message
from marketing.models import Role
from tests.factories import ContactFactory

PREVIEW = "/api/v1/message-templates/preview/"
EMAIL = {
    "name": "A",
    "weight": 50,
    "subject": "Hi {{ first_name | default: 'there' }}",
    "preheader": "News for {{ company.name | default: 'you' }}",
    "html": "<p>Hello {{ first_name }}</p>\n<script>alert(1)</script>\n<a href='https://acme.io/x'>see</a>",
}


def post(client, body):
    return client.post(PREVIEW, body, content_type="application/json")


def session(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_variant_renders_for_the_contact_as_the_sender_would_and_nothing_is_saved(org, console):
    ana = ContactFactory(org=org, email="ana@example.com", first_name="Ana", last_name="Lima")
    ContactFactory(org=org, email="bo@example.com", first_name="Bo")

    answer = post(console, {"channel": "email", "variant": EMAIL, "contact": ana.pk})

    assert answer.status_code == 200, answer.content
    data = answer.json()
    assert data["contact"] == {"id": ana.pk, "email": "ana@example.com", "name": "Ana Lima", "sample": False}
    content = data["content"]
    assert content["subject"] == "Hi Ana"
    assert content["preheader"] == "News for you"
    assert "Hello Ana" in content["html"]
    assert "<script" not in content["html"] and "alert" not in content["html"]  # the sender's sanitiser
    assert "/m/c/" in content["html"] and "acme.io/x" not in content["html"]  # tracked like a send's link
    assert "Unsubscribe" in content["html"]  # a marketing email's footer, as sent
    assert content["text"].startswith("Hello Ana")  # derived from the HTML when there is no text part
    assert not Message.objects.exists()


def test_without_a_contact_the_first_one_or_a_sample_is_used(org, console, other_org):
    with scopes_disabled():
        ContactFactory(org=other_org, first_name="Theirs")
    sample = post(console, {"channel": "sms", "variant": {"text": "Hi {{ first_name }}"}}).json()
    assert sample["contact"]["sample"] is True and sample["content"] == {"text": "Hi Ana"}

    first = ContactFactory(org=org, first_name="Zoe")
    ContactFactory(org=org, first_name="Yan")
    ours = post(console, {"channel": "sms", "variant": {"text": "Hi {{ first_name }}"}}).json()
    assert ours["contact"]["id"] == first.pk and ours["content"] == {"text": "Hi Zoe"}


def test_a_liquid_error_names_the_field_and_line(org, console):
    variant = {**EMAIL, "html": "<p>Hello</p>\n<p>\n{% if first_name %}Hi{% endfor %}</p>"}

    answer = post(console, {"channel": "email", "variant": variant})

    assert answer.status_code == 400
    (problem,) = answer.json()["problems"]
    assert problem["field"] == "html" and problem["line"] == 3
    assert "endfor" in problem["message"]
    assert answer.json()["variant"][0].startswith("variants[A].html:")


def test_a_field_the_channel_lacks_or_a_value_that_is_not_text_is_named(org, console):
    answer = post(console, {"channel": "sms", "variant": {"text": ["x"], "subject": "Hi"}})
    assert answer.status_code == 400
    assert {(p["field"], p["message"]) for p in answer.json()["problems"]} == {
        ("text", "Must be text."),
        ("subject", "Not a field of sms (text)."),
    }


def test_another_orgs_contact_is_refused(org, other_org, console):
    with scopes_disabled():
        theirs = ContactFactory(org=other_org, first_name="Secret")

    answer = post(console, {"channel": "email", "variant": EMAIL, "contact": theirs.pk})

    assert answer.status_code == 400
    assert "contact" in answer.json() and "Secret" not in answer.content.decode()


def test_a_template_that_tries_to_be_expensive_is_refused_by_the_sandbox(org, console):
    nested = "{% for a in (1..10000) %}{% for b in (1..10000) %}x{% endfor %}{% endfor %}"
    blowup = "{% assign s = 'xxxxxxxxxx' %}{% for i in (1..30) %}{% assign s = s | append: s %}{% endfor %}{{ s }}"
    for html, limit in ((nested, "loop iteration limit"), (blowup, "value size limit")):
        answer = post(console, {"channel": "email", "variant": {**EMAIL, "html": html}})
        assert answer.status_code == 400, html
        (problem,) = answer.json()["problems"]
        assert problem["field"] == "html" and limit in problem["message"].lower()


def test_who_may_preview_follows_the_roles(org, member_factory, api):
    # Previewing reads templates: analysts (who view them) may, sales reps (who do not) may not.
    assert (
        post(session(member_factory(org, Role.ANALYST)), {"channel": "sms", "variant": {"text": "x"}}).status_code
        == 200
    )
    refused = post(session(member_factory(org, Role.SALES)), {"channel": "sms", "variant": {"text": "x"}})
    assert refused.status_code == 403 and "may not view" in refused.json()["detail"]
    assert post(api, {"channel": "sms", "variant": {"text": "x"}}).status_code == 200  # a server key
    assert Client().post(PREVIEW, {}, content_type="application/json").status_code in (401, 403)
