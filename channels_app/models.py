"""Channels: message templates (versioned, with A/B variants), the outbox (one ``Message`` row
per send, with its status history) and the suppression list."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from marketing.change_history import history_tracked
from marketing.field_encryption import EncryptedTextField, is_phone, phone_index
from marketing.models import Contact, TenantModel


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    PUSH = "push", "Web push"
    SLACK = "slack", "Slack"
    WEBHOOK = "webhook", "Webhook"
    SOCIAL = "social", "Social post"


class Purpose(models.TextChoices):
    MARKETING = "marketing", "Marketing (needs consent; unsubscribe and postal address added)"
    TRANSACTIONAL = "transactional", "Transactional (receipts, notifications)"


@history_tracked()
class MessageTemplate(TenantModel):
    """What a message says, per channel, as a draft; publishing freezes a ``TemplateVersion``.

    ``variants`` is a list of ``{"name": "A", "weight": 50, …fields}``; the fields by channel:
    email ``subject``, ``preheader``, ``html``, ``text``; SMS ``text``; push ``title``,
    ``body``, ``url``; Slack, webhook and social ``text`` and/or ``payload``. They are Liquid
    templates rendered in a sandbox (``channels_app.rendering``).
    """

    slug = models.SlugField(max_length=100)
    name = models.CharField(max_length=200)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    purpose = models.CharField(max_length=15, choices=Purpose.choices, default=Purpose.MARKETING)
    variants = models.JSONField(default=list)
    topic = models.ForeignKey(
        "compliance.SubscriptionType",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Marketing only: contacts who left this topic in the preference centre do not get it.",
    )
    live_version = models.ForeignKey(
        "TemplateVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    library_template = models.SlugField(
        max_length=100, blank=True, help_text="The library template that made it (empty: made by hand)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["org", "slug"], name="messagetemplate_unique_slug")]

    def __str__(self) -> str:
        return self.name


@history_tracked()
class TemplateVersion(TenantModel):
    """A published template, frozen: a message records the version (and variant) it was made from."""

    template = models.ForeignKey(MessageTemplate, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    variants = models.JSONField()
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    published_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["template", "-number"]
        constraints = [models.UniqueConstraint(fields=["template", "number"], name="templateversion_unique_number")]

    def __str__(self) -> str:
        return f"{self.template} v{self.number}"


class MessageStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    HELD = "held", "Held (quiet hours or frequency cap; rescheduled)"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    OPENED = "opened", "Opened"
    CLICKED = "clicked", "Clicked"
    BOUNCED = "bounced", "Bounced"
    COMPLAINED = "complained", "Complained"
    BLOCKED = "blocked", "Blocked by a guard"
    FAILED = "failed", "Failed"


class Message(TenantModel):
    """One send to one contact on one channel: the outbox row of the delivery protocol
    (docs/workflows.md). Unique on ``idempotency_key``: a step, a test send or a command run
    can create it once; ``status_history`` lists every change with its time and reason."""

    Status = MessageStatus

    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    purpose = models.CharField(max_length=15, choices=Purpose.choices, default=Purpose.MARKETING)
    template_version = models.ForeignKey(
        TemplateVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    variant = models.CharField(max_length=50, blank=True)
    instance = models.ForeignKey(
        "workflows.WorkflowInstance", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    workflow = models.ForeignKey(
        "workflows.Workflow", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    step_id = models.CharField(max_length=100, blank=True)
    idempotency_key = models.CharField(max_length=200, unique=True)
    # A phone number (SMS) is encrypted at rest, as the contact's phone is; an email address stays
    # readable (it is the contact's email, kept plain for identity and suppression) and so do
    # push subscriptions and destination slugs.
    to = EncryptedTextField(
        max_length=500, only_phones=True, help_text="Address, phone number (stored encrypted), subscription or URL."
    )
    content = models.JSONField(default=dict, help_text="The rendered fields (subject, html, text, …).")
    status = models.CharField(max_length=12, choices=MessageStatus.choices, default=MessageStatus.QUEUED)
    status_history = models.JSONField(default=list, help_text='[{"status", "at", "reason"}]')
    provider = models.CharField(max_length=40, blank=True)
    provider_message_id = models.CharField(max_length=300, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"], name="message_due", condition=Q(status__in=["queued", "held", "sending"])
            ),
            models.Index(fields=["org", "contact", "channel", "-created_at"], name="message_contact_history"),
            models.Index(fields=["org", "status", "-created_at"], name="message_status"),
            models.Index(fields=["provider", "provider_message_id"], name="message_provider_id"),
            # The console: the outbox's order, and the home's messages of the last 7 days.
            models.Index(fields=["org", "-created_at", "-id"], name="message_recent"),
            models.Index(fields=["org", "sent_at"], name="message_sent", condition=Q(sent_at__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} to {self.to} ({self.status})"


class Suppression(TenantModel):
    """An address nothing is sent to on a channel (hard bounce, complaint, STOP, erasure, by hand).
    Unsubscribing is a consent withdrawal (``compliance``), not a suppression: it can be undone."""

    class Reason(models.TextChoices):
        HARD_BOUNCE = "hard_bounce", "Hard bounce"
        COMPLAINT = "complaint", "Spam complaint"
        SMS_STOP = "sms_stop", "Replied STOP"
        ERASED = "erased", "Erased (data-subject request)"
        MANUAL = "manual", "Added by hand"

    channel = models.CharField(max_length=10, choices=Channel.choices)
    address = models.CharField(
        max_length=320, help_text="Lower-cased email, a phone's keyed hash (older rows: E.164), or a SHA-256 hash."
    )
    reason = models.CharField(max_length=20, choices=Reason.choices)
    detail = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["org", "channel", "address"], name="suppression_unique_address")]

    def __str__(self) -> str:
        return f"{self.address} ({self.get_reason_display()})"

    @staticmethod
    def address_of(to: str) -> str:
        """How a recipient is kept here: a phone number as its keyed hash (the same as
        ``Contact.phone_bidx``, so no suppression holds a number in clear), anything else
        lower-cased."""
        address = to.strip()
        return phone_index(address) if is_phone(address) else address.lower()


class PushSubscription(TenantModel):
    """A browser's web-push subscription (from the service worker), one per endpoint."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="push_subscriptions")
    endpoint = models.URLField(max_length=1000)
    p256dh = models.CharField(max_length=200)
    auth = models.CharField(max_length=100)
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "endpoint"], name="pushsubscription_unique_endpoint")]

    def __str__(self) -> str:
        return f"push to contact #{self.contact_id}"


