"""Compliance: consent, kept as an append-only record per contact and purpose.

The current state of a purpose is the newest record's ``granted`` (``compliance.selectors``);
nothing is ever updated or deleted here except by erasure, so the history is the proof.
"""

from django.db import models
from django.db.models import Q
from django.utils import timezone

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

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="consent_records")
    purpose = models.CharField(max_length=20, choices=Purpose.choices)
    granted = models.BooleanField()
    source = models.CharField(
        max_length=40, help_text="form, import, api, unsubscribe_link, one_click, sms_stop, console…"
    )
    lawful_basis = models.CharField(max_length=20, choices=LawfulBasis.choices, default=LawfulBasis.CONSENT)
    proof = models.JSONField(default=dict, blank=True, help_text="IP, user agent, form, text shown, message id…")
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
