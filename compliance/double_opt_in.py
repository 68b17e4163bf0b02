"""Double opt-in: consent ticked on a public form waits until the person confirms it from an
email sent to the address the form named (anyone can type anyone's address into a form).

The form's consumer (``compliance.consumers.FormConsent``) records refusals at once and asks
here for the grants: one open ``PendingConsent`` per contact and set of purposes, mailed as a
notice (``marketing.notices``: transactional, so it needs no consent itself) with a signed link
(this module's salt, the row's id and send number, timestamped) that works for
``CONSENT_CONFIRM_MAX_AGE_DAYS``. A form sent again refreshes the row's proof and mails the
link again at most once every ``RESEND_INTERVAL``. The link's page confirms on POST only (mail
scanners follow GET links); confirming records each grant with the form's proof and the
confirmation's time, address and browser.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from compliance.models import ConsentRecord, LawfulBasis, PendingConsent, Purpose
from compliance.services import consent_states_sync
from marketing.database_roles import system_alias
from marketing.models import Contact, Event, Organization
from marketing.notices import notice_send
from marketing.tenancy import org_context

logger = logging.getLogger(__name__)

SALT = "compliance.double_opt_in"
RESEND_INTERVAL = timedelta(minutes=10)


class ConsentLinkError(Exception):
    """The confirmation link cannot be used; ``reason`` is ``invalid`` or ``expired``."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def max_age() -> timedelta:
    return timedelta(days=settings.CONSENT_CONFIRM_MAX_AGE_DAYS)


def confirmation_token(pending: PendingConsent) -> str:
    """The signed token of the confirmation link (the row's id and send number, timestamped)."""
    return signing.dumps({"p": pending.pk, "s": pending.sends}, salt=SALT, compress=True)


def confirmation_url(pending: PendingConsent) -> str:
    return f"{settings.SITE_URL}{reverse('compliance:consent-confirm', args=[confirmation_token(pending)])}"


def purposes_text(purposes: str) -> str:
    """ "email marketing and SMS marketing" from ``email_marketing,sms``."""
    labels = [Purpose(p).label[0].lower() + Purpose(p).label[1:] for p in purposes.split(",") if p in Purpose.values]
    labels = [label.replace("sMS", "SMS") for label in labels]
    return " and ".join([", ".join(labels[:-1]), labels[-1]] if len(labels) > 1 else labels)


def _mail(pending: PendingConsent, contact: Contact) -> None:
    org = pending.org
    days = settings.CONSENT_CONFIRM_MAX_AGE_DAYS
    text = (
        f"You (or someone using your address) agreed on a form of {org.name} to {purposes_text(pending.purposes)}.\n\n"
        f"Confirm it here (the link works for {days} days):\n{confirmation_url(pending)}\n\n"
        "If it was not you, ignore this email: nothing is sent to you unless you confirm."
    )
    notice_send(
        org=org,
        to=contact.email,
        subject=f"Please confirm your subscription to {org.name}",
        text=text,
        key=f"consent-confirm:{pending.pk}:{pending.sends}",
    )


def pending_consent_request(
    *, org: Organization, contact: Contact, purposes: list[str], proof: dict, event: Event | None, now: datetime
) -> PendingConsent | None:
    """Asks the contact to confirm the grant of ``purposes``: a new open request is mailed; an
    open one for the same purposes takes the newer form's proof and is mailed again only when
    its last email is older than ``RESEND_INTERVAL``. None when the contact has no address."""
    if not contact.email or not purposes:
        return None
    key = ",".join(sorted(set(purposes)))
    with transaction.atomic():
        pending = (
            PendingConsent.objects.select_for_update()
            .filter(org=org, contact=contact, purposes=key, confirmed_at__isnull=True)
            .first()
        )
        if pending is None:
            try:
                with transaction.atomic():
                    pending = PendingConsent.objects.create(
                        org=org, contact=contact, purposes=key, proof=proof, event=event, created_at=now
                    )
            except IntegrityError:  # another submission made it just now: that one mails
                return PendingConsent.objects.filter(
                    org=org, contact=contact, purposes=key, confirmed_at__isnull=True
                ).first()
        else:
            pending.proof, pending.event = proof, event
        if pending.sent_at is None or pending.sent_at <= now - RESEND_INTERVAL:
            pending.sends += 1
            pending.sent_at = now
            _mail(pending, contact)
        pending.save()
    return pending


def pending_consent_for_token(token: str, *, now: datetime | None = None) -> PendingConsent:
    """The request a link's token names, or ConsentLinkError: ``invalid`` (forged, mangled, or
    its contact is gone) or ``expired`` (older than its lifetime or than the newest email's link)."""
    try:
        payload = signing.loads(token, salt=SALT, max_age=max_age())
    except signing.SignatureExpired:
        raise ConsentLinkError("expired") from None
    except signing.BadSignature:
        raise ConsentLinkError("invalid") from None
    try:
        # Before the org is known: resolved across orgs by the signed id alone.
        pending = (
            PendingConsent.objects.with_scopes_disabled()
            .using(system_alias())
            .select_related("org", "contact")
            .get(pk=payload["p"])
        )
    except (PendingConsent.DoesNotExist, KeyError, TypeError):
        raise ConsentLinkError("invalid") from None
    if pending.confirmed_at is None and payload.get("s") != pending.sends:
        raise ConsentLinkError("expired")
    return pending


def pending_consent_confirm(*, token: str, ip: str, user_agent: str, now: datetime | None = None) -> PendingConsent:
    """Confirms the request of ``token``: one grant per purpose, with the form's proof and the
    confirmation's time, address and browser. Confirming twice records nothing more."""
    now = now or timezone.now()
    pending = pending_consent_for_token(token, now=now)
    with org_context(pending.org), transaction.atomic():
        # Its contact and org loaded now, inside the org: the page reads them after it.
        locked = (
            PendingConsent.objects.select_for_update(of=("self",)).select_related("org", "contact").get(pk=pending.pk)
        )
        if locked.confirmed_at is not None:
            return locked
        contact = locked.contact
        proof = {
            **locked.proof,
            "confirmed_at": now.isoformat(),
            "confirmed_ip": ip,
            "confirmed_user_agent": user_agent[:500],
        }
        ConsentRecord.objects.bulk_create(
            [
                ConsentRecord(
                    org=locked.org,
                    contact=contact,
                    subject_email=contact.email or "",
                    purpose=purpose,
                    granted=True,
                    source="double_opt_in",
                    lawful_basis=LawfulBasis.CONSENT,
                    proof=proof,
                    recorded_at=now,
                )
                for purpose in locked.purposes.split(",")
            ]
        )
        consent_states_sync(org=locked.org, contact_ids=[contact.pk])
        locked.confirmed_at = now
        locked.save(update_fields=["confirmed_at"])
    logger.info("consent confirmed org=%s contact=%s purposes=%s", locked.org.slug, contact.pk, locked.purposes)
    return locked
