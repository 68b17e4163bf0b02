"""Destinations: the named targets of Slack, webhook and social messages (``Destination``).

A message to a destination carries its slug as ``Message.to`` and is looked up again when it is
sent (``destination_for_message``), so rotating a URL or a secret applies to queued messages and
a removed or paused destination fails the message with a reason a person can read. The HTTP
calls go through ``workflows.outbound_http`` (the SSRF guard that pins the checked address);
``response_error`` maps their outcome onto the outbox's transient/permanent errors, the same way
for every destination-based provider.
"""

import logging
from urllib.parse import urlsplit

import httpx

from channels_app.models import Channel, Destination
from channels_app.providers import PermanentError, TransientError
from workflows import outbound_http

# Replies worth trying again: the receiver timed out waiting for us, is rate-limiting us, or broke.
TRANSIENT_STATUSES = {408, 429}
REASON_CHARS = 300  # of a receiver's error body kept in the message's reason
LABELS = {Channel.SLACK: "Slack", Channel.WEBHOOK: "webhook", Channel.SOCIAL: "social"}

logger = logging.getLogger(__name__)


def destination_problems(*, org, slug: str, channel: str) -> list[str]:
    """Why a workflow step cannot name ``slug`` as its ``channel`` destination (for ``check``)."""
    destination = Destination.objects.filter(org=org, slug=slug).first()
    if destination is None:
        return [f"destination: there is no destination “{slug}”."]
    if destination.channel != channel:
        found, wanted = LABELS.get(destination.channel, destination.channel), LABELS.get(channel, channel)
        return [f"destination: “{slug}” is a {found} destination, not a {wanted} one."]
    return []


def destination_for_message(message) -> Destination:
    """The active destination ``message`` goes to (org, channel and slug); raises PermanentError
    naming what is wrong when there is none."""
    destination = Destination.objects.filter(org=message.org, channel=message.channel, slug=message.to).first()
    if destination is None:
        raise PermanentError(
            f"destination: there is no {LABELS.get(message.channel, message.channel)} destination “{message.to}”."
        )
    if not destination.active:
        raise PermanentError(f"destination: “{message.to}” is inactive.")
    return destination


def destination_logged(destination: Destination, message) -> str | None:
    """Writes ``message`` to the log instead of sending it when ``destination`` has no URL (what the
    library makes: nothing leaves the system until someone gives it one); returns the provider id
    then, else None."""
    if destination.url:
        return None
    logger.info(
        "destination message logged channel=%s destination=%s key=%s content=%r",
        destination.channel,
        destination.slug,
        message.idempotency_key,
        message.content,
    )
    return f"log:{message.idempotency_key}"


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a destination's URL (checked at save, without resolving it), or None."""
    return outbound_http.url_problem(url)


def destination_post(
    url: str, *, body: dict, idempotency_key: str, headers: dict[str, str] | None = None, secret: str = ""
) -> httpx.Response:
    """POSTs ``body`` as JSON through the SSRF guard; returns a 2xx response, else raises
    TransientError (network, 408, 429, 5xx) or PermanentError (refused URL, other 4xx)."""
    try:
        response = outbound_http.request(
            "POST", url, body=body, headers=headers or {}, idempotency_key=idempotency_key, secret=secret
        )
    except outbound_http.BlockedURLError as exc:
        raise PermanentError(f"url: {exc}") from exc
    except httpx.HTTPError as exc:
        raise TransientError(f"{type(exc).__name__}: {exc}") from exc
    error = response_error(response)
    if error is not None:
        raise error
    return response


def response_error(response: httpx.Response) -> Exception | None:
    """The outbox error a non-2xx reply stands for (None for 2xx)."""
    status = response.status_code
    if 200 <= status < 300:
        return None
    body = response.text[:REASON_CHARS].strip()
    text = f"HTTP {status}: {body}" if body else f"HTTP {status}"
    if status in TRANSIENT_STATUSES or status >= 500:
        return TransientError(text)
    return PermanentError(text)


def masked_url(url: str) -> str:
    """``scheme://host/…``: where a URL points, without the path that may hold its token."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        return "…" if url else ""
    rest = "/…" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{rest}"


def masked_secret(secret: str) -> str:
    """ "…" and the last four characters of a long secret (enough to tell two apart), "set" for a
    short one, "" for none."""
    if not secret:
        return ""
    return f"…{secret[-4:]}" if len(secret) >= 16 else "set"
