"""What ESPs report about our email, through django-anymail's tracking webhooks.

Anymail's views (``/hooks/esp/<esp>/tracking/``, see docs/channels.md) check the webhook's
basic auth (``ANYMAIL["WEBHOOK_SECRET"]``) or signature, parse the ESP's payload and send one
normalised ``AnymailTrackingEvent`` per recipient on ``anymail.signals.tracking``.
``tracking_event_received`` turns each into a call of ``message_delivery_event``, the one service
for provider reports:

=================  ==========================================================================
anymail event      what we do
=================  ==========================================================================
delivered          ``delivered``
bounced            ``bounced``; the address is suppressed unless the ESP says the bounce is
                   temporary (``SOFT_BOUNCES``; anymail reports some soft bounces as
                   "bounced" too) or the MTA's reply is a 4xx
rejected, failed   ``failed``; a hard bounce when the ESP refused the address as invalid or
                   bounced before (``HARD_REJECTS``)
complained         ``complained`` (suppressed, email_marketing consent withdrawn)
unsubscribed       the email_marketing consent is withdrawn, as by our own unsubscribe link
                   (``tracking.unsubscribe_record``); the status does not change
opened, clicked    the status and history only (see ``tracking_event_received``); a machine's
                   open or click (``MACHINE_FLAGS``, or a scanner's or Apple's proxy's user
                   agent) only the history
anything else      logged and ignored (deferred: the ESP keeps trying and reports the end)
=================  ==========================================================================

The message is found by the id the email provider stored when it sent it (anymail's message id
through an anymail backend, else our ``<key@domain>`` Message-ID), with the recipient to choose
between rows that share an id; ``metadata["message"]`` (our pk) is the fallback for a report that
beats the sender's own ``sent``. A report for mail we did not send is logged and ignored: an ESP
account is often shared with other systems.

The request has no org: lookups use ``with_scopes_disabled()`` and the services run in the
message's org.
"""

import hashlib
import logging
import re

from anymail.signals import AnymailTrackingEvent, EventType, RejectReason, tracking
from django.conf import settings
from django.dispatch import receiver

from channels_app.delivery_events import message_delivery_event
from channels_app.models import Channel, Message, MessageStatus
from marketing.database_roles import system_alias

logger = logging.getLogger(__name__)

PROVIDER = "email"  # channels_app.providers.email.DjangoEmail.name: what the outbox stores
STATUSES = {
    EventType.DELIVERED: MessageStatus.DELIVERED,
    EventType.BOUNCED: MessageStatus.BOUNCED,
    EventType.REJECTED: MessageStatus.FAILED,
    EventType.FAILED: MessageStatus.FAILED,
    EventType.COMPLAINED: MessageStatus.COMPLAINED,
    EventType.OPENED: MessageStatus.OPENED,
    EventType.CLICKED: MessageStatus.CLICKED,
}
# Why an ESP refused to send that means the address itself is bad.
HARD_REJECTS = {RejectReason.INVALID, RejectReason.BOUNCED}
# A 4xx reply, or an RFC 3463 4.x.x code: the receiving server asked to try again later.
TEMPORARY_REPLY = re.compile(r"^\s*(smtp;\s*)?4\d\d\b|(^|\s)4\.\d{1,3}\.\d{1,3}\b")


def _sparkpost_event(raw: dict) -> dict:
    msys = raw.get("msys") if isinstance(raw, dict) else None
    return next(iter(msys.values()), {}) if isinstance(msys, dict) and msys else {}


