"""The client's network address, as far as this deployment can vouch for it.

``X-Forwarded-For`` is a list each proxy appends to: ``client, proxy1, proxy2``. Only the entries
added by proxies we run can be trusted; anything to their left was written by the client and may
be forged. So the address is counted from the right: with ``TRUSTED_PROXY_COUNT = N`` (the number
of reverse proxies in front of the app), it is the N-th entry from the right. With the default 0
there is no trusted proxy and the address is the socket's peer (``REMOTE_ADDR``), whatever the
header says.

Rate limits, consent proofs, login throttling (django-axes) and logs all use ``client_ip``.
"""

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _valid(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str:
    """The client's address: the ``TRUSTED_PROXY_COUNT``-th ``X-Forwarded-For`` entry from the
    right, or the socket's peer when no proxy is trusted (or the header is shorter than that)."""
    peer = request.META.get("REMOTE_ADDR", "") or ""
    trusted = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0) or 0)
    if trusted <= 0:
        return peer
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if len(forwarded) < trusted:
        return peer  # the header did not pass through every proxy we run: it is the client's own
    return _valid(forwarded[-trusted]) or peer
