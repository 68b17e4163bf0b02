"""Whether a tracked event (a page view, a ``track`` call, the pixel) may be stored, by the
organisation's tracking regime and what the browser and its consent banner say.

- ``Sec-GPC: 1`` (Global Privacy Control) is an opt-out of tracking and of sale or sharing:
  recorded as such (source "gpc") for a contact we know; the event is dropped, and for an
  anonymous visitor nothing at all is stored.
- Segment's ``context.consent.categoryPreferences`` (a consent manager's categories, true or
  false): categories map to purposes by ``CATEGORY_PURPOSES``. For a contact we know, a
  ``false`` is recorded as an opt-out of that purpose (source "consent_banner"), and a ``true``
  of tracking, profiling or sale/sharing (what a banner asks about) as a grant, unless the
  person withdrew it elsewhere (``compliance.services.consent_choices_record``); messages need
  their own consent. A tracking ``false`` drops the event; a tracking ``true`` lets it be
  stored under opt-in.
- Otherwise: under opt-out the event is stored unless the contact withdrew tracking; under
  opt-in only for a contact who granted it (an anonymous visitor has granted nothing).

The purposes are asked through ``marketing.consent_providers`` (``compliance`` answers).
"""

from dataclasses import dataclass
from typing import Any

from marketing.consent_providers import consent_allowed_ids, consent_allows_unknown, consent_choices_record
from marketing.models import AnonymousId, Contact, Organization

TRACKING = "tracking"
GPC_PURPOSES = ("tracking", "sale_sharing")
# What a consent banner's "yes" grants: what it asks about. Email, SMS and push need consent of
# their own (a form, double opt-in); a banner's "no" to them is still recorded.
BANNER_GRANTS = ("tracking", "profiling", "sale_sharing")
# Consent-manager category names (lower-cased) -> the purpose they stand for. The purposes' own
# names work too. OneTrust's ids: C0002 performance, C0004 targeting, C0005 social media.
CATEGORY_PURPOSES = {
    "analytics": "tracking",
    "performance": "tracking",
    "statistics": "tracking",
    "measurement": "tracking",
    "c0002": "tracking",
    "personalization": "profiling",
    "personalisation": "profiling",
    "advertising": "sale_sharing",
    "targeting": "sale_sharing",
    "marketing_and_analytics": "sale_sharing",
    "data_sharing": "sale_sharing",
    "c0004": "sale_sharing",
    "c0005": "sale_sharing",
    "email": "email_marketing",
    **{name: name for name in ("email_marketing", "sms", "push", "tracking", "profiling", "sale_sharing")},
}


def gpc_signal(headers) -> bool:
    """Whether the request carries Global Privacy Control (``Sec-GPC: 1``)."""
    return headers.get("Sec-GPC", "").strip() == "1"


def category_preferences(context: Any) -> dict[str, bool]:
    """Segment's ``context.consent.categoryPreferences`` as {purpose: allowed}; categories we do
    not map are ignored; a purpose named by several categories is allowed only if all allow it."""
    consent = context.get("consent") if isinstance(context, dict) else None
    preferences = consent.get("categoryPreferences") if isinstance(consent, dict) else None
    if not isinstance(preferences, dict):
        return {}
    purposes: dict[str, bool] = {}
    for category, allowed in preferences.items():
        purpose = CATEGORY_PURPOSES.get(str(category).strip().lower())
        if purpose and isinstance(allowed, bool):
            purposes[purpose] = purposes.get(purpose, True) and allowed
    return purposes


@dataclass(frozen=True)
class Signals:
    """What one call says about consent: GPC, and the banner's purposes."""

    gpc: bool = False
    preferences: dict | None = None

    def choices(self) -> dict[str, tuple[bool, str]]:
        """{purpose: (granted, source)} the call says; GPC's withdrawals win over the banner."""
        said = {
            p: (allowed, "consent_banner")
            for p, allowed in (self.preferences or {}).items()
            if allowed is False or p in BANNER_GRANTS
        }
        if self.gpc:
            said |= dict.fromkeys(GPC_PURPOSES, (False, "gpc"))
        return said


def known_contacts(org: Organization, *, user_ids=(), anonymous_ids=()) -> tuple[dict, dict]:
    """The existing contacts these ids name ({user id: contact}, {anonymous id: contact}), in two
    queries; an anonymous id counts only when its contact is known (has an email or a user id)."""
    by_user = {
        c.external_id: c for c in Contact.objects.filter(org=org, external_id__in=[str(u) for u in user_ids if u])
    }
    by_anonymous = {
        a.value: a.contact
        for a in AnonymousId.objects.filter(org=org, value__in=[str(a) for a in anonymous_ids if a]).select_related(
            "contact"
        )
        if a.contact.email or a.contact.external_id
    }
    return by_user, by_anonymous


def choices_record(*, org: Organization, contact: Contact, signals: Signals, proof: dict) -> int:
    """Records the call's grants and withdrawals for a contact we know, by source."""
    said = signals.choices()
    recorded = 0
    for source in sorted({source for _, source in said.values()}):
        choices = {p: granted for p, (granted, s) in said.items() if s == source}
        recorded += consent_choices_record(org=org, contact=contact, choices=choices, source=source, proof=proof)
    return recorded


def tracking_refusal(*, org: Organization, contact: Contact | None, signals: Signals) -> str | None:
    """Why a tracked event of ``contact`` (None: an anonymous visitor) may not be stored, or None
    when it may. Records nothing: call ``choices_record`` first for a known contact."""
    if signals.gpc:
        return "not stored: the browser sent Global Privacy Control (an opt-out of tracking)"
    allowed = (signals.preferences or {}).get(TRACKING)
    if allowed is False:
        return "not stored: the consent preferences refuse tracking"
    if allowed is True:
        return None
    if contact is not None:
        if contact.pk in consent_allowed_ids(org=org, contact_ids=[contact.pk], purpose=TRACKING):
            return None
        return "not stored: the contact has not consented to tracking"
    if consent_allows_unknown(org=org, purpose=TRACKING):
        return None
    return "not stored: tracking needs consent (opt-in) and the visitor has given none"
