"""Data-subject requests, step by step: received, verified by email, extended once, completed or
rejected, with reminders before the legal deadline and alerts after it.

A request comes from the preference centre, the API or the console. The person confirms it by
following a signed link mailed to the address they gave (a GET shows a button, only the POST
verifies, so mail scanners that follow links verify nothing). The deadline is set by law from
the moment of receipt: GDPR one calendar month (clamped to the month's end: received 31 January,
due 28 or 29 February), extendable once by two more months; CCPA 45 days, extendable once by 45.

Mail to the person and to the org's compliance staff goes through ``marketing.notices``:
transactional, to a plain address, no consent check (suppression still applies).
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from compliance.models import DataSubjectRequest, Law, RequestKind, RequestSource, RequestStatus
from marketing.email_addresses import normalise_email
from marketing.models import Contact, Organization, User
from marketing.notices import notice_send
from marketing.tenancy import org_context

logger = logging.getLogger(__name__)

VERIFY_SALT = "compliance.data_subject_requests.verify"
DOWNLOAD_SALT = "compliance.data_subject_requests.download"
REMIND_WITHIN = timedelta(days=7)


@dataclass(frozen=True)
class LawTerms:
    """How long a law gives to answer, and by how much it may be extended once."""

    first: relativedelta
    extension: relativedelta


# GDPR art. 12(3): one month from receipt, extendable by two further months. CCPA (Cal. Civ. Code
# 1798.130): 45 days, extendable once by 45. relativedelta clamps to the month's last day.
LAW_TERMS = {
    Law.GDPR: LawTerms(first=relativedelta(months=1), extension=relativedelta(months=2)),
    Law.CCPA: LawTerms(first=relativedelta(days=45), extension=relativedelta(days=45)),
}


class RequestLinkError(Exception):
    """A verification or download link cannot be used; ``reason`` is invalid or expired."""

    def __init__(self, reason: str, request: DataSubjectRequest | None = None):
        super().__init__(reason)
        self.reason, self.request = reason, request


def request_due_at(*, law: str, received_at: datetime, extended: bool = False) -> datetime:
    """The legal deadline of a request received at ``received_at`` under ``law`` (extended or not).

    Both terms count from receipt: an extended GDPR request received on 31 January is due on
    30 April (three months), not 28 April (one month, clamped, then two)."""
    terms = LAW_TERMS[Law(law)]
    if not extended:
        return received_at + terms.first
    if terms.first.months:
        return received_at + relativedelta(months=terms.first.months + terms.extension.months)
    return received_at + terms.first + terms.extension


def _verify_max_age() -> timedelta:
    return timedelta(days=settings.DSAR_VERIFY_MAX_AGE_DAYS)


def _download_max_age() -> timedelta:
    return timedelta(days=settings.DSAR_DOWNLOAD_MAX_AGE_DAYS)


def request_verify_token(request: DataSubjectRequest) -> str:
    """The signed token of the request's verification link (its id and send number, timestamped)."""
    return signing.dumps({"r": request.pk, "s": request.verification_sends}, salt=VERIFY_SALT, compress=True)


def request_verify_url(request: DataSubjectRequest) -> str:
    return f"{settings.SITE_URL}{reverse('compliance:dsar-verify', args=[request_verify_token(request)])}"


def request_download_token(request: DataSubjectRequest) -> str:
    """The signed token of the archive's download link (its id and file name, timestamped)."""
    return signing.dumps({"r": request.pk, "f": request.archive_path}, salt=DOWNLOAD_SALT, compress=True)


def request_download_url(request: DataSubjectRequest) -> str:
    return f"{settings.SITE_URL}{reverse('compliance:dsar-download', args=[request_download_token(request)])}"


def _request_for(token: str, *, salt: str, max_age: timedelta) -> tuple[DataSubjectRequest, dict]:
    try:
        payload = signing.loads(token, salt=salt, max_age=max_age)
    except signing.SignatureExpired:
        raise RequestLinkError("expired") from None
    except signing.BadSignature:
        raise RequestLinkError("invalid") from None
    try:
        # The link is the only credential: no org is known until the request is found.
        request = DataSubjectRequest.objects.with_scopes_disabled().select_related("org").get(pk=payload["r"])
    except (DataSubjectRequest.DoesNotExist, KeyError, TypeError):
        raise RequestLinkError("invalid") from None
    return request, payload


