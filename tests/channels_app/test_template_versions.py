"""Publishing templates as frozen versions, and previewing drafts against a real contact."""

import pytest
from django.core.exceptions import ValidationError

from channels_app.models import MessageTemplate
from channels_app.template_versions import template_preview, template_publish
from tests.factories import CompanyFactory, ContactFactory

VARIANTS = [
    {
        "name": "A",
        "weight": 50,
        "subject": "Hi {{ first_name | default: 'there' }}",
        "html": '<p>{{ company.name }} on {{ properties.plan }}: <a href="https://acme.io/?utm_source=mail">go</a></p>',
    },
    {"name": "B", "weight": 50, "subject": "Hello", "text": "Plain {{ email }}"},
]


def make_template(org, variants=VARIANTS, **fields):
    return MessageTemplate.objects.create(
        org=org, slug="news", name="News", channel="email", variants=variants, **fields
    )


def test_publish_freezes_the_variants_as_the_next_live_version(org, marketer):
    template = make_template(org)

    first = template_publish(template=template, by=marketer)
    template.variants = [{**VARIANTS[0], "subject": "Changed"}]
    template.save()
    second = template_publish(template=template, by=marketer)

    template.refresh_from_db()
    assert (first.number, second.number) == (1, 2)
    assert first.variants == VARIANTS
    assert second.variants[0]["subject"] == "Changed"
    assert template.live_version == second
    assert second.published_by == marketer


def test_publish_refuses_a_broken_draft_naming_variant_and_field(org):
    template = make_template(org, variants=[{"name": "A", "weight": 1, "subject": "{% for %}", "text": "x"}])

    with pytest.raises(ValidationError) as caught:
        template_publish(template=template)

    [message] = caught.value.message_dict["variants"]
    assert message.startswith("variants[A].subject: ")
    template.refresh_from_db()
    assert template.live_version is None and not template.versions.exists()


def test_preview_renders_the_draft_for_a_real_contact(org):
    company = CompanyFactory(org=org, name="Initech")
    contact = ContactFactory(org=org, first_name="", company=company, properties={"plan": "pro"})
    template = make_template(org)

    preview = template_preview(template=template, contact=contact)

    assert preview["subject"] == "Hi there"
    assert "Initech on pro:" in preview["html"]
    assert "/m/c/" in preview["html"] and "/m/u/" in preview["html"]
    assert org.postal_address in preview["text"]
    assert template_preview(template=template, contact=contact, variant_name="B")["text"].startswith(
        f"Plain {contact.email}"
    )
    with pytest.raises(ValidationError):
        template_preview(template=template, contact=contact, variant_name="Z")
