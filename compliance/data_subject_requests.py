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

import io
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from compliance.erasure import contact_erase, contact_export
from compliance.models import DataSubjectRequest, Law, Purpose, RequestKind, RequestSource, RequestStatus
from compliance.personal_data_archive import personal_data_archive_write
from compliance.services import consent_record
from marketing.audit import audit_record
from marketing.database_roles import system_alias
from marketing.email_addresses import normalise_email
from marketing.models import AuditEntry, Contact, Membership, Organization, Role, User
from marketing.notices import notice_send
from marketing.tenancy import org_context

logger = logging.getLogger(__name__)
Verb, PUBLIC = AuditEntry.Verb, AuditEntry.Source.PUBLIC

VERIFY_SALT = "compliance.data_subject_requests.verify"
DOWNLOAD_SALT = "compliance.data_subject_requests.download"
REMIND_WITHIN = timedelta(days=7)
# The audit log's actor for what the person does through a signed link (no account, no key).
DATA_SUBJECT = "data subject (signed link)"


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
        requests = DataSubjectRequest.objects.with_scopes_disabled().using(system_alias())
        request = requests.select_related("org").get(pk=payload["r"])
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
        audit_record(org=org, verb=Verb.CREATED, target=request, fields=("kind", "law", "source"), actor=by)
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
            audit_record(
                org=request.org,
                verb=Verb.VERIFIED,
                target=request,
                fields=("status",),
                actor=DATA_SUBJECT,
                source=PUBLIC,
            )
    if verified:
        logger.info("dsar verified org=%s request=%s", request.org.slug, request.pk)
    return request


def request_archive_open(*, request: DataSubjectRequest):
    """The stored archive of a completed access or portability request, opened for reading, or
    RequestLinkError("expired") when it is gone (deleted by retention, or the contact erased)."""
    try:
        archive = default_storage.open(request.archive_path, "rb")
    except (FileNotFoundError, OSError):
        raise RequestLinkError("expired", request) from None
    with org_context(request.org):  # a read of personal data: in the audit log like the console's
        audit_record(org=request.org, verb=Verb.DOWNLOADED, target=request, actor=DATA_SUBJECT, source=PUBLIC)
    return archive


# --- the staff's steps -------------------------------------------------------------------------


def _locked(request: DataSubjectRequest) -> DataSubjectRequest:
    return DataSubjectRequest.objects.select_for_update().get(org=request.org, pk=request.pk)


def _refuse_unless(request: DataSubjectRequest, *statuses: str, doing: str) -> None:
    if request.status not in statuses:
        raise ValidationError(f"Request #{request.pk} is {request.get_status_display().lower()}: it cannot be {doing}.")


def _tell_person(request: DataSubjectRequest, *, step: str, subject: str, text: str) -> None:
    notice_send(org=request.org, to=request.email, subject=subject, text=text, key=f"dsar-{step}:{request.pk}")


def request_verification_resend(*, request: DataSubjectRequest, by: User | None) -> DataSubjectRequest:
    """Mails the confirmation link of an unconfirmed request again; links sent before stop working.
    Raises ValidationError when the request is no longer waiting for its confirmation."""
    with org_context(request.org), transaction.atomic():
        request = _locked(request)
        _refuse_unless(request, RequestStatus.UNVERIFIED, doing="sent a confirmation link again")
        request.verification_sends += 1
        request.save(update_fields=["verification_sends"])
        audit_record(org=request.org, verb=Verb.CHANGED, target=request, fields=("verification_sends",), actor=by)
        _verification_email(request)
    logger.info("dsar verification resent org=%s request=%s by=%s", request.org.slug, request.pk, by and by.pk)
    return request


