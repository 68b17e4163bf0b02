"""Compliance: consent, kept as an append-only record per contact and purpose.

The current state of a purpose is the newest record's ``granted`` (``compliance.selectors``);
nothing is ever updated or deleted here except by erasure, so the history is the proof.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from marketing.change_history import history_tracked
from marketing.field_encryption import EncryptedNetworkAddressesJSONField
from marketing.models import Contact, Event, TenantModel


class Purpose(models.TextChoices):
    EMAIL_MARKETING = "email_marketing", "Email marketing"
    SMS = "sms", "SMS marketing"
    PUSH = "push", "Web push"
    TRACKING = "tracking", "Tracking"
    PROFILING = "profiling", "Profiling"
    SALE_SHARING = "sale_sharing", "Sale or sharing of data"


class LawfulBasis(models.TextChoices):
    CONSENT = "consent", "Consent"
    CONTRACT = "contract", "Contract"
    LEGITIMATE_INTEREST = "legitimate_interest", "Legitimate interest"
    LEGAL_OBLIGATION = "legal_obligation", "Legal obligation"


class ConsentRecord(TenantModel):
    """One grant or withdrawal of consent for one purpose, with where it came from and proof."""

    # The record outlives its contact (deleted or merged away): the proof must stay. Only an
    # erasure empties ``subject_email`` and the proof, keeping ``subject_digest`` (a keyed hash).
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="consent_records"
    )
    subject_email = models.CharField(
        max_length=254,
        blank=True,
        db_default="",
        help_text="The contact's email when it was recorded, kept if the contact goes.",
    )
    subject_digest = models.CharField(
        max_length=128,
        blank=True,
        db_default="",
        help_text="After an erasure: a keyed hash of the email, instead of the email.",
    )
    purpose = models.CharField(max_length=20, choices=Purpose.choices)
    granted = models.BooleanField()
    source = models.CharField(
        max_length=40, help_text="form, import, api, unsubscribe_link, one_click, sms_stop, console…"
    )
    lawful_basis = models.CharField(max_length=20, choices=LawfulBasis.choices, default=LawfulBasis.CONSENT)
    # The network addresses in it (the IP, an SMS sender's number) are encrypted at rest.
    proof = EncryptedNetworkAddressesJSONField(
        default=dict, blank=True, help_text="IP, user agent, form, text shown, message id…"
    )
    event = models.ForeignKey(
        Event,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The event that carried it (a form submission), if any.",
    )
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-recorded_at", "-id"]
        indexes = [models.Index(fields=["org", "contact", "purpose", "-recorded_at"], name="consent_latest")]
        constraints = [
            # A form submission dispatched twice records its consent once.
            models.UniqueConstraint(
                fields=["event", "purpose"], name="consent_once_per_event", condition=Q(event__isnull=False)
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_purpose_display()} {'granted' if self.granted else 'withdrawn'} ({self.source})"


class Regime(models.TextChoices):
    OPT_IN = "opt_in", "Opt-in: not until the person agrees (GDPR)"
    OPT_OUT = "opt_out", "Opt-out: allowed until the person says no (CCPA)"


# What an organisation without a regimes row gets, and what existing ones migrated to: today's
# behaviour (messages need a grant; tracking, profiling and sharing run until an opt-out).
DEFAULT_REGIMES = {
    Purpose.EMAIL_MARKETING: Regime.OPT_IN,
    Purpose.SMS: Regime.OPT_IN,
    Purpose.PUSH: Regime.OPT_IN,
    Purpose.TRACKING: Regime.OPT_OUT,
    Purpose.PROFILING: Regime.OPT_OUT,
    Purpose.SALE_SHARING: Regime.OPT_OUT,
}


def _regime_field(purpose: Purpose, governs: str) -> models.CharField:
    return models.CharField(
        max_length=10,
        choices=Regime.choices,
        default=DEFAULT_REGIMES[purpose],
        verbose_name=purpose.label,
        help_text=governs,
    )


@history_tracked()
class ConsentRegime(TenantModel):
    """An organisation's regime per purpose (one row per org; none means ``DEFAULT_REGIMES``):
    opt-in needs a grant before the purpose is acted on, opt-out acts until a withdrawal."""

    email_marketing = _regime_field(Purpose.EMAIL_MARKETING, "Marketing emails.")
    sms = _regime_field(Purpose.SMS, "Marketing text messages.")
    push = _regime_field(Purpose.PUSH, "Marketing web-push notifications.")
    tracking = _regime_field(Purpose.TRACKING, "Storing page views, app events, email opens and clicks.")
    profiling = _regime_field(Purpose.PROFILING, "Lead scoring and the predicted chance to convert.")
    sale_sharing = _regime_field(
        Purpose.SALE_SHARING, "Sending a contact's data to third parties: webhooks and webhook destinations."
    )
    double_opt_in = models.BooleanField(
        default=True,
        verbose_name="Double opt-in for forms",
        help_text="Consent ticked on a public form counts once the person confirms it by email.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "consent regimes"
        constraints = [models.UniqueConstraint(fields=["org"], name="consent_regime_one_per_org")]

    def __str__(self) -> str:
        return "Consent regimes"

    def regime(self, purpose: str) -> str:
        return getattr(self, purpose)


class ConsentState(TenantModel):
    """A contact's current state of one purpose: its newest record's, kept with every record
    written (``compliance.services``), so set-based code (scoring, exports) can join it. Derived
    from the records, so it goes with the contact; the records stay."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="consent_states")
    purpose = models.CharField(max_length=20, choices=Purpose.choices)
    granted = models.BooleanField()
    recorded_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["contact", "purpose"], name="consent_state_one_per_purpose")]
        indexes = [models.Index(fields=["org", "purpose", "granted", "contact"], name="consent_state_lookup")]

    def __str__(self) -> str:
        return f"{self.get_purpose_display()} {'granted' if self.granted else 'withdrawn'}"


