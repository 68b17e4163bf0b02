"""Publishing message templates (a frozen ``TemplateVersion`` per publish) and previewing drafts."""

from django.core.exceptions import ValidationError
from django.db import transaction

from channels_app.models import Channel, MessageTemplate, TemplateVersion
from channels_app.rendering import RenderError, email_finalize, render, template_data, template_errors
from marketing.conditions.facts import contact_facts
from marketing.models import Contact, User

# A preview belongs to no message: its links are signed as a preview's (``signed_links``), so they
# record, redirect and unsubscribe nothing, even when a test send carries them out of the console.
PREVIEW_MESSAGE_ID = 0


def template_publish(*, template: MessageTemplate, by: User | None = None) -> TemplateVersion:
    """Freezes the draft variants as the next version and makes it live; messages made from
    now on use it, messages already made keep theirs. Raises ``ValidationError({"variants":
    [...]})``, each message naming the variant and the field, when the draft cannot render."""
    with transaction.atomic():
        template = MessageTemplate.objects.select_for_update().get(pk=template.pk)
        errors = template_errors(template.channel, template.variants)
        if errors:
            raise ValidationError({"variants": errors})
        number = (template.versions.order_by("-number").values_list("number", flat=True).first() or 0) + 1
        version = TemplateVersion.objects.create(
            org=template.org, template=template, number=number, variants=template.variants, published_by=by
        )
        template.live_version = version
        template.save(update_fields=["live_version", "updated_at"])
    return version


def template_preview(*, template: MessageTemplate, contact: Contact, variant_name: str | None = None) -> dict:
    """The draft as ``contact`` would get it (the first variant unless ``variant_name``), for
    the console's preview: rendered with the contact's real facts and, for email, with tracked
    links, pixel and footer as sent. Raises ``ValidationError`` naming the variant and field
    when it cannot render."""
    variants = template.variants if isinstance(template.variants, list) else []
    if variant_name is None:
        variant = variants[0] if variants else None
    else:
        variant = next((v for v in variants if isinstance(v, dict) and v.get("name") == variant_name), None)
    if not isinstance(variant, dict):
        raise ValidationError({"variant": f"No variant named {variant_name!r}." if variant_name else "No variants."})
    try:
        return variant_preview(
            org=template.org,
            channel=template.channel,
            purpose=template.purpose,
            variant=variant,
            facts=contact_facts(contact),
        )
    except RenderError as exc:
        raise ValidationError({"variants": [str(exc)]}) from exc


# Whom a draft is shown for when the org has no contact yet: a made-up person, never stored.
SAMPLE_FACTS = {
    "id": 0,
    "email": "ana.lima@example.com",
    "first_name": "Ana",
    "last_name": "Lima",
    "job_title": "Head of Marketing",
    "country": "PT",
    "lifecycle_stage": "lead",
    "score": 42,
    "tags": [],
    "lists": [],
    "properties": {},
    "company": {"name": "Example Ltd", "domain": "example.com", "properties": {}},
}


def variant_preview(*, org, channel: str, purpose: str, variant: dict, facts: dict) -> dict:
    """One variant's fields, unsaved, rendered for the contact whose ``facts`` are given
    (``contact_facts``, or ``SAMPLE_FACTS``) exactly as the sender renders them (the same
    sandbox, sanitiser and, for email, tracked links, pixel and footer, signed as a preview's).
    Raises ``RenderError`` naming the field (and line) on a Liquid error or a sandbox limit."""
    data = template_data(
        facts=facts, org=org, message={"id": PREVIEW_MESSAGE_ID, "channel": channel, "purpose": purpose}
    )
    content = render(variant, data, channel=channel)
    if channel == Channel.EMAIL:
        content = email_finalize(
            content,
            message_id=PREVIEW_MESSAGE_ID,
            org=org,
            purpose=purpose,
            preview=True,
            preferences_url=data["preferences_url"],
        )
    return content
