"""Console pages of the channels app: templates (checked, published, previewed), the outbox,
suppressions."""

import json

from django.test import Client
from django.urls import reverse

from channels_app.models import Message, MessageTemplate, Suppression
from marketing.models import Role
from marketing.tenancy import org_context
from tests.factories import ContactFactory


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


ADD = "admin:channels_app_messagetemplate_add"
VARIANTS = [
    {
        "name": "A",
        "weight": 1,
        "subject": "Hi {{ first_name | default: 'there' }}",
        "html": "<p>Hello {{ first_name }} <a href='https://acme.io/?utm_source=mail'>see</a></p>",
    }
]


def add(console, variants, slug="welcome"):
    return console.post(
        reverse(ADD),
        {"slug": slug, "name": slug, "channel": "email", "purpose": "marketing", "variants": json.dumps(variants)},
    )


def test_a_broken_template_is_refused_naming_the_variant_and_field(org, console):
    page = add(console, [{"name": "A", "weight": 1, "subject": "{% if %}", "html": "x"}]).content.decode()
    assert "variants[A].subject" in page
    assert not MessageTemplate.objects.exists()


def test_publishing_a_broken_template_is_refused_with_the_reason_and_nothing_goes_live(org, console):
    # Saved around the form's check (e.g. an older row): publishing checks again.
    broken = MessageTemplate.objects.create(
        org=org, slug="broken", name="broken", channel="email", variants=[{**VARIANTS[0], "subject": "{% if %}"}]
    )
    changelist = reverse("admin:channels_app_messagetemplate_changelist")
    page = console.post(changelist, {"action": "publish", "_selected_action": [broken.pk]}, follow=True)
    text = page.content.decode()
    assert "broken" in text and "variants[A].subject" in text
    broken.refresh_from_db()
    assert broken.live_version is None


def test_publish_then_preview_for_a_real_contact(org, other_org, console):
    assert add(console, VARIANTS).status_code == 302
    template = MessageTemplate.objects.get()
    changelist = reverse("admin:channels_app_messagetemplate_changelist")
    console.post(changelist, {"action": "publish", "_selected_action": [template.pk]})
    template.refresh_from_db()
    assert template.live_version.number == 1
    ContactFactory(org=org, email="ana@example.com", first_name="Ana")
    url = reverse("admin:channels_app_messagetemplate_preview", args=[template.pk])
    page = console.get(url + "?contact=ana@example.com").content.decode()
    assert "Hi Ana" in page
    assert 'sandbox=""' in page and "Hello Ana" in page  # the HTML, escaped into the sandboxed frame
    assert "/m/c/" in page  # links tracked as when sent
    assert "No contact" in console.get(url + "?contact=nobody@example.com").content.decode()
    with org_context(other_org):
        theirs = MessageTemplate.objects.create(org=other_org, slug="x", name="x", channel="email", variants=VARIANTS)
    assert console.get(reverse("admin:channels_app_messagetemplate_preview", args=[theirs.pk])).status_code == 404


def test_the_outbox_lists_messages_read_only_with_filters(org, console, django_assert_max_num_queries):
    contact = ContactFactory(org=org)
    for n in range(5):
        Message.objects.create(
            org=org,
            contact=contact,
            channel="email",
            idempotency_key=f"k{n}",
            to="a@example.com",
            content={"subject": f"Hello {n}"},
            status="sent",
        )
    Message.objects.create(
        org=org,
        contact=contact,
        channel="email",
        idempotency_key="kx",
        to="a@example.com",
        content={"subject": "Hello failed"},
        status="failed",
    )
    url = reverse("admin:channels_app_message_changelist")
    with django_assert_max_num_queries(12):
        page = console.get(url + "?status__exact=sent&channel__exact=email").content.decode()
    assert "Hello 4" in page and "Hello failed" not in page
    assert "Hello failed" in console.get(url).content.decode()
    message = Message.objects.first()
    assert console.post(reverse("admin:channels_app_message_change", args=[message.pk]), {}).status_code == 403


def test_a_suppression_added_by_hand_is_stored_as_the_guards_compare_it(org, console):
    response = console.post(
        reverse("admin:channels_app_suppression_add"),
        {"channel": "email", "address": "  Ana@Example.COM ", "reason": "manual", "detail": "asked by phone"},
    )
    assert response.status_code == 302
    assert Suppression.objects.get().address == "ana@example.com"