def request_extend(*, request: DataSubjectRequest, reason: str, by: User | None) -> DataSubjectRequest:
    """Extends the deadline once, as the law allows (GDPR by two months, CCPA by 45 days, both
    counted from receipt), and tells the person the new date and the reason, as both laws
    require. Reminders and overdue alerts start again for the new date. Raises ValidationError
    naming ``reason`` when it is empty, or when the request was extended already or is closed."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the request needs more time; the person is told."})
    with org_context(request.org), transaction.atomic():
        request = _locked(request)
        _refuse_unless(request, RequestStatus.UNVERIFIED, RequestStatus.OPEN, doing="extended")
        if request.extended:
            raise ValidationError(f"Request #{request.pk} was extended already; the law allows one extension.")
        request.extended, request.extension_reason = True, reason
        request.due_at = request_due_at(law=request.law, received_at=request.received_at, extended=True)
        request.reminded_at = request.overdue_alerted_at = None
        request.save(update_fields=["extended", "extension_reason", "due_at", "reminded_at", "overdue_alerted_at"])
        fields = ("extended", "extension_reason", "due_at")
        audit_record(org=request.org, verb=Verb.CHANGED, target=request, fields=fields, actor=by)
        _tell_person(
            request,
            step="extended",
            subject=f"Your request to {request.org.name} needs more time",
            text=(
                f"{request.org.name} needs more time to answer your request ({request.get_kind_display().lower()}) "
                f"and will answer by {request.due_at:%d %B %Y}.\n\nWhy: {reason}"
            ),
        )
    logger.info("dsar extended org=%s request=%s by=%s", request.org.slug, request.pk, by and by.pk)
    return request


def request_reject(*, request: DataSubjectRequest, reason: str, by: User | None) -> DataSubjectRequest:
    """Rejects the request (unfounded, excessive, the identity not confirmed…) and tells the
    person why. Raises ValidationError naming ``reason`` when it is empty, or when the request
    is closed already."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the request is rejected; the person is told."})
    with org_context(request.org), transaction.atomic():
        request = _locked(request)
        _refuse_unless(request, RequestStatus.UNVERIFIED, RequestStatus.OPEN, doing="rejected")
        request.status, request.outcome = RequestStatus.REJECTED, reason
        request.completed_at, request.handled_by = timezone.now(), by
        request.save(update_fields=["status", "outcome", "completed_at", "handled_by"])
        audit_record(org=request.org, verb=Verb.REJECTED, target=request, fields=("status", "outcome"), actor=by)
        _tell_person(
            request,
            step="rejected",
            subject=f"Your request to {request.org.name}",
            text=(
                f"{request.org.name} will not act on your request ({request.get_kind_display().lower()}).\n\n"
                f"Why: {reason}\n\nYou may complain to a data protection authority."
            ),
        )
    logger.info("dsar rejected org=%s request=%s by=%s", request.org.slug, request.pk, by and by.pk)
    return request


def _archive_store(request: DataSubjectRequest, contact: Contact) -> str:
    """Builds the contact's archive (every app's personal data, as JSON and CSV in a ZIP) and
    stores it under an unguessable name that only the request's download link leads to."""
    buffer = io.BytesIO()
    personal_data_archive_write(export=contact_export(contact=contact), out=buffer)
    name = f"data-subject-requests/{request.org_id}/{request.pk}-{secrets.token_urlsafe(16)}.zip"
    return default_storage.save(name, ContentFile(buffer.getvalue()))


def _complete_access(request: DataSubjectRequest, by: User | None) -> tuple[str, str]:
    if request.contact is None:
        return (
            f"No data held: no contact has the address {request.email}.",
            f"{request.org.name} holds no personal data about {request.email}.",
        )
    request.archive_path = _archive_store(request, request.contact)
    days = settings.DSAR_DOWNLOAD_MAX_AGE_DAYS
    return (
        "Archive of the contact's personal data sent by email (a download link).",
        f"Here is a copy of the personal data {request.org.name} holds about you, as a ZIP of JSON and CSV "
        f"files. Download it here (the link works for {days} days):\n{request_download_url(request)}",
    )


def _complete_erasure(request: DataSubjectRequest, by: User | None) -> tuple[str, str]:
    if request.contact is None:
        return (
            f"No data held: no contact has the address {request.email}.",
            f"{request.org.name} holds no personal data about {request.email}; there was nothing to erase.",
        )
    # Archives of the person's earlier access requests are their data too, in MEDIA_ROOT.
    earlier = DataSubjectRequest.objects.filter(org=request.org).exclude(archive_path="")
    _archives_delete(earlier.filter(Q(contact=request.contact) | Q(email=request.email)))
    contact_erase(contact=request.contact, by=by, reason=f"data-subject request #{request.pk}")
    # The erasure blocks the address for every message but notices like this answer, so the
    # person learns it was done (GDPR art. 12(3)) and nothing else reaches them.
    return (
        "The contact's personal data was erased; only a keyed hash of the address is kept, so it is not re-added.",
        f"{request.org.name} erased the personal data it held about {request.email}. It will send you "
        "nothing more, except answers to requests you make about your data.",
    )


