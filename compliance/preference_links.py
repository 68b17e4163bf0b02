"""The signed link to a contact's preference centre, put in every marketing message.

The token names the org, the contact and the message it came in (or none), signed with
``SECRET_KEY`` and a salt of its own, so it opens one contact's centre and nothing else, and an
altered one opens nothing. It carries the time it was signed: after
``PREFERENCE_LINK_MAX_AGE_DAYS`` it has expired (a newer message carries a fresh one; the
message's own unsubscribe link always works and leads to a fresh one).

A preview's link (the console's preview, a dry run) is signed with a salt of its own: the centre
it opens shows the page, says it comes from a preview, and changes nothing.
"""

from datetime import timedelta
from typing import NamedTuple

from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT = "compliance.preference_links"
PREVIEW_SALT = SALT + ".preview"


class PreferenceLinkError(Exception):
    """A preference link that cannot be used; ``reason`` is ``broken`` or ``expired``."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class PreferenceLink(NamedTuple):
    """What a preference link names: the org, the contact, the message it came in (None when
    none) and whether it is a preview's."""

    org_id: int
    contact_id: int
    message_id: int | None
    preview: bool


def max_age() -> timedelta:
    return timedelta(days=settings.PREFERENCE_LINK_MAX_AGE_DAYS)


def preference_token(*, org_id: int, contact_id: int, message_id: int | None = None, preview: bool = False) -> str:
    """A compact signed token for one contact's centre (``preview``: one that changes nothing)."""
    payload = {"o": org_id, "c": contact_id, "m": message_id}
    return signing.dumps(payload, salt=PREVIEW_SALT if preview else SALT, compress=True)


def preference_url(*, org_id: int, contact_id: int, message_id: int | None = None, preview: bool = False) -> str:
    """The absolute URL of one contact's preference centre (``SITE_URL`` first)."""
    token = preference_token(org_id=org_id, contact_id=contact_id, message_id=message_id, preview=preview)
    return f"{settings.SITE_URL}{reverse('compliance:preferences', args=[token])}"


def preference_url_prefix() -> str:
    """What every preference link starts with: the rendering leaves such links untracked."""
    return f"{settings.SITE_URL}{reverse('compliance:preferences', args=['x'])[:-2]}"


def preference_link_read(token: str) -> PreferenceLink:
    """What ``token`` names; raises ``PreferenceLinkError`` ("broken": forged, altered or not a
    preference token; "expired": older than ``PREFERENCE_LINK_MAX_AGE_DAYS``)."""
    for salt, preview in ((SALT, False), (PREVIEW_SALT, True)):
        try:
            payload = signing.loads(token, salt=salt, max_age=max_age())
        except signing.SignatureExpired:
            raise PreferenceLinkError("expired") from None
        except signing.BadSignature:
            continue
        if not isinstance(payload, dict):
            break
        org_id, contact_id, message_id = payload.get("o"), payload.get("c"), payload.get("m")
        if not isinstance(org_id, int) or not isinstance(contact_id, int):
            break
        return PreferenceLink(org_id, contact_id, message_id if isinstance(message_id, int) else None, preview)
    raise PreferenceLinkError("broken")