def test_sales_see_no_outbox(org, member_factory):
    rep = client_for(member_factory(org, Role.SALES, username="sam"))
    assert rep.get(reverse("admin:channels_app_message_changelist")).status_code == 403


def test_the_demo_publishes_a_welcome_email_once(org):
    from io import StringIO

    from channels_app.demo import demo_templates

    demo_templates(org=org, users={}, stdout=StringIO())
    demo_templates(org=org, users={}, stdout=StringIO())
    template = MessageTemplate.objects.get(slug="welcome")
    assert (template.channel, template.live_version.number) == ("email", 1)


def test_send_test_to_me_goes_through_the_outbox_to_the_console_user(
    org, console, marketer, smtp, member_factory, eager_tasks, django_capture_on_commit_callbacks
):
    marketer.email = "mara@acme.io"
    marketer.save()
    assert add(console, VARIANTS).status_code == 302
    template = MessageTemplate.objects.get()
    ContactFactory(org=org, email="ana@example.com", first_name="Ana")
    url = reverse("admin:channels_app_messagetemplate_preview", args=[template.pk]) + "?contact=ana@example.com"
    with django_capture_on_commit_callbacks(execute=True):
        page = console.post(url).content.decode()
    assert "Test queued for mara@acme.io" in page
    (received,) = smtp.received
    assert received.rcpt_tos == ["mara@acme.io"]
    assert received.message["Subject"] == "[Test] Hi Ana"
    # An outbox message to the user, not to the contact previewed: transactional, no contact.
    (message,) = Message.objects.all()
    assert (message.contact_id, message.purpose, message.to, message.status) == (
        None,
        "transactional",
        "mara@acme.io",
        "sent",
    )
    assert message.content["recipient_user"] == marketer.pk
    outbox = console.get(reverse("admin:channels_app_message_changelist")).content.decode()
    assert "[Test] Hi Ana" in outbox and "mara@acme.io" in outbox
    assert reverse("admin:channels_app_message_change", args=[message.pk]) in page  # the link to it
    analyst = client_for(member_factory(org, Role.ANALYST, username="ann"))
    assert analyst.post(url).status_code == 403


def test_a_test_send_to_a_suppressed_address_is_blocked_in_the_outbox(
    org, console, marketer, smtp, eager_tasks, django_capture_on_commit_callbacks
):
    """Transactional mail skips consent (the user never gave any), not suppression."""
    marketer.email = "mara@acme.io"
    marketer.save()
    Suppression.objects.create(org=org, channel="email", address="mara@acme.io", reason="complaint")
    assert add(console, VARIANTS).status_code == 302
    template = MessageTemplate.objects.get()
    ContactFactory(org=org, email="ana@example.com", first_name="Ana")
    url = reverse("admin:channels_app_messagetemplate_preview", args=[template.pk]) + "?contact=ana@example.com"
    with django_capture_on_commit_callbacks(execute=True):
        console.post(url)
    (message,) = Message.objects.all()
    assert message.status == "blocked" and message.error == "suppressed: spam complaint"
    assert smtp.received == []


def test_the_template_page_carries_the_variant_editor_with_each_problem_on_its_field(org, console):
    variants = [
        {"name": "A", "weight": 1, "subject": "Hi", "html": "<p>x</p>"},
        {"name": "B", "weight": 0, "subject": "Hi", "html": "<p>\n{% endif %}</p>"},
    ]
    page = add(console, variants)
    assert page.status_code == 200  # refused, shown again
    config = page.context["message_editor"]
    problems = {(p["variant"], p["index"], p["field"], p["line"]) for p in config["problems"]}
    assert problems == {("B", 1, "weight", None), ("B", 1, "html", 2)}
    html = page.content.decode()
    # Without JavaScript the page is the JSON box as before; the script only adds the cards.
    assert 'id="message-editor-config"' in html and "console/message_editor.js" in html
    assert 'name="variants"' in html


def test_analysts_get_no_editor_on_the_read_only_template_page(org, member_factory):
    template = MessageTemplate.objects.create(org=org, slug="t", name="t", channel="email", variants=VARIANTS)
    analyst = client_for(member_factory(org, Role.ANALYST))
    page = analyst.get(reverse("admin:channels_app_messagetemplate_change", args=[template.pk]))
    assert page.status_code == 200 and "message_editor.js" not in page.content.decode()
