"""Signed links in messages: the open pixel, click redirects and unsubscribe.

Every link carries a token signed with ``SECRET_KEY`` (``django.core.signing``, a salt per kind),
so a click redirect only goes where the message's own link went (no open redirect) and an
unsubscribe link only acts for its own message. Absolute links start with ``SITE_URL``.
"""

from urllib.parse import quote

from django.conf import settings
from django.core import signing

OPEN, CLICK, UNSUBSCRIBE = "open", "click", "unsubscribe"
SALT = "channels_app.signed_links."


def token(kind: str, payload: dict) -> str:
    """A compact signed token for ``payload`` (``kind`` is part of the signature)."""
    return signing.dumps(payload, salt=SALT + kind, compress=True)


def read(kind: str, value: str) -> dict:
    """The payload of a token of ``kind``; raises ``signing.BadSignature`` when forged or altered."""
    return signing.loads(value, salt=SALT + kind)


def absolute(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def open_url(message_id: int) -> str:
    """The tracking pixel of a message."""
    return absolute(f"/m/o/{token(OPEN, {'m': message_id})}.gif")


def click_url(message_id: int, url: str) -> str:
    """A redirect to ``url`` that records the click (the target is inside the signed token)."""
    return absolute(f"/m/c/{quote(token(CLICK, {'m': message_id, 'u': url}), safe='')}")


def unsubscribe_url(message_id: int) -> str:
    """The unsubscribe page (GET) and RFC 8058 one-click endpoint (POST) of a message."""
    return absolute(f"/m/u/{token(UNSUBSCRIBE, {'m': message_id})}")