def _complete_opt_out_of_sale(request: DataSubjectRequest, by: User | None) -> tuple[str, str]:
    if request.contact is None:
        return (
            f"No data held: no contact has the address {request.email}; nothing is sold or shared.",
            f"{request.org.name} holds no personal data about {request.email}, so none is sold or shared.",
        )
    consent_record(
        org=request.org,
        contact=request.contact,
        purpose=Purpose.SALE_SHARING,
        granted=False,
        source="data_subject_request",
        proof={"data_subject_request": request.pk, "by": by and by.pk},
    )
    return (
        "Sale and sharing withdrawn: the contact's data is no longer sent to third parties.",
        f"{request.org.name} will no longer sell or share your personal data.",
    )


def _complete_rectification(request: DataSubjectRequest, by: User | None) -> tuple[str, str]:
    return ("", f"{request.org.name} corrected the personal data it holds about you, as you asked.")


COMPLETIONS = {
    RequestKind.ACCESS: _complete_access,
    RequestKind.PORTABILITY: _complete_access,
    RequestKind.ERASURE: _complete_erasure,
    RequestKind.OPT_OUT_OF_SALE: _complete_opt_out_of_sale,
    RequestKind.RECTIFICATION: _complete_rectification,
}


def request_complete(*, request: DataSubjectRequest, by: User | None, outcome: str = "") -> DataSubjectRequest:
    """Does what the confirmed request asks and tells the person: access and portability mail a
    signed, expiring link to a ZIP of the contact's personal data (JSON and CSV); erasure erases
    the contact everywhere; opt-out of sale records a withdrawal of ``sale_sharing``;
    rectification records ``outcome`` (required: what the staff corrected on the contact). A
    request whose address matches no contact is completed as "no data held". ``outcome``, when
    given, is recorded instead of the default one. Raises ValidationError when the request is
    not confirmed or is closed, or names ``outcome`` when a rectification lacks one."""
    outcome = (outcome or "").strip()
    with org_context(request.org), transaction.atomic():
        request = _locked(request)
        if request.status == RequestStatus.UNVERIFIED:
            raise ValidationError(
                f"Request #{request.pk} is not confirmed yet: the person has not followed the link sent to "
                f"{request.email}. Send it again, or reject the request."
            )
        _refuse_unless(request, RequestStatus.OPEN, doing="completed")
        if request.kind == RequestKind.RECTIFICATION and not outcome:
            raise ValidationError({"outcome": "Say what was corrected (correct the contact first)."})
        done, told = COMPLETIONS[RequestKind(request.kind)](request, by)
        request.status, request.completed_at, request.handled_by = RequestStatus.COMPLETED, timezone.now(), by
        request.outcome = outcome or done
        request.save(update_fields=["status", "completed_at", "handled_by", "outcome", "archive_path"])
        fields = ("status", "outcome", *(("archive_path",) if request.archive_path else ()))
        audit_record(org=request.org, verb=Verb.CHANGED, target=request, fields=fields, actor=by)
        if told:
            _tell_person(
                request, step="completed", subject=f"Your request to {request.org.name} is answered", text=told
            )
    logger.info(
        "dsar completed org=%s request=%s kind=%s by=%s", request.org.slug, request.pk, request.kind, by and by.pk
    )
    return request


def _archives_delete(requests) -> int:
    """Deletes the stored archives of ``requests`` and forgets their paths (their links then
    answer "expired"). Returns how many were deleted."""
    deleted = 0
    for pk, path in list(requests.values_list("pk", "archive_path")):
        default_storage.delete(path)  # a file already gone is not an error
        deleted += DataSubjectRequest.objects.filter(pk=pk, archive_path=path).update(archive_path="")
    return deleted


def request_archives_expire(*, now: datetime | None = None) -> int:
    """Deletes the archives of access and portability requests whose download link has expired
    (completed more than ``DSAR_DOWNLOAD_MAX_AGE_DAYS`` ago): a copy of someone's data is kept no
    longer than it can be fetched. Returns how many were deleted. Beat runs it daily."""
    now = now or timezone.now()
    expired = (
        DataSubjectRequest.objects.with_scopes_disabled()
        .using(system_alias())
        .exclude(archive_path="")
        .filter(completed_at__lt=now - _download_max_age())
    )
    by_org: dict[int, list[int]] = {}
    for org_id, pk in expired.values_list("org_id", "pk"):
        by_org.setdefault(org_id, []).append(pk)
    deleted = 0
    for org in Organization.objects.filter(pk__in=by_org).order_by("pk"):
        with org_context(org):
            count = _archives_delete(DataSubjectRequest.objects.filter(org=org, pk__in=by_org[org.pk]))
        deleted += count
        logger.info("dsar archives expired org=%s deleted=%s", org.slug, count)
    return deleted


