"""SMS through Twilio's Messages API (the ``twilio`` client).

Settings (from the environment, see marketing/settings.py): ``TWILIO_ACCOUNT_SID`` and
``TWILIO_AUTH_TOKEN``, ``TWILIO_FROM`` (a number in E.164, an alphanumeric sender ID, or a
Messaging Service SID ``MG…``, which Twilio then picks a sender for), and ``TWILIO_API_URL``
(Twilio's own by default; tests point it at a loopback fake).

Delivery protocol (docs/workflows.md): Twilio's message create takes no idempotency key, so nothing
on Twilio's side can drop a second copy, and ``message.idempotency_key`` goes nowhere. Delivery is
at least once: a duplicate SMS happens only when a sender dies (or its HTTP call times out) after
Twilio accepted the message and before the outbox recorded ``sent``; the row is then sent again
when its lease expires. Both copies report to the same status callback, which names our message.

Each message carries a ``StatusCallback`` URL under ``SITE_URL`` with a token signed for that
message (``django.core.signing``, a salt of this module), read by
``channels_app.sms_webhooks.status_callback``, which also checks Twilio's own request signature.

Errors: HTTP 429, 5xx and connection errors are transient (tried again after a backoff); 401/403
too, as with SMTP authentication: they say our credentials are wrong, not this message, and an
operator's fix lets the queued messages through. Other 4xx are permanent; Twilio's codes for a
number that cannot receive SMS (21211 invalid ``To``, 21614 not a mobile number) are hard bounces
(the outbox suppresses the number). 21610 means the recipient replied STOP to our sender: the
right suppression is ``sms_stop`` (blocks transactional messages too, and START lifts it), so this
module records it itself and fails the message without a hard bounce.
"""

import logging
from urllib.parse import urlsplit, urlunsplit

import phonenumbers
from django.conf import settings
from django.core import signing
from requests.exceptions import RequestException
from twilio.base.exceptions import TwilioException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from channels_app.providers import PermanentError, Provider, TransientError, provider

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.twilio.com"
# Seconds one API call may take: well inside the outbox's 60 s send lease.
DEFAULT_TIMEOUT_S = 30
STATUS_SALT = "channels_app.providers.sms.status"
STATUS_PATH = "/m/sms/status/"
INBOUND_PATH = "/m/sms/inbound"

# Twilio error codes (https://www.twilio.com/docs/api/errors) of a number that cannot get SMS.
INVALID_TO, NOT_MOBILE, UNSUBSCRIBED = 21211, 21614, 21610
HARD_BOUNCE_CODES = {INVALID_TO, NOT_MOBILE}
# The same in a status callback's ErrorCode: 30005 unknown handset, 30006 landline or unreachable
# carrier. 30003 (handset off or out of coverage) and 30008 (unknown error) may pass: not hard.
CALLBACK_HARD_BOUNCE_CODES = HARD_BOUNCE_CODES | {30005, 30006}


class ApiUrlHttpClient(TwilioHttpClient):
    """The twilio HTTP client with the API's scheme and host replaced by ``base_url`` (a test's
    loopback fake Twilio, or a proxy in front of Twilio). Paths and queries are kept."""

    def __init__(self, base_url: str, **kwargs):
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/")

    def request(self, method, url, *args, **kwargs):
        base, parts = urlsplit(self.base_url), urlsplit(url)
        url = urlunsplit((base.scheme, base.netloc, base.path + parts.path, parts.query, parts.fragment))
        return super().request(method, url, *args, **kwargs)


def status_callback_url(message_id: int) -> str:
    """The absolute URL Twilio reports the message's delivery to (the token names the message)."""
    token = signing.dumps({"m": message_id}, salt=STATUS_SALT, compress=True)
    return f"{settings.SITE_URL}{STATUS_PATH}{token}"


def status_token_read(token: str) -> int | None:
    """The message id a status callback token was signed for; None when forged or altered."""
    try:
        payload = signing.loads(token, salt=STATUS_SALT)
    except signing.BadSignature:
        return None
    message_id = payload.get("m") if isinstance(payload, dict) else None
    return message_id if isinstance(message_id, int) and message_id > 0 else None