@history_tracked(exclude=("url", "secret"))
class Destination(TenantModel):
    """Where a Slack, webhook or social message goes: a named target, not a contact's address.

    A message to it carries the slug as ``Message.to``; the provider looks the row up at send
    time, so a rotated URL or secret applies to messages already queued. ``url`` is the Slack
    incoming-webhook URL (itself a credential), the webhook endpoint, or the social server's base
    URL (a Mastodon instance); ``secret`` is the webhook's HMAC signing secret or the social
    account's access token. The console never shows either back in full.
    """

    CHANNELS = [(c.value, c.label) for c in (Channel.SLACK, Channel.WEBHOOK, Channel.SOCIAL)]

    slug = models.SlugField(max_length=100)
    name = models.CharField(max_length=200)
    channel = models.CharField(max_length=10, choices=CHANNELS)
    url = models.URLField(
        max_length=1000,
        blank=True,
        help_text="Slack incoming-webhook URL, webhook endpoint, or the social server (https://…). "
        "Empty: messages are written to the log, nothing leaves the system.",
    )
    secret = models.CharField(
        max_length=500, blank=True, help_text="Webhook signing secret, or the social account's access token."
    )
    active = models.BooleanField(default=True, help_text="Messages to an inactive destination fail.")
    library_template = models.SlugField(
        max_length=100, blank=True, help_text="The library template that made it (empty: made by hand)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["org", "slug"], name="destination_unique_slug")]

    def __str__(self) -> str:
        return self.name


class InboundSmsReceipt(models.Model):
    """A text Twilio delivered to us, by its ``MessageSid``. Twilio's signature carries no time, so
    a captured STOP or START would stay valid forever: the sid is claimed before acting, and a
    sid seen before is a replay (or Twilio's own retry) that changes nothing. Not tenant data:
    our numbers serve every org, and a text is claimed before the orgs it concerns are known."""

    sid = models.CharField(max_length=64, unique=True)
    received_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.sid
