"""``python manage.py send_message --org SLUG --contact EMAIL --template SLUG``.

Sends one message now, through the outbox and every guard (consent, suppression, frequency
caps, quiet hours), as a workflow step would. Exits 0 once the provider accepted it; otherwise
fails with one line giving the reason (blocked, held until when, or failed and why). A held
message stays in the outbox and goes out when its window opens.
"""

import uuid

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from channels_app.models import Message, MessageStatus, MessageTemplate
from channels_app.outbox import UnpublishedTemplateError, message_enqueue, message_send
from channels_app.rendering import RenderError
from marketing.models import Contact, Organization
from marketing.tenancy import org_context


class Command(BaseCommand):
    help = "Sends one message from a template to a contact now, through every guard."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="The organisation's slug, e.g. acme.")
        parser.add_argument("--contact", required=True, help="The contact's email address.")
        parser.add_argument("--template", required=True, help="The message template's slug.")

    def handle(self, *args, org: str, contact: str, template: str, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organisation with slug '{org}'.")
        with org_context(organization):
            person = Contact.objects.filter(org=organization, email__iexact=contact.strip()).first()
            if person is None:
                raise CommandError(f"No contact with email '{contact}' in {organization.slug}.")
            chosen = MessageTemplate.objects.filter(org=organization, slug=template).select_related("live_version")
            chosen = chosen.first()
            if chosen is None:
                raise CommandError(f"No template with slug '{template}' in {organization.slug}.")
            try:
                with transaction.atomic():
                    message = message_enqueue(
                        org=organization,
                        contact=person,
                        template=chosen,
                        idempotency_key=f"cmd:{uuid.uuid4()}",
                        enqueue_send=False,
                    )
            except (UnpublishedTemplateError, RenderError) as exc:
                raise CommandError(f"not sent: {exc}") from exc
            status = message_send(message_id=message.pk)
            message = Message.objects.get(pk=message.pk)
        reason = message.status_history[-1].get("reason", "") if message.status_history else ""
        if status == MessageStatus.SENT:
            self.stdout.write(f"sent message #{message.pk} to {message.to} ({message.provider_message_id})")
            return
        if status == MessageStatus.BLOCKED:
            raise CommandError(f"blocked: {reason}")
        if status == MessageStatus.HELD:
            raise CommandError(f"held until {message.next_attempt_at.isoformat()}: {reason}")
        if status == MessageStatus.QUEUED:
            raise CommandError(f"failed: {message.error} (tried again at {message.next_attempt_at.isoformat()})")
        raise CommandError(f"failed: {message.error or status}")
