"""Email through Django's email backend (SMTP by default; ESPs through django-anymail backends).

The dedup token is the ``Message-ID``, built from the message's idempotency key, so a message
sent again after a sender died carries the same Message-ID (docs/workflows.md). Marketing email
carries RFC 8058 one-click ``List-Unsubscribe`` headers.
"""

import contextlib
import re
import smtplib
from email.utils import formataddr

from anymail.exceptions import AnymailError, AnymailRecipientsRefused
from django.conf import settings
from django.core.mail import BadHeaderError, EmailMultiAlternatives, get_connection
from django.core.mail.utils import DNS_NAME

from channels_app import signed_links
from channels_app.providers import PermanentError, Provider, TransientError, provider

# RFC 3463 enhanced codes of a bad destination (5.1.x) or a disabled mailbox (5.2.1); a 550 with
# another enhanced code (5.7.1 policy) is a refusal of this message, not of the address.
HARD_BOUNCE_ENHANCED = re.compile(r"^5\.(1\.\d+|2\.1)\b")
ENHANCED = re.compile(r"^\d\.\d{1,3}\.\d{1,3}\b")
HARD_BOUNCE_CODES = {550, 551, 553}
# Seconds an SMTP exchange may take when EMAIL_TIMEOUT is unset: well inside the outbox lease
# (60 s), so a hung server does not make a second sender take over while the first still waits.
DEFAULT_TIMEOUT_S = 30
# What may stay as is in the left part of a Message-ID (RFC 5322 atext without "=", which
# escapes the rest, so two keys never map to one Message-ID).
_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+/?^_`{|}~-]")


def sender(org) -> tuple[str, str]:
    """(From header, bare address): the org's sender, else ``DEFAULT_FROM_EMAIL``."""
    address = org.from_email or settings.DEFAULT_FROM_EMAIL
    return (formataddr((org.from_name, address)) if org.from_name else address), address


def message_id_for(key: str, from_address: str) -> str:
    """``<key@sending-domain>``, with characters a Message-ID cannot hold escaped as ``=XX``."""
    local = "".join(
        char if _ATEXT.fullmatch(char) else "".join(f"={byte:02X}" for byte in char.encode()) for char in key
    )
    domain = from_address.rpartition("@")[2].strip().lower() or DNS_NAME.get_fqdn()
    return f"<{local}@{domain}>"


def _is_hard_bounce(code: int, reply: str) -> bool:
    enhanced = ENHANCED.match(reply)
    if enhanced:
        return bool(HARD_BOUNCE_ENHANCED.match(reply))
    return code in HARD_BOUNCE_CODES


def _reply_text(reply) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


@provider
class DjangoEmail(Provider):
    """Sends through ``EMAIL_BACKEND``; 4xx replies and connection errors are transient, 5xx
    permanent, and a refused recipient (550 class) is a hard bounce."""

    name = "email"
    channel = "email"
    default_rate_per_s = 50

    def address(self, contact) -> str:
        return contact.email or ""

    def open_session(self):
        timeout = getattr(settings, "EMAIL_TIMEOUT", None) or DEFAULT_TIMEOUT_S
        return get_connection(fail_silently=False, timeout=timeout)

    def close_session(self, session) -> None:
        with contextlib.suppress(smtplib.SMTPException, OSError):  # a dead connection is closed already
            session.close()

    def send(self, message, session=None) -> str:
        from_header, from_address = sender(message.org)
        content = message.content or {}
        message_id = message_id_for(message.idempotency_key, from_address)
        headers = {"Message-ID": message_id}
        if message.purpose == "marketing":
            headers["List-Unsubscribe"] = f"<{signed_links.unsubscribe_url(message.pk)}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        subject = " ".join(str(content.get("subject", "")).split())  # no header injection by newline
        email = EmailMultiAlternatives(
            subject=subject,
            body=content.get("text") or "",
            from_email=from_header,
            to=[message.to],
            headers=headers,
            connection=session or self.open_session(),
        )
        if content.get("html"):
            email.attach_alternative(content["html"], "text/html")
        # Through an anymail backend, the ESP echoes it in tracking webhooks: a report that comes
        # before our own "sent" record still finds its message (channels_app.esp_tracking).
        email.metadata = {"message": str(message.pk)}
        try:
            if session is not None:
                session.open()  # once per batch: a no-op while the connection is open
            try:
                accepted = email.send(fail_silently=False)
            except smtplib.SMTPRecipientsRefused:
                raise  # smtplib reset the exchange: the connection serves the next message
            except Exception:
                if session is not None:
                    self.close_session(session)  # the next message of the batch reconnects
                raise
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            text = f"{code} {_reply_text(reply)}"
            if code >= 500:
                raise PermanentError(text, hard_bounce=_is_hard_bounce(code, _reply_text(reply))) from exc
            raise TransientError(text) from exc
        except smtplib.SMTPAuthenticationError as exc:  # our configuration, not this message
            raise TransientError(f"{exc.smtp_code} {_reply_text(exc.smtp_error)}") from exc
        except smtplib.SMTPResponseException as exc:  # sender refused, data refused, …
            text = f"{exc.smtp_code} {_reply_text(exc.smtp_error)}"
            raise (PermanentError(text) if exc.smtp_code >= 500 else TransientError(text)) from exc
        except (smtplib.SMTPException, OSError) as exc:  # disconnected, refused, timed out
            raise TransientError(f"{type(exc).__name__}: {exc}") from exc
        except AnymailRecipientsRefused as exc:  # the ESP refused the only recipient
            statuses = getattr(getattr(email, "anymail_status", None), "recipients", {}) or {}
            reasons = {getattr(status, "status", "") for status in statuses.values()}
            raise PermanentError(
                f"the ESP refused the recipient: {exc}", hard_bounce=bool(reasons & {"invalid", "rejected"})
            ) from exc
        except AnymailError as exc:  # an ESP's API error or timeout: its own retries are done
            raise TransientError(f"{type(exc).__name__}: {exc}") from exc
        except (BadHeaderError, ValueError) as exc:
            raise PermanentError(f"the message cannot be sent: {exc}") from exc
        if not accepted:
            raise TransientError("the email backend did not accept the message")
        status = getattr(email, "anymail_status", None)  # an ESP's own id, when sent through anymail
        esp_id = getattr(status, "message_id", None)
        return message_id if esp_id is None else esp_id
