"""Erased identities: the emails and phones erased at the person's request, kept as keyed hashes.

After an erasure nothing readable of the person may stay, yet the product must recognise them
when their address comes back (an import, a form, an identify call) and refuse to store it. So
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

# What a caller is told when a public (write-key) call named an erased identity: nothing that
# confirms the person was ever known.
NOT_STORED = "not stored"
# What a server-side caller (an import, the REST API) is told.
ERASED_REASON = "erased at the person's request (data-subject request); not imported"


def normalised(kind: str, value: str, *, default_country: str | None = None) -> str:
    """The form a value is hashed in: emails as stored (lower-cased), phones as E.164. A value that
    does not parse is hashed stripped (and lower-cased), so the same text always gives one hash."""
    value = (value or "").strip()
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
    """Whether this email or phone was erased in the org (one indexed query; False for an empty value)."""
    if not value or not str(value).strip():
        return False
    hashes = digests(kind, value, default_country=org.default_country)
    return ErasedIdentity.objects.with_scopes_disabled().filter(org=org, kind=kind, digest__in=hashes).exists()


def erased_emails(*, org: Organization, emails) -> set[str]:
    """Which of these (normalised) emails were erased in the org: one query for a batch."""
    by_hash = {}
    for email in {e for e in emails if e}:
        for value in digests(EMAIL, email):
            by_hash[value] = email
    if not by_hash:
        return set()
    found = ErasedIdentity.objects.with_scopes_disabled().filter(org=org, kind=EMAIL, digest__in=list(by_hash))
    return {by_hash[value] for value in found.values_list("digest", flat=True)}


def record(*, org: Organization, kind: str, value: str) -> ErasedIdentity:
    """Records an erased email or phone (under the newest key); recording it twice is harmless."""
    identity, _ = ErasedIdentity.objects.with_scopes_disabled().get_or_create(
        org=org, kind=kind, digest=digest(kind, value, default_country=org.default_country)
    )
    return identity