def request_for_verify_token(token: str) -> DataSubjectRequest:
    """The request a verification link names, or RequestLinkError (forged, mangled, older than
    ``DSAR_VERIFY_MAX_AGE_DAYS`` or than the newest resend's link)."""
    request, payload = _request_for(token, salt=VERIFY_SALT, max_age=_verify_max_age())
    if payload.get("s") != request.verification_sends:
        raise RequestLinkError("expired", request)
    return request


def request_for_download_token(token: str) -> DataSubjectRequest:
    """The completed request a download link names, or RequestLinkError (forged, mangled, older
    than ``DSAR_DOWNLOAD_MAX_AGE_DAYS``, or its archive is gone)."""
    request, payload = _request_for(token, salt=DOWNLOAD_SALT, max_age=_download_max_age())
    if not request.archive_path or payload.get("f") != request.archive_path:
        raise RequestLinkError("expired", request)
    return request


def _verification_email(request: DataSubjectRequest) -> None:
    org = request.org
    days = settings.DSAR_VERIFY_MAX_AGE_DAYS
    text = (
        f"{org.name} received a request about your personal data: {request.get_kind_display()}.\n\n"
        f"To confirm that you made it, open this link and press Confirm (it works for {days} days):\n"
        f"{request_verify_url(request)}\n\n"
        "If you did not ask for this, ignore this email: nothing happens until the request is confirmed."
    )
    notice_send(
        org=org,
        to=request.email,
        subject=f"Confirm your request to {org.name}",
        text=text,
        key=f"dsar-verify:{request.pk}:{request.verification_sends}",
    )


def request_receive(
    *,
    org: Organization,
    kind: str,
    email: str,
    source: str,
    law: str | None = None,
    details: str = "",
    contact: Contact | None = None,
    by: User | None = None,
    now: datetime | None = None,
) -> DataSubjectRequest:
    """Records a request of ``kind`` from the person at ``email``, due by ``law`` (the
    installation's ``DSAR_DEFAULT_LAW`` when None), and mails them a link to confirm it. The
    contact is the one given, else the org's contact with that address (None when there is
    none: the request can still be answered, "no data held"). Raises ValidationError naming the
    field: an invalid address, an unknown kind, source or law."""
    now = now or timezone.now()
    try:
        email = normalise_email(email or "")
    except ValidationError as exc:
        raise ValidationError({"email": f"Check the address: {exc.messages[0]}"}) from None
    law = law or settings.DSAR_DEFAULT_LAW
    for field, value, choices in (("kind", kind, RequestKind), ("source", source, RequestSource), ("law", law, Law)):
        if value not in choices.values:
            raise ValidationError({field: f"Choose one of: {', '.join(choices.values)}."})
    with org_context(org), transaction.atomic():
        if contact is None:
            contact = Contact.objects.filter(org=org, email=email).first()
        request = DataSubjectRequest.objects.create(
            org=org,
            kind=kind,
            law=law,
            source=source,
            email=email,
            contact=contact,
            details=details.strip(),
            received_at=now,
            due_at=request_due_at(law=law, received_at=now),
            verification_sends=1,
        )
        _verification_email(request)
    logger.info(
        "dsar received org=%s request=%s kind=%s source=%s law=%s contact=%s by=%s",
        org.slug,
        request.pk,
        kind,
        source,
        law,
        contact and contact.pk,
        by and by.pk,
    )
    return request


def request_verify(*, token: str, now: datetime | None = None) -> DataSubjectRequest:
    """Confirms the request a verification link names: the person showed they read mail at the
    address, so it opens (``verified_at`` set). A request already verified, completed or
    rejected is returned as it is. Raises RequestLinkError when the link cannot be used."""
    now = now or timezone.now()
    request = request_for_verify_token(token)
    with org_context(request.org):
        verified = DataSubjectRequest.objects.filter(pk=request.pk, status=RequestStatus.UNVERIFIED).update(
            status=RequestStatus.OPEN, verified_at=now
        )
        request.refresh_from_db()
    if verified:
        logger.info("dsar verified org=%s request=%s", request.org.slug, request.pk)
    return request


def request_archive_open(*, request: DataSubjectRequest):
    """The stored archive of a completed access or portability request, opened for reading, or
    RequestLinkError("expired") when it is gone (deleted by retention, or the contact erased)."""
    # TODO(audit): record the download of personal data here (actor: the data subject, by link).
    try:
        return default_storage.open(request.archive_path, "rb")
    except (FileNotFoundError, OSError):
        raise RequestLinkError("expired", request) from None
