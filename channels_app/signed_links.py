"""Signed links in messages: the open pixel, click redirects and unsubscribe.

Every link carries a token signed with ``SECRET_KEY`` (``django.core.signing``, a salt per kind),
so a click redirect only goes where the message's own link went (no open redirect) and an
unsubscribe link only acts for its own message. Absolute links start with ``SITE_URL``.

Links in a preview (the console's preview, a test send) belong to no message. They are signed
with a salt of their own (``preview=True``), so no endpoint reads them as a live link: they land
on a notice that says they come from a preview and record, redirect and unsubscribe nothing.
"""

from urllib.parse import quote

from django.conf import settings
from django.core import signing

OPEN, CLICK, UNSUBSCRIBE = "open", "click", "unsubscribe"
SALT = "channels_app.signed_links."
PREVIEW_SALT = SALT + "preview."


def token(kind: str, payload: dict, *, preview: bool = False) -> str:
    """A compact signed token for ``payload`` (``kind``, and whether it is a preview's, are part
    of the signature)."""
    return signing.dumps(payload, salt=(PREVIEW_SALT if preview else SALT) + kind, compress=True)


def read(kind: str, value: str) -> dict:
    """The payload of a live token of ``kind``; raises ``signing.BadSignature`` when forged,
    altered, or a preview's."""
    return signing.loads(value, salt=SALT + kind)


def preview_read(kind: str, value: str) -> dict | None:
    """The payload of a preview's token of ``kind``, or None when ``value`` is no such token."""
    try:
        payload = signing.loads(value, salt=PREVIEW_SALT + kind)
    except signing.BadSignature:
        return None
    return payload if isinstance(payload, dict) else None


def absolute(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def open_url(message_id: int, *, preview: bool = False) -> str:
    """The tracking pixel of a message (``preview``: a pixel that records nothing)."""
    return absolute(f"/m/o/{token(OPEN, {'m': message_id}, preview=preview)}.gif")


def click_url(message_id: int, url: str, *, preview: bool = False) -> str:
    """A redirect to ``url`` that records the click (the target is inside the signed token);
    ``preview``: a notice naming ``url`` instead, recording nothing."""
    return absolute(f"/m/c/{quote(token(CLICK, {'m': message_id, 'u': url}, preview=preview), safe='')}")


def unsubscribe_url(message_id: int, *, preview: bool = False) -> str:
    """The unsubscribe page (GET) and RFC 8058 one-click endpoint (POST) of a message
    (``preview``: a notice that unsubscribes no one)."""
    return absolute(f"/m/u/{token(UNSUBSCRIBE, {'m': message_id}, preview=preview)}")