# ESPs whose "bounced" also covers temporary failures, and how their raw event tells them apart
# (each returns True for a soft bounce). Keyed by anymail's esp_name.
SOFT_BOUNCES = {
    "Postmark": lambda raw: raw.get("Type") in {"SoftBounce", "VirusNotification"},
    "Brevo": lambda raw: raw.get("event") == "soft_bounce",
    "SendinBlue": lambda raw: raw.get("event") == "soft_bounce",
    "Mandrill": lambda raw: raw.get("event") == "soft_bounce",
    "MailerSend": lambda raw: (raw.get("data") or {}).get("type") == "activity.soft_bounced",
    "SendGrid": lambda raw: raw.get("type") == "blocked",  # a block, not a missing mailbox
    "Amazon SES": lambda raw: (raw.get("bounce") or {}).get("bounceType") in {"Transient", "Undetermined"},
    # SparkPost's bounce classes 10 (invalid recipient) and 30 (no RCPT) are its hard bounces.
    "SparkPost": lambda raw: str(_sparkpost_event(raw).get("bounce_class", "")) not in {"10", "30"},
}


# ESPs that flag machine opens and clicks themselves, and how their raw event says so (each returns
# True for a machine's). Keyed by anymail's esp_name.
MACHINE_FLAGS = {
    # SendGrid marks opens fetched by Apple Mail Privacy Protection's proxy.
    "SendGrid": lambda raw: raw.get("sg_machine_open") is True,
    # Mailgun's client-info.bot: "apple", "gmail" or "generic" (a scanner); empty for a person.
    "Mailgun": lambda raw: bool(((raw.get("event-data") or {}).get("client-info") or {}).get("bot")),
}


def _machine_reason(event: AnymailTrackingEvent, esp_name: str) -> str:
    """Why the ESP's open or click is a machine's ("" for a person's): the ESP's own flag, else
    the user agent it saw, read as our pixel reads it. No user agent says nothing here (many ESPs
    send none)."""
    from channels_app.tracking import agent_machine_reason

    if event.event_type not in (EventType.OPENED, EventType.CLICKED):
        return ""
    flag = MACHINE_FLAGS.get(esp_name)
    raw = event.esp_event if isinstance(event.esp_event, dict) else {}
    try:
        if flag and flag(raw):
            return f"{esp_name} flags it"
    except (AttributeError, TypeError):  # an unexpected payload shape: the user agent decides
        pass
    agent = event.user_agent if isinstance(event.user_agent, str) else ""
    return (agent.strip() and agent_machine_reason(agent)) or ""


def _hard_bounce(event: AnymailTrackingEvent, esp_name: str) -> bool:
    """Whether the report means the address cannot receive mail (so it is suppressed)."""
    if event.event_type in (EventType.REJECTED, EventType.FAILED):
        return event.reject_reason in HARD_REJECTS
    if event.event_type != EventType.BOUNCED:
        return False
    if TEMPORARY_REPLY.search(str(event.mta_response or "")):
        return False
    soft = SOFT_BOUNCES.get(esp_name)
    raw = event.esp_event if isinstance(event.esp_event, dict) else {}
    try:
        return not (soft and soft(raw))
    except (AttributeError, TypeError):  # an unexpected payload shape: trust anymail's "bounced"
        return True


def _event_key(event: AnymailTrackingEvent, esp_name: str) -> str:
    """The report's dedup id: the ESP's event id, else a digest of what identifies the report
    (many ESPs give no id to deliveries and opens; a webhook retried sends the same fields)."""
    prefix = esp_name.lower().replace(" ", "_")
    if event.event_id:
        return f"{prefix}:{event.event_id}"[:200]
    parts = [event.event_type, event.message_id, event.recipient, event.timestamp, event.click_url]
    digest = hashlib.sha256("\x1f".join(str(part or "") for part in parts).encode()).hexdigest()[:32]
    return f"{prefix}:{event.event_type}:{digest}"


def _reason(event: AnymailTrackingEvent, esp_name: str, *, machine: str = "") -> str:
    details = [str(item) for item in (event.description, event.mta_response) if item]
    if event.reject_reason:
        details.insert(0, f"reject reason {event.reject_reason}")
    what = f"{esp_name} {event.event_type}" + (f" (machine: {machine})" if machine else "")
    return what + (f": {'; '.join(details)}" if details else "")