class PendingConsent(TenantModel):
    """Consent ticked on a public form, waiting for the person to confirm it from the email we
    sent (double opt-in). One open row per contact and set of purposes; confirming records the
    grants with the form's proof and the confirmation's."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="pending_consents")
    purposes = models.CharField(max_length=120, help_text="The purposes to grant, comma-separated and sorted.")
    proof = EncryptedNetworkAddressesJSONField(
        default=dict, blank=True, help_text="The form's proof: wording, form, time, IP (encrypted), agent."
    )
    event = models.ForeignKey(Event, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True, help_text="When the confirmation email last went out.")
    sends = models.PositiveSmallIntegerField(default=0)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "consent awaiting confirmation"
        verbose_name_plural = "consents awaiting confirmation"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["contact", "purposes"], name="pending_consent_one_open", condition=Q(confirmed_at__isnull=True)
            )
        ]

    def __str__(self) -> str:
        state = "confirmed" if self.confirmed_at else "awaiting confirmation"
        return f"{self.purposes.replace(',', ', ')} {state}"


class RequestKind(models.TextChoices):
    ACCESS = "access", "Access (a copy of the data)"
    PORTABILITY = "portability", "Portability (an archive to take elsewhere)"
    ERASURE = "erasure", "Erasure"
    RECTIFICATION = "rectification", "Rectification"
    OPT_OUT_OF_SALE = "opt_out_of_sale", "Opt-out of sale or sharing"


class Law(models.TextChoices):
    GDPR = "gdpr", "GDPR: one month, extendable by two"
    CCPA = "ccpa", "CCPA: 45 days, extendable by 45"


class RequestStatus(models.TextChoices):
    UNVERIFIED = "unverified", "Waiting for the person to confirm by email"
    OPEN = "open", "Open"
    COMPLETED = "completed", "Completed"
    REJECTED = "rejected", "Rejected"


class RequestSource(models.TextChoices):
    PREFERENCE_CENTRE = "preference_centre", "Preference centre"
    API = "api", "API"
    CONSOLE = "console", "Entered in the console"


class DataSubjectRequest(TenantModel):
    """A person's request about their data (GDPR articles 15–21, CCPA): received, verified by
    email, due by law, fulfilled or rejected. ``compliance.data_subject_requests`` holds the steps."""

    kind = models.CharField(max_length=20, choices=RequestKind.choices)
    law = models.CharField(max_length=10, choices=Law.choices, default=Law.GDPR)
    status = models.CharField(max_length=20, choices=RequestStatus.choices, default=RequestStatus.UNVERIFIED)
    source = models.CharField(max_length=20, choices=RequestSource.choices)
    email = models.CharField(max_length=254, help_text="The address the person gave; the request is verified there.")
    subject_digest = models.CharField(
        max_length=128,
        blank=True,
        db_default="",
        help_text="After an erasure: a keyed hash of the email, instead of the email.",
    )
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="data_subject_requests"
    )
    details = models.TextField(blank=True, help_text="What the person asked for, e.g. which details to correct.")
    received_at = models.DateTimeField(default=timezone.now)
    verified_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(help_text="The legal deadline: from receipt, by the law chosen.")
    extended = models.BooleanField(default=False, help_text="Extended once, as the law allows.")
    extension_reason = models.TextField(blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    outcome = models.TextField(blank=True, help_text="What was done, or why the request was rejected.")
    verification_sends = models.PositiveSmallIntegerField(
        default=0, help_text="Verification emails sent; only the newest one's link works."
    )
    overdue_alerted_at = models.DateTimeField(null=True, blank=True)
    archive_path = models.CharField(
        max_length=300, blank=True, help_text="Where the archive of an access or portability request is stored."
    )

    class Meta:
        verbose_name = "data-subject request"
        ordering = ["due_at", "id"]
        indexes = [models.Index(fields=["org", "status", "due_at"], name="dsar_queue")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} request #{self.pk}"


@history_tracked()
class SubscriptionType(TenantModel):
    """A topic a contact may follow or leave (a newsletter, product news, events), within one
    marketing purpose: leaving a topic stops the messages of that topic only; withdrawing the
    purpose stops them all. Managed in the console; offered in the preference centre."""

    name = models.CharField(max_length=120)
    description = models.CharField(
        max_length=300, blank=True, help_text="One sentence shown under the topic in the preference centre."
    )
    purpose = models.CharField(
        max_length=20,
        choices=Purpose.choices,
        default=Purpose.EMAIL_MARKETING,
        help_text="The channel's purpose its messages need consent for.",
    )
    active = models.BooleanField(default=True, help_text="Inactive topics are not offered in the preference centre.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "topic"
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["org", "name"], name="subscriptiontype_unique_name")]

    def __str__(self) -> str:
        return self.name


class TopicChoice(TenantModel):
    """A contact joining or leaving a topic, appended like consent: the newest row of a contact
    and topic is its current state; a contact without any row follows every active topic of a
    purpose it consented to."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="topic_choices")
    topic = models.ForeignKey(SubscriptionType, on_delete=models.CASCADE, related_name="choices")
    subscribed = models.BooleanField()
    source = models.CharField(max_length=40, help_text="preference_centre, console, api…")
    proof = EncryptedNetworkAddressesJSONField(
        default=dict, blank=True, help_text="IP (encrypted), user agent, message id…"
    )
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-recorded_at", "-id"]
        indexes = [models.Index(fields=["org", "contact", "topic", "-recorded_at"], name="topic_choice_latest")]

    def __str__(self) -> str:
        return f"{self.topic} {'joined' if self.subscribed else 'left'} ({self.source})"


def _data_kinds() -> list[tuple[str, str]]:
    from marketing.retention import DATA_KINDS  # the kinds' list, which the apps' tables fill

    return [(kind.name, kind.label) for kind in DATA_KINDS.values()]


@history_tracked(exclude=("last_purged_at", "last_purged_rows"))
class RetentionPolicy(TenantModel):
    """How long an organisation keeps one kind of data (``marketing.retention.DATA_KINDS``):
    rows older than ``days`` go at the nightly purge (``compliance.retention``). No row, or no
    days, keeps it forever."""

    kind = models.CharField(max_length=20, choices=_data_kinds)
    days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Rows older than this many days are purged; empty keeps them forever."
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)
    last_purged_at = models.DateTimeField(null=True, blank=True)
    last_purged_rows = models.PositiveIntegerField(default=0, help_text="Rows the last purge removed.")

    class Meta:
        verbose_name = "data retention"
        verbose_name_plural = "data retention"
        constraints = [models.UniqueConstraint(fields=["org", "kind"], name="retentionpolicy_one_per_kind")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {f'{self.days} days' if self.days else 'forever'}"
