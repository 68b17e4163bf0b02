"""``python manage.py send_message --org SLUG --template SLUG (--contact EMAIL | --segment SLUG)``.

``--contact``: sends one message now, through the outbox and every guard (consent,
suppression, frequency caps, quiet hours), as a workflow step would. Exits 0 once the provider
accepted it; otherwise fails with one line giving the reason (blocked, held until when, or
failed and why). A held message stays in the outbox and goes out when its window opens.

``--segment``: a broadcast (``channels_app.broadcasts``) to every current member of the
segment, queued 500 a transaction with a progress bar on stderr; the sends go through the
workers, guards checked per message. ``--key`` names the broadcast (default: the template's
slug and live version): running it again queues nothing twice.
"""

import uuid

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from channels_app.broadcasts import broadcast_enqueue
from channels_app.models import Message, MessageStatus, MessageTemplate
from channels_app.outbox import UnpublishedTemplateError, message_enqueue, message_send
from channels_app.rendering import RenderError
from marketing.models import Contact, Organization, Segment
from marketing.tenancy import org_context


class Command(BaseCommand):
    help = "Sends a template to one contact now, or broadcasts it to a segment's members, through every guard."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="The organisation's slug, e.g. acme.")
        parser.add_argument("--template", required=True, help="The message template's slug.")
        to = parser.add_mutually_exclusive_group(required=True)
        to.add_argument("--contact", help="The contact's email address (one message, sent now).")
        to.add_argument("--segment", help="A segment's slug: a broadcast to its current members.")
        parser.add_argument(
            "--key", default="", help="With --segment: the broadcast's name (default: template slug and version)."
        )

    def handle(self, *args, org: str, contact: str | None, segment: str | None, template: str, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organisation with slug '{org}'.")
        if segment is not None:
            return self.broadcast(organization, segment, template, options["key"])
        if options["key"]:
            raise CommandError("--key names a broadcast: use it with --segment.")
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

    def broadcast(self, org: Organization, segment_slug: str, template_slug: str, key: str) -> None:
        with org_context(org):
            segment = Segment.objects.filter(org=org, slug=segment_slug).first()
            if segment is None:
                raise CommandError(f"No segment with slug '{segment_slug}' in {org.slug}.")
            chosen = MessageTemplate.objects.filter(org=org, slug=template_slug).select_related("live_version")
            chosen = chosen.first()
            if chosen is None:
                raise CommandError(f"No template with slug '{template_slug}' in {org.slug}.")
            progress = Progress(
                TextColumn(f"Broadcast {chosen.slug} to {segment.slug}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=Console(file=self.stderr),
                transient=True,
            )
            try:
                with progress:
                    task = progress.add_task("members", total=None)
                    result = broadcast_enqueue(
                        org=org,
                        template=chosen,
                        segment=segment,
                        key=key,
                        on_chunk=lambda done, total: progress.update(task, completed=done, total=total),
                    )
            except (UnpublishedTemplateError, RenderError) as exc:
                raise CommandError(f"not sent: {exc}") from exc
        self.stdout.write(
            f"broadcast {result.key}: {result.queued} messages queued for {result.members} members of "
            f"{segment.slug} ({result.existing} already had it); guards are checked as each is sent"
        )
