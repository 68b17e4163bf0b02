"""Erased identities: the emails, phones and user ids erased at the person's request, kept as
keyed hashes.

After an erasure nothing readable of the person may stay, yet the product must recognise them
when their address or their user id (Segment's ``userId``, the contact's ``external_id``) comes
back (an import, a form, an identify or track call) and refuse to store it. So
erasure keeps an HMAC-SHA256 of the normalised address under ``settings.ERASURE_HASH_KEY``: a
plain SHA-256 of an email can be reversed by hashing a list of known addresses; a keyed one
cannot without the key. The key is never rotated (old hashes must keep matching); new keys are
added in front and lookups try every one.
"""

import hashlib
import hmac

from django.conf import settings
from django.core.exceptions import ValidationError

from marketing.email_addresses import normalise_email
from marketing.models import ErasedIdentity, Organization
from marketing.phone_numbers import normalise_phone

EMAIL = ErasedIdentity.Kind.EMAIL
PHONE = ErasedIdentity.Kind.PHONE
USER_ID = ErasedIdentity.Kind.USER_ID

# Why a server-side caller (a server key, an import, the console) gets nothing stored.
ERASED = "erased at the person's request (data-subject request)"
# What an import row error says.
NOT_IMPORTED = f"{ERASED}; not imported"
# What a public caller (a write key in a web page, a form) is told: nothing that confirms the
# person was ever known to the organisation.
NOT_STORED = "not stored"


def refusal(*, public: bool) -> str:
    """What a caller is told when it named an erased email or phone."""
    return NOT_STORED if public else f"{ERASED}; not stored"


def normalised(kind: str, value: str, *, default_country: str | None = None) -> str:
    """The form a value is hashed in: emails as stored (lower-cased), phones as E.164, user ids
    as given (stripped). A value that does not parse is hashed stripped (and lower-cased), so the
    same text always gives one hash."""
    value = (value or "").strip()
    if kind == USER_ID:
        return value
    try:
        if kind == EMAIL:
            return normalise_email(value)
        return normalise_phone(value, default_country=default_country)
    except ValidationError:
        return value.lower() if kind == EMAIL else value


def digest(kind: str, value: str, *, key: str | None = None, default_country: str | None = None) -> str:
    """The keyed hash of a value (HMAC-SHA256, hex) under ``key``, by default the newest key."""
    key = key or settings.ERASURE_HASH_KEY[0]
    message = f"{kind}:{normalised(kind, value, default_country=default_country)}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def digests(kind: str, value: str, *, default_country: str | None = None) -> list[str]:
    """The value's hash under every key, newest first: what a lookup compares with."""
    return [digest(kind, value, key=key, default_country=default_country) for key in settings.ERASURE_HASH_KEY]


def is_erased(*, org: Organization, kind: str, value: str | None) -> bool:
    """Whether this email, phone or user id was erased in the org (one indexed query; False for an empty value)."""
    if not value or not str(value).strip():
        return False
    hashes = digests(kind, value, default_country=org.default_country)
    return ErasedIdentity.objects.with_scopes_disabled().filter(org=org, kind=kind, digest__in=hashes).exists()


def erased_values(*, org: Organization, kind: str, values) -> set[str]:
    """Which of these values (emails, E.164 phones or user ids) were erased in the org: one query
    for a batch."""
    by_hash = {}
    for value in {str(v) for v in values if v}:
        for hashed in digests(kind, value, default_country=org.default_country):
            by_hash[hashed] = value
    if not by_hash:
        return set()
    found = ErasedIdentity.objects.with_scopes_disabled().filter(org=org, kind=kind, digest__in=list(by_hash))
    return {by_hash[hashed] for hashed in found.values_list("digest", flat=True)}


def erased_emails(*, org: Organization, emails) -> set[str]:
    """Which of these emails were erased in the org: one query for a batch."""
    return erased_values(org=org, kind=EMAIL, values=emails)


def erased_field(
    *, org: Organization, email: str | None = None, phone: str | None = None, user_id: str | None = None
) -> str | None:
    """ "email", "phone" or "user_id" when that value was erased in the org (in that order), else None."""
    if email and is_erased(org=org, kind=EMAIL, value=email):
        return "email"
    if phone and is_erased(org=org, kind=PHONE, value=phone):
        return "phone"
    if user_id and is_erased(org=org, kind=USER_ID, value=user_id):
        return "user_id"
    return None


def record(*, org: Organization, kind: str, value: str) -> ErasedIdentity:
    """Records an erased email, phone or user id (under the newest key); recording it twice is harmless."""
    identity, _ = ErasedIdentity.objects.with_scopes_disabled().get_or_create(
        org=org, kind=kind, digest=digest(kind, value, default_country=org.default_country)
    )
    return identity
