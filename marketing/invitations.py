"""Inviting teammates by email: an org admin names an address and a role, the person gets a signed,
expiring link, and following it makes them a member (a new account with a name and a password, or
their existing account after they sign in).

The link carries the invitation's id signed with ``SECRET_KEY`` under this module's salt and its
signing time; it works for ``INVITATION_MAX_AGE_DAYS`` after it was sent, once. The email goes
through the outbox as a notice (``marketing.notices``): transactional, no contact, consent
skipped, suppression not. An org sends at most ``INVITATIONS_PER_ORG_PER_DAY`` invitations in
24 hours (those sent or resent in that time, each once), and one invitation is resent at most once
every ten minutes.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from marketing.database_roles import system_alias
from marketing.email_addresses import normalise_email
from marketing.models import Invitation, Membership, Organization, Role, User
from marketing.notices import notice_send
from marketing.tenancy import org_context

logger = logging.getLogger(__name__)

SALT = "marketing.invitations"
RESEND_INTERVAL = timedelta(minutes=10)
DAY = timedelta(hours=24)


class InvitationUnusableError(Exception):
    """The link cannot be used; ``reason`` is one of: invalid, expired, revoked, accepted."""

    def __init__(self, reason: str, invitation: Invitation | None = None):
        super().__init__(reason)
        self.reason, self.invitation = reason, invitation


def max_age() -> timedelta:
    return timedelta(days=settings.INVITATION_MAX_AGE_DAYS)


def invitation_token(invitation: Invitation) -> str:
    """The signed token of the invitation's link (its id and send number, timestamped)."""
    return signing.dumps({"i": invitation.pk, "s": invitation.sends}, salt=SALT, compress=True)


def invitation_url(invitation: Invitation) -> str:
    return f"{settings.SITE_URL}{reverse('invitation-accept', args=[invitation_token(invitation)])}"


def _user_with_email(email: str) -> User | None:
    return User.objects.filter(email__iexact=email, is_active=True).order_by("pk").first()


def _sends_today(org: Organization, now) -> int:
    """Invitations the org sent or resent in the last 24 hours (each counted once, by its newest send)."""
    return Invitation.objects.filter(org=org, sent_at__gt=now - DAY).count()


def _check_daily_limit(org: Organization, now) -> None:
    limit = settings.INVITATIONS_PER_ORG_PER_DAY
    if _sends_today(org, now) >= limit:
        raise ValidationError(
            {
                "email": f"Your organisation has sent {limit} invitations in the last 24 hours, the most it may; "
                "try again tomorrow."
            }
        )


def _email(invitation: Invitation, *, by: User | None) -> None:
    """Queues the invitation's email (after commit, through the outbox)."""
    org = invitation.org
    inviter = (by.get_full_name() or by.username) if by else "An administrator"
    days = settings.INVITATION_MAX_AGE_DAYS
    text = (
        f"{inviter} invited you to join {org.name} in the marketing console, as {invitation.get_role_display()}.\n\n"
        f"Accept the invitation here (the link works once, for {days} days):\n{invitation_url(invitation)}\n\n"
        "If you did not expect this email, you can ignore it: nothing happens until the link is followed."
    )
    notice_send(
        org=org,
        to=invitation.email,
        subject=f"{inviter} invited you to {org.name}",
        text=text,
        key=f"invitation:{invitation.pk}:{invitation.sends}",
        user=_user_with_email(invitation.email),
    )


def invitation_send(*, org: Organization, email: str, role: str, by: User | None, now=None) -> Invitation:
    """Invites ``email`` to ``org`` with ``role`` and emails the link. A pending invitation to the
    same address is replaced by this one (its role changed, a new link sent). Raises
    ValidationError naming the field: a bad address, someone already a member, an unknown role,
    or the org's daily limit reached."""
    now = now or timezone.now()
    try:
        email = normalise_email(email)
    except ValidationError as exc:
        raise ValidationError({"email": f"Check the address: {exc.messages[0]}"}) from None
    if role not in Role.values:
        raise ValidationError({"role": f"Choose one of: {', '.join(Role.labels)}."})
    with org_context(org), transaction.atomic():
        if Membership.objects.filter(org=org, user__email__iexact=email).exists():
            raise ValidationError(
                {"email": f"{email} is already a member of {org.name}; change their role on Members."}
            )
        _check_daily_limit(org, now)
        pending = Invitation.objects.select_for_update().filter(org=org, email=email, status="pending").first()
        fields = {"role": role, "invited_by": by, "sent_at": now, "expires_at": now + max_age()}
        try:
            with transaction.atomic():
                if pending is None:
                    invitation = Invitation.objects.create(org=org, email=email, created_at=now, sends=1, **fields)
                else:
                    invitation = pending
                    for name, value in {**fields, "sends": pending.sends + 1}.items():
                        setattr(invitation, name, value)
                    invitation.save()
        except IntegrityError:  # the same address invited at the same moment by someone else
            raise ValidationError(
                {"email": f"{email} was invited a moment ago; see the pending invitations."}
            ) from None
        _email(invitation, by=by)
    logger.info("invitation sent org=%s invitation=%s role=%s by=%s", org.slug, invitation.pk, role, by and by.pk)
    return invitation