def twilio_client() -> Client:
    """A Twilio client from the settings; raises ``PermanentError`` naming what is missing."""
    missing = [name for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM") if not _setting(name)]
    if missing:
        names = ", ".join(missing[:-1]) + (" and " if len(missing) > 1 else "") + missing[-1]
        raise PermanentError(f"SMS is not configured: set {names} (Twilio's credentials and sender).")
    api_url = _setting("TWILIO_API_URL") or DEFAULT_API_URL
    http_client = (
        TwilioHttpClient(timeout=DEFAULT_TIMEOUT_S)
        if api_url.rstrip("/") == DEFAULT_API_URL  # Twilio's own: TWILIO_REGION / TWILIO_EDGE still apply
        else ApiUrlHttpClient(api_url, timeout=DEFAULT_TIMEOUT_S)
    )
    return Client(_setting("TWILIO_ACCOUNT_SID"), _setting("TWILIO_AUTH_TOKEN"), http_client=http_client)


def _setting(name: str) -> str:
    return str(getattr(settings, name, "") or "").strip()


def _sender() -> dict:
    sender = _setting("TWILIO_FROM")
    if sender.startswith("MG") and len(sender) == 34:
        return {"messaging_service_sid": sender}
    return {"from_": sender}


def _e164(phone: str) -> str:
    """``phone`` when it is a valid E.164 number (as ``marketing.phone_numbers`` stores them)."""
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return ""
    if not phonenumbers.is_valid_number(number):
        return ""
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def stop_suppress(message, reason: str) -> None:
    """Suppresses the message's number for SMS: its owner replied STOP (Twilio error 21610)."""
    from channels_app.models import Suppression

    Suppression.objects.get_or_create(
        org=message.org,
        channel=message.channel,
        address=Suppression.address_of(message.to),
        defaults={"reason": Suppression.Reason.SMS_STOP, "detail": reason[:1000]},
    )


@provider
class TwilioSMS(Provider):
    """Sends text messages through Twilio (see the module docstring for settings and errors)."""

    name = "twilio"
    channel = "sms"
    default_rate_per_s = 10

    def address(self, contact) -> str:
        return _e164(contact.phone) if contact.phone else ""

    def open_session(self):
        try:
            return twilio_client()  # one pooled HTTPS connection for the batch
        except PermanentError:
            return None  # each send reports the missing settings itself

    def close_session(self, session) -> None:
        http_session = getattr(getattr(session, "http_client", None), "session", None)
        if http_session is not None:
            http_session.close()

    def send(self, message, session=None) -> str:
        body = str((message.content or {}).get("text") or "")
        if not body.strip():
            raise PermanentError("the message has no text")
        client = session or twilio_client()
        try:
            created = client.messages.create(
                to=message.to,
                body=body,
                status_callback=status_callback_url(message.pk),
                **_sender(),
            )
        except TwilioException as exc:
            raise _error(exc, message) from exc
        except RequestException as exc:  # refused, reset, timed out (Twilio may have accepted it)
            raise TransientError(f"Twilio unreachable: {type(exc).__name__}: {exc}") from exc
        finally:
            if session is None:
                self.close_session(client)  # a client of its own: no connection left behind
        if not created.sid:
            raise TransientError("Twilio answered without a message SID")
        return created.sid


def _error(exc: TwilioException, message) -> Exception:
    """The outbox's error for a failed API call (a TwilioRestException or TwilioServiceException,
    both with ``status`` and ``code``; anything else is the client's own refusal)."""
    status = getattr(exc, "status", None)
    code = getattr(exc, "code", None)
    detail = getattr(exc, "msg", "") or getattr(exc, "detail", "") or getattr(exc, "title", "") or ""
    text = f"Twilio {status} error {code}: {detail}".strip() if status else f"Twilio client error: {exc}"
    if not isinstance(status, int):
        return PermanentError(text)
    if status == 429 or status >= 500 or status in (401, 403):
        return TransientError(text)
    if code == UNSUBSCRIBED:
        stop_suppress(message, text)
        return PermanentError(f"{text} (the recipient replied STOP)")
    return PermanentError(text, hard_bounce=code in HARD_BOUNCE_CODES)