def message_for_event(event: AnymailTrackingEvent) -> Message | None:
    """Our email message the ESP reports on, or None (mail we did not send, or not yet marked
    sent and without our ``metadata["message"]``)."""
    messages = Message.objects.with_scopes_disabled().using(system_alias()).select_related("org", "contact")
    recipient = (event.recipient or "").strip().lower()
    if event.message_id:
        # Our own Message-ID may come back with or without its angle brackets.
        given = str(event.message_id).strip()
        bare = given.strip("<>")
        found = list(
            messages.filter(provider=PROVIDER, provider_message_id__in={given, bare, f"<{bare}>"}).order_by("-pk")[:50]
        )
        if len(found) > 1 and recipient:
            # ESPs that send one id for a whole batch: the recipient tells the rows apart.
            found = [message for message in found if message.to.strip().lower() == recipient] or found
        if found:
            return found[0]
    pk = (event.metadata or {}).get("message") if isinstance(event.metadata, dict) else None
    if isinstance(pk, str) and pk.isdigit():
        pk = int(pk)
    if isinstance(pk, int) and not isinstance(pk, bool):
        message = messages.filter(pk=pk, channel=Channel.EMAIL).first()
        # Metadata is set by whoever sent through the account: it must name this recipient too.
        if message is not None and (not recipient or message.to.strip().lower() == recipient):
            return message
    return None


def _secret_required(view_class) -> bool:
    """Whether a request to this anymail view is only trustworthy with basic auth: True unless
    the view checks the ESP's signature (anymail's own ``warn_if_no_basic_auth`` says which)."""
    return getattr(view_class, "warn_if_no_basic_auth", True)


@receiver(tracking, dispatch_uid="channels_app.esp_tracking")
def tracking_event_received(sender, event: AnymailTrackingEvent, esp_name: str, **kwargs) -> None:
    """Records one ESP report on our message (the table in the module docstring).

    Opens and clicks from the ESP only move the status and append to the history: they are not
    recorded as ``email_opened``/``email_clicked`` events, because our own open pixel and click
    redirect are in every tracked email and record those already (one open per message, one click
    per link, machine opens and clicks as their own types). The ESP, when its own tracking is on,
    sees the same open or click; a second event would count it twice for scoring, segments and
    waits. A machine's open or click (``_machine_reason``) is kept in the history and moves
    nothing, as with our own pixel and redirect.

    Without ``ANYMAIL["WEBHOOK_SECRET"]`` anymail still answers a view that has no signature
    check; such a report could come from anyone, so it is ignored (and logged) rather than allowed
    to suppress addresses or withdraw consent."""
    if _secret_required(sender) and not getattr(settings, "ANYMAIL", {}).get("WEBHOOK_SECRET"):
        logger.warning("esp report ignored: ANYMAIL WEBHOOK_SECRET is not set esp=%s", esp_name)
        return
    if event.event_type not in STATUSES and event.event_type != EventType.UNSUBSCRIBED:
        logger.info("esp report ignored esp=%s type=%s message_id=%s", esp_name, event.event_type, event.message_id)
        return
    message = message_for_event(event)
    if message is None:
        logger.info(
            "esp report for an unknown message esp=%s type=%s message_id=%s",
            esp_name,
            event.event_type,
            event.message_id,
        )
        return
    key = _event_key(event, esp_name)
    if event.event_type == EventType.UNSUBSCRIBED:
        if message.contact_id is None:
            logger.info("esp unsubscribe for a deleted contact esp=%s message=%s", esp_name, message.pk)
            return
        from channels_app.tracking import unsubscribe_record

        unsubscribe_record(
            message=message,
            source="esp_unsubscribe",
            proof={"esp": esp_name, "event": key, "reason": _reason(event, esp_name)[:500]},
        )
        return
    machine = _machine_reason(event, esp_name)
    message_delivery_event(
        message,
        STATUSES[event.event_type],
        reason=_reason(event, esp_name, machine=machine),
        hard_bounce=_hard_bounce(event, esp_name),
        at=event.timestamp,
        provider_event_id=key,
        machine=bool(machine),
    )