def invitation_resend(*, org: Organization, invitation_id: int, by: User | None, now=None) -> Invitation:
    """Sends a pending invitation's email again with a fresh link (valid from now). Raises
    ValidationError when it is no longer pending, was sent under ten minutes ago, or the
    org's daily limit is reached."""
    now = now or timezone.now()
    with org_context(org), transaction.atomic():
        invitation = Invitation.objects.select_for_update().get(org=org, pk=invitation_id)
        if invitation.status != Invitation.Status.PENDING:
            raise ValidationError(f"The invitation to {invitation.email} is {invitation.get_status_display().lower()}.")
        if invitation.sent_at > now - RESEND_INTERVAL:
            raise ValidationError(f"The invitation to {invitation.email} was sent less than ten minutes ago.")
        _check_daily_limit(org, now)
        invitation.sent_at, invitation.expires_at, invitation.sends = now, now + max_age(), invitation.sends + 1
        invitation.save(update_fields=["sent_at", "expires_at", "sends"])
        _email(invitation, by=by)
    logger.info("invitation resent org=%s invitation=%s by=%s", org.slug, invitation.pk, by and by.pk)
    return invitation


def invitation_revoke(*, org: Organization, invitation_id: int, by: User | None, now=None) -> Invitation:
    """Revokes a pending invitation of ``org``: its links stop working. Another org's invitation
    is not found (Invitation.DoesNotExist); one no longer pending is left as it is."""
    now = now or timezone.now()
    with org_context(org), transaction.atomic():
        invitation = Invitation.objects.select_for_update().get(org=org, pk=invitation_id)
        if invitation.status == Invitation.Status.PENDING:
            invitation.status, invitation.ended_at = Invitation.Status.REVOKED, now
            invitation.save(update_fields=["status", "ended_at"])
            logger.info("invitation revoked org=%s invitation=%s by=%s", org.slug, invitation.pk, by and by.pk)
    return invitation


def invitation_for_token(token: str, *, now=None) -> Invitation:
    """The pending invitation a link's token names, or InvitationUnusableError saying why not (the
    token is forged or mangled, the link is older than its lifetime or than the newest resend's,
    or the invitation was revoked or accepted). A pending invitation found expired is marked so."""
    now = now or timezone.now()
    try:
        payload = signing.loads(token, salt=SALT, max_age=max_age())
    except signing.SignatureExpired:
        raise InvitationUnusableError("expired") from None
    except signing.BadSignature:
        raise InvitationUnusableError("invalid") from None
    try:
        invitation = (
            Invitation.objects.with_scopes_disabled().using(system_alias()).select_related("org").get(pk=payload["i"])
        )
    except (Invitation.DoesNotExist, KeyError, TypeError):
        raise InvitationUnusableError("invalid") from None
    if invitation.status == Invitation.Status.ACCEPTED:
        raise InvitationUnusableError("accepted", invitation)
    if invitation.status == Invitation.Status.REVOKED:
        raise InvitationUnusableError("revoked", invitation)
    expired = invitation.status == Invitation.Status.EXPIRED or invitation.expires_at <= now
    if expired and invitation.status == Invitation.Status.PENDING:
        Invitation.objects.with_scopes_disabled().using(system_alias()).filter(
            pk=invitation.pk, status="pending"
        ).update(status=Invitation.Status.EXPIRED, ended_at=now)
    if expired or payload.get("s") != invitation.sends:
        raise InvitationUnusableError("expired", invitation)  # an older link than the newest resend's, too
    return invitation


def invitation_accept(
    *, token: str, user: User | None = None, first_name: str = "", last_name: str = "", password: str = "", now=None
) -> Membership:
    """Accepts the invitation of ``token``: ``user`` (an existing account with the invited address,
    signed in) joins the org with the invited role; without ``user``, a new account is made with
    the address as its username, the name and the password (checked by Django's password
    validators; errors name the field). Raises InvitationUnusableError when the link cannot be used."""
    now = now or timezone.now()
    with transaction.atomic():
        invitation = invitation_for_token(token, now=now)
        org = invitation.org
        with org_context(org):
            claimed = Invitation.objects.filter(pk=invitation.pk, status="pending").update(
                status=Invitation.Status.ACCEPTED, ended_at=now
            )
            if claimed != 1:
                raise InvitationUnusableError("accepted", invitation)  # followed twice at the same moment
            if user is None:
                if _user_with_email(invitation.email) is not None:
                    raise ValidationError({"password": "An account with this address exists: sign in instead."})
                user = User(username=invitation.email, email=invitation.email)
                user.first_name, user.last_name = first_name.strip(), last_name.strip()
                if not user.first_name:
                    raise ValidationError({"first_name": "Say your first name, as your teammates will see it."})
                try:
                    validate_password(password, user)
                except ValidationError as exc:
                    raise ValidationError({"password": exc.messages}) from None
                user.set_password(password)
                user.save()
            elif user.email.lower() != invitation.email:
                raise ValidationError(f"This invitation is for {invitation.email}; you are signed in as {user.email}.")
            membership, _ = Membership.objects.get_or_create(org=org, user=user, defaults={"role": invitation.role})
            Invitation.objects.filter(pk=invitation.pk).update(accepted_by=user)
    logger.info("invitation accepted org=%s invitation=%s user=%s", org.slug, invitation.pk, user.pk)
    return membership
