"""API keys: ``mk_<8-char id>_<secret>``, stored as the id plus SHA-256 of the secret.

Keys are random, so a slow password hash would buy nothing and cost ~0.5 s a request; the
comparison is constant-time.
"""

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.utils import timezone

PREFIX_LENGTH = 8
LAST_USED_RESOLUTION = timedelta(minutes=1)


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

    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != "mk" or len(parts[1]) != PREFIX_LENGTH or not parts[2]:
        return None, "Malformed API key: expected mk_<id>_<secret>."
    key = ApiKey.objects.with_scopes_disabled().select_related("org").filter(prefix=parts[1]).first()
    if key is None or not hmac.compare_digest(key.secret_hash, secret_hash(parts[2])):
        return None, "Invalid API key."
    if key.revoked_at is not None:
        return None, "This API key has been revoked."
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        # At most one write a minute per key, not one per request.
        ApiKey.objects.with_scopes_disabled().filter(pk=key.pk).update(last_used_at=now)
    return key, None