# --- reminders and overdue alerts --------------------------------------------------------------


def _staff_addresses(org: Organization) -> list[tuple[User, str]]:
    """The org's compliance members with an address, or its admins when it has none."""
    members = Membership.objects.filter(org=org).select_related("user").order_by("user_id")
    for role in (Role.COMPLIANCE, Role.ADMIN):
        found = [(m.user, m.user.email) for m in members if m.role == role and m.user.email and m.user.is_active]
        if found:
            return found
    return []


def _claim(org: Organization, *, field: str, due, now: datetime) -> list[DataSubjectRequest]:
    """Marks the open requests ``due`` selects as told (``field`` = now) and returns them: a
    second run, or a second worker, finds them marked and tells no one twice."""
    batch = list(
        DataSubjectRequest.objects.filter(org=org, status=RequestStatus.OPEN, **{f"{field}__isnull": True})
        .filter(due)
        .order_by("due_at", "pk")
        .select_for_update(skip_locked=True)
    )
    DataSubjectRequest.objects.filter(pk__in=[r.pk for r in batch]).update(**{field: now})
    return batch


def _days(n: int) -> str:
    return f"{n} day{'' if n == 1 else 's'}"


def _line(request: DataSubjectRequest, now: datetime) -> str:
    if request.due_at <= now:
        late = (now - request.due_at).days
        when = f"overdue by {_days(late)}" if late else "overdue since today"
    else:
        when = f"due in {_days((request.due_at - now).days)}"
    return f"- #{request.pk} {request.get_kind_display()} from {request.email}: {when} ({request.due_at:%d %b %Y})"


def requests_remind(*, now: datetime | None = None) -> int:
    """Tells each org's compliance members (its admins when it has none), once per request, of
    the open requests due within seven days and of those past their deadline: one email a
    member per run, through the outbox. Returns the number of requests told about. Beat runs it
    daily; running it twice tells no one twice."""
    now = now or timezone.now()
    told = 0
    # A cross-org sweep: the orgs with something to say, then each org's work in its own context.
    pending = DataSubjectRequest.objects.with_scopes_disabled().using(system_alias()).filter(status=RequestStatus.OPEN)
    org_ids = pending.filter(
        Q(reminded_at__isnull=True, due_at__lte=now + REMIND_WITHIN)
        | Q(overdue_alerted_at__isnull=True, due_at__lte=now)
    ).values_list("org_id", flat=True)
    for org in Organization.objects.filter(pk__in=set(org_ids)).order_by("pk"):
        with org_context(org), transaction.atomic():
            overdue = _claim(org, field="overdue_alerted_at", due=Q(due_at__lte=now), now=now)
            soon = _claim(org, field="reminded_at", due=Q(due_at__gt=now, due_at__lte=now + REMIND_WITHIN), now=now)
            if not (overdue or soon):
                continue
            # An overdue request counts as reminded too: no "due soon" mail after the alert.
            DataSubjectRequest.objects.filter(pk__in=[r.pk for r in overdue], reminded_at__isnull=True).update(
                reminded_at=now
            )
            parts = []
            if overdue:
                parts.append("Past their deadline:\n" + "\n".join(_line(r, now) for r in overdue))
            if soon:
                parts.append("Due within seven days:\n" + "\n".join(_line(r, now) for r in soon))
            queue = f"{settings.SITE_URL}{reverse('admin:compliance_datasubjectrequest_changelist')}"
            text = "\n\n".join(parts) + f"\n\nThe queue: {queue}"
            subject = (
                f"{len(overdue)} data-subject request(s) overdue"
                if overdue
                else f"{len(soon)} data-subject request(s) due within seven days"
            )
            ids = ",".join(str(r.pk) for r in overdue + soon)
            for user, address in _staff_addresses(org):
                notice_send(
                    org=org,
                    to=address,
                    subject=f"{org.name}: {subject}",
                    text=text,
                    user=user,
                    key=f"dsar-remind:{org.pk}:{user.pk}:{now:%Y%m%d%H%M}:{ids}"[:180],
                )
            told += len(overdue) + len(soon)
            logger.info("dsar reminders org=%s overdue=%s soon=%s", org.slug, len(overdue), len(soon))
    return told
