"""API keys: ``mk_<8-char id>_<secret>``, stored as the id plus SHA-256 of the secret.

Keys are random, so a slow password hash would buy nothing and cost ~0.5 s a request; the
comparison is constant-time.
"""

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from django.utils import timezone

from marketing.database_roles import system_alias

PREFIX_LENGTH = 8
LAST_USED_RESOLUTION = timedelta(minutes=1)
# What ``new_key_parts`` makes: anything else (a NUL, a surrogate, a space) is malformed before it
# reaches the database or the hash.
KEY_FORMAT = re.compile(rf"mk_([a-z0-9]{{{PREFIX_LENGTH}}})_([A-Za-z0-9_-]{{1,200}})")


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key_parts() -> tuple[str, str]:
    """A fresh (prefix, secret) pair; the prefix is lower-case letters and digits."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    prefix = "".join(secrets.choice(alphabet) for _ in range(PREFIX_LENGTH))
    return prefix, secrets.token_urlsafe(32)


def api_key_from_header(header: str):
    """Returns (ApiKey, None) for a valid ``Bearer`` header, else (None, a reason to show)."""
    token = header.split(None, 1)[1].strip() if " " in header.strip() else ""
    return api_key_from_token(token)


def api_key_from_token(token: str):
    """Returns (ApiKey, None) for a valid raw key, else (None, a reason to show)."""
    from marketing.models import ApiKey

    match = KEY_FORMAT.fullmatch(token) if isinstance(token, str) else None
    if match is None:
        return None, "Malformed API key: expected mk_<id>_<secret>."
    prefix, secret = match.groups()
    key = (
        ApiKey.objects.with_scopes_disabled().using(system_alias()).select_related("org").filter(prefix=prefix).first()
    )
    if key is None or not hmac.compare_digest(key.secret_hash, secret_hash(secret)):
        return None, "Invalid API key."
    if key.revoked_at is not None:
        return None, "This API key has been revoked."
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        # At most one write a minute per key, not one per request.
        ApiKey.objects.with_scopes_disabled().using(system_alias()).filter(pk=key.pk).update(last_used_at=now)
    return key, None
