"""The outbox: one ``Message`` row per send, and the sender that carries it out (CONTRACTS.md §6).

1. ``message_enqueue`` renders the template and creates the ``Message`` (``queued``, unique on
   the idempotency key) in the caller's transaction — for a workflow step, the engine's, so the
   step claim and the message commit together; the send task is enqueued after commit.
2. ``message_send`` moves it ``queued``/``held`` (due) ``→ sending`` by a conditional update with
   a lease, commits, checks the guards (consent, suppression, frequency caps, quiet hours: at
   send time, so an unsubscribe after enqueue still stops it), waits for the provider's rate
   limit, and calls the provider outside any transaction with the key as its dedup token.
3. Success: ``sent`` with the provider's id. Transient failure: back to ``queued`` with
   exponential backoff and jitter. Permanent, or out of attempts: ``failed`` with the reason (a
   hard bounce also suppresses the address). A guard ends it ``blocked`` (never sent) or
   ``held`` until its window opens (sent later, not dropped).
4. ``messages_due`` returns rows still ``sending`` after their lease (the sender died) to
   ``queued``, to be sent again with the same key, and finds queued or held rows whose time has
   come but whose task never ran.

Every write after the claim is conditional on ``status = sending`` and the claim's attempt
number, so a sender that outlived its lease cannot overwrite the outcome of the one that took
over.
"""

import hashlib
import logging
import re
import threading
from datetime import datetime, time, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from channels_app.models import Channel, Message, MessageStatus, MessageTemplate, Purpose, Suppression
from channels_app.providers import PermanentError, TransientError, provider_for
from channels_app.rate_limits import rate_limit_wait
from marketing.models import Contact, Organization
from marketing.retries import backoff
from marketing.tenancy import org_context

logger = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
LOST_AFTER = timedelta(seconds=30)  # a queued row not claimed by then lost its task
MAX_ATTEMPTS = 5
BACKOFF_BASE_S = 10
SEND_BATCH = 20  # message ids per send task

# The consent purpose (compliance.models.Purpose) a marketing message needs, per channel.
CONSENT_PURPOSE = {Channel.EMAIL: "email_marketing", Channel.SMS: "sms", Channel.PUSH: "push"}
# Suppressions that stop transactional messages too; "manual" stops marketing only.
BLOCKS_TRANSACTIONAL = {
    Suppression.Reason.HARD_BOUNCE,
    Suppression.Reason.COMPLAINT,
    Suppression.Reason.SMS_STOP,  # carriers enforce STOP for every message from the number
    Suppression.Reason.ERASED,
}
# Quiet hours when the org sets none: SMS only between 08:00 and 21:00 local time.
DEFAULT_QUIET_HOURS = {Channel.SMS: (time(21, 0), time(8, 0))}

SEND, BLOCK, HOLD = "send", "block", "hold"


NAMES_WORD = re.compile(r"\b(tags|lists)\b")


class GuardVerdict(NamedTuple):
    """What the guards say of a message now: ``send``, ``block`` (with the reason) or ``hold``
    (with the reason and ``until``, when the window opens)."""

    verdict: str
    reason: str = ""
    until: datetime | None = None


class UnpublishedTemplateError(ValueError):
    """The template has no live version to send."""


# --- enqueue ------------------------------------------------------------------------------------


def _address(contact: Contact, channel: str) -> str:
    sender = provider_for(channel)
    return sender.address(contact) if sender is not None else ""


def _history(status: str, at: datetime, reason: str = "") -> dict:
    return {"status": status, "at": at.isoformat(), "reason": reason}


def _names_read(variant: dict) -> bool:
    """Whether a variant may read the contact's tags or lists (a word match: when in doubt, yes)."""
    return any(NAMES_WORD.search(value) for value in variant.values() if isinstance(value, str))


def message_enqueue(
    *,
    org: Organization,
    contact: Contact,
    template: MessageTemplate,
    idempotency_key: str,
    instance=None,
    step_id: str = "",
    now: datetime | None = None,
    enqueue_send: bool = True,
    to: str | None = None,
) -> Message:
    """Creates the outbox row for one send of ``template``'s live version to ``contact`` (in the
    caller's transaction), rendered with the contact's variant, and enqueues its send after
    commit. A second call with the same key returns the existing row. Guards run at send time.
    Raises ``UnpublishedTemplateError`` and ``rendering.RenderError``. ``enqueue_send=False`` leaves
    the send to the caller (the ``send_message`` command sends at once). ``to`` overrides the
    provider's address for the contact (a Slack, webhook or social destination's slug)."""
    from channels_app import rendering
    from marketing.conditions import contact_facts

    messages = Message.objects.with_scopes_disabled()
    version = template.live_version
    if version is None:
        raise UnpublishedTemplateError(f"template: “{template.slug}” has no published version.")
    now = now or timezone.now()
    variant = rendering.choose_variant(version.variants, contact_id=contact.pk, template_id=template.pk)
    with transaction.atomic():
        message, created = messages.get_or_create(
            idempotency_key=idempotency_key,
            defaults={
                "org": org,
                "contact": contact,
                "channel": template.channel,
                "purpose": template.purpose,
                "template_version": version,
                "variant": str(variant.get("name", ""))[:50],
                "instance": instance,
                "workflow_id": getattr(instance, "workflow_id", None),
                "step_id": step_id,
                "to": _address(contact, template.channel) if to is None else to,
                "status": MessageStatus.QUEUED,
                "status_history": [_history(MessageStatus.QUEUED, now)],
                "next_attempt_at": now,
                "created_at": now,
            },
        )
        if not created:
            return message
        data = rendering.template_data(
            # Tags and lists cost two queries a contact; only a template that names them gets them.
            facts=contact_facts(contact, names=_names_read(variant)),
            org=org,
            message={"id": message.pk, "channel": message.channel, "purpose": message.purpose},
        )
        content = rendering.render(variant, data, channel=template.channel)
        if template.channel == Channel.EMAIL:
            content = rendering.email_finalize(content, message_id=message.pk, org=org, purpose=template.purpose)
        message.content = content
        message.save(update_fields=["content"])
        if enqueue_send:
            _send_after_commit(message.pk)
    return message


class _PendingSends:
    """The ids enqueued in one transaction, sent as a few batch tasks when it commits."""

    def __init__(self):
        self.ids: list[int] = []

    def flush(self) -> None:
        from channels_app.tasks import messages_send

        ids, self.ids = self.ids, []
        for first in range(0, len(ids), SEND_BATCH):
            messages_send.delay(message_ids=ids[first : first + SEND_BATCH])


_pending = threading.local()


def _send_after_commit(message_id: int) -> None:
    """Adds the id to this transaction's batch (one task per ``SEND_BATCH`` ids after commit).

    The batch is the one whose flush is still registered on the connection: after a rollback
    Django drops the callback and the next message starts a new batch. An id whose savepoint
    rolled back may stay in a batch; its send finds no row and does nothing.
    """
    pending = getattr(_pending, "batch", None)
    registered = connection.in_atomic_block and any(
        callback == getattr(pending, "flush", None) for _, callback, _ in connection.run_on_commit
    )
    if not registered:
        pending = _pending.batch = _PendingSends()
        pending.ids.append(message_id)
        transaction.on_commit(pending.flush)
    else:
        pending.ids.append(message_id)


# --- guards -------------------------------------------------------------------------------------


def _zone(message: Message) -> ZoneInfo:
    name = (message.contact.time_zone if message.contact else "") or message.org.default_time_zone or "UTC"
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def _at_local(day, at: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=zone)


def _consent_block(message: Message) -> str:
    from compliance.selectors import consent_states

    purpose = CONSENT_PURPOSE.get(message.channel)
    if purpose is None:
        return ""
    state = consent_states(org=message.org, contact_ids=[message.contact_id], purpose=purpose).get(message.contact_id)
    if state is None:
        return f"no consent: {purpose} was never granted"
    return "" if state else f"no consent: {purpose} was withdrawn"


def _suppression_block(message: Message) -> str:
    address = message.to.strip().lower()
    hashed = hashlib.sha256(address.encode()).hexdigest()  # what erasure leaves behind
    found = Suppression.objects.filter(org=message.org, channel=message.channel, address__in=[address, hashed])
    if message.purpose == Purpose.TRANSACTIONAL:
        found = found.filter(reason__in=BLOCKS_TRANSACTIONAL)
    suppression = found.order_by("created_at").first()
    return f"suppressed: {suppression.get_reason_display().lower()}" if suppression else ""


def _cap_hold(message: Message, now: datetime, zone: ZoneInfo) -> GuardVerdict | None:
    caps = (message.org.frequency_caps or {}).get(message.channel) or {}
    local = now.astimezone(zone)
    day_start = _at_local(local.date(), time(0), zone)
    week_start = _at_local(local.date() - timedelta(days=local.weekday()), time(0), zone)
    windows = {
        "day": (day_start, _at_local(local.date() + timedelta(days=1), time(0), zone), "today"),
        "week": (week_start, _at_local(week_start.date() + timedelta(days=7), time(0), zone), "this week"),
    }
    holds = []
    for period, (start, next_start, label) in windows.items():
        cap = caps.get(period)
        if isinstance(cap, bool) or not isinstance(cap, int) or cap <= 0:
            continue
        sent = (
            Message.objects.filter(
                org=message.org,
                contact_id=message.contact_id,
                channel=message.channel,
                purpose=Purpose.MARKETING,
                sent_at__gte=start,
            )
            .exclude(pk=message.pk)
            .count()
        )
        if sent >= cap:
            reason = f"frequency cap: {sent} {message.channel} sent {label} (at most {cap} a {period})"
            holds.append(GuardVerdict(HOLD, reason, next_start))
    return max(holds, key=lambda hold: hold.until) if holds else None


def _quiet_hold(message: Message, now: datetime, zone: ZoneInfo) -> GuardVerdict | None:
    org = message.org
    if org.quiet_hours_start is not None and org.quiet_hours_end is not None:
        start, end = org.quiet_hours_start, org.quiet_hours_end
    elif message.channel in DEFAULT_QUIET_HOURS:
        start, end = DEFAULT_QUIET_HOURS[message.channel]
    else:
        return None
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    quiet = start <= clock < end if start < end else (clock >= start or clock < end) if start > end else False
    if not quiet:
        return None
    until = _at_local(local.date(), end, zone)
    if until <= local:
        until = _at_local(local.date() + timedelta(days=1), end, zone)
    reason = f"quiet hours: {start:%H:%M}–{end:%H:%M} {zone.key}"
    return GuardVerdict(HOLD, reason, until)


def message_guards(message: Message, now: datetime) -> GuardVerdict:
    """Whether ``message`` may go out at ``now``: blocked without an address or a contact, without
    marketing consent (email_marketing, sms, push by channel), or when its address is suppressed
    (any reason for marketing; hard bounce, complaint, STOP or erasure for transactional); held by
    a marketing frequency cap (until the contact's next local day or week) or quiet hours in the
    contact's time zone, else the org's (the org's hours; SMS 21:00–08:00 when the org sets
    none), until the window opens."""
    if message.contact_id is None:
        return GuardVerdict(BLOCK, "the contact no longer exists")
    if not message.to:
        return GuardVerdict(BLOCK, f"the contact has no {message.get_channel_display().lower()} address")
    marketing = message.purpose == Purpose.MARKETING
    reason = (_consent_block(message) if marketing else "") or _suppression_block(message)
    if reason:
        return GuardVerdict(BLOCK, reason)
    if marketing:
        zone = _zone(message)
        hold = _cap_hold(message, now, zone) or _quiet_hold(message, now, zone)
        if hold:
            return hold
    return GuardVerdict(SEND)


# --- send ----------------------------------------------------------------------------------------


def _transition(message: Message, status: str, *, reason: str = "", now: datetime | None = None, **fields) -> bool:
    """Ends this claim: ``status`` with ``fields``, the history appended, only if the claim is
    still ours (``sending`` at our attempt number)."""
    now = now or timezone.now()
    updated = (
        Message.objects.with_scopes_disabled()
        .filter(pk=message.pk, status=MessageStatus.SENDING, attempts=message.attempts)
        .update(
            status=status,
            lease_until=None,
            status_history=[*message.status_history, _history(status, now, reason)],
            **fields,
        )
    )
    if not updated:
        logger.warning("message claim lost id=%s attempt=%s status=%s", message.pk, message.attempts, status)
    return bool(updated)


def _retry_later(message: Message, now: datetime, delay: timedelta, *, reason: str, count_attempt: bool = True) -> None:
    from channels_app.tasks import messages_send

    fields = {} if count_attempt else {"attempts": F("attempts") - 1}
    if _transition(
        message, MessageStatus.QUEUED, reason=reason, now=now, next_attempt_at=now + delay, error=reason, **fields
    ):
        transaction.on_commit(
            lambda: messages_send.apply_async(kwargs={"message_ids": [message.pk]}, countdown=delay.total_seconds())
        )


def message_send(*, message_id: int, now: datetime | None = None) -> str | None:
    """Sends one message if it is due and nobody else has it (CONTRACTS.md §6); returns its new
    status (``sent``, ``queued`` for a retry, ``held``, ``blocked``, ``failed``), or None when it
    was not ours to send. Call it outside any transaction. ``now`` (default: the clock) is the
    time of the claim, the guards and the outcome's record."""
    now = now or timezone.now()
    messages = Message.objects.with_scopes_disabled()
    claimed = messages.filter(
        pk=message_id, status__in=[MessageStatus.QUEUED, MessageStatus.HELD], next_attempt_at__lte=now
    ).update(status=MessageStatus.SENDING, lease_until=now + LEASE, attempts=F("attempts") + 1)
    if not claimed:
        return None
    message = messages.select_related("org", "contact").get(pk=message_id)
    with org_context(message.org):
        return _send_claimed(message, now)


def _send_claimed(message: Message, now: datetime) -> str:
    guard = message_guards(message, now)
    if guard.verdict == BLOCK:
        _transition(message, MessageStatus.BLOCKED, reason=guard.reason, now=now, error=guard.reason)
        logger.info("message blocked id=%s reason=%s", message.pk, guard.reason)
        return MessageStatus.BLOCKED
    if guard.verdict == HOLD:
        # Held is not an attempt: a message may wait out many quiet nights.
        _transition(
            message,
            MessageStatus.HELD,
            reason=guard.reason,
            now=now,
            next_attempt_at=guard.until,
            attempts=F("attempts") - 1,
        )
        logger.info("message held id=%s until=%s reason=%s", message.pk, guard.until.isoformat(), guard.reason)
        return MessageStatus.HELD
    sender = provider_for(message.channel)
    if sender is None:
        reason = f"no provider sends {message.channel} messages"
        _transition(message, MessageStatus.FAILED, reason=reason, now=now, error=reason)
        return MessageStatus.FAILED
    wait = rate_limit_wait(sender.name, sender.rate_per_s())
    if wait:
        _retry_later(message, now, timedelta(seconds=wait), reason=f"rate limit of {sender.name}", count_attempt=False)
        return MessageStatus.QUEUED
    try:
        provider_message_id = sender.send(message)
    except TransientError as exc:
        if message.attempts < MAX_ATTEMPTS:
            _retry_later(message, now, backoff(BACKOFF_BASE_S, message.attempts), reason=f"will retry: {exc}"[:5000])
            logger.info("message will retry id=%s attempt=%s error=%s", message.pk, message.attempts, exc)
            return MessageStatus.QUEUED
        reason = f"{exc} (after {message.attempts} attempts)"[:5000]
        _transition(message, MessageStatus.FAILED, reason=reason, now=now, error=reason)
        return MessageStatus.FAILED
    except PermanentError as exc:
        reason = str(exc)[:5000]
        with transaction.atomic():
            if _transition(message, MessageStatus.FAILED, reason=reason, now=now, error=reason) and exc.hard_bounce:
                Suppression.objects.get_or_create(
                    org=message.org,
                    channel=message.channel,
                    address=message.to.strip().lower(),
                    defaults={"reason": Suppression.Reason.HARD_BOUNCE, "detail": reason},
                )
        logger.info("message failed id=%s error=%s", message.pk, reason)
        return MessageStatus.FAILED
    except Exception as exc:  # a provider's bug: fail it, keep the trace in the log
        logger.exception("message send crashed id=%s", message.pk)
        reason = f"{type(exc).__name__}: {exc}"[:5000]
        _transition(message, MessageStatus.FAILED, reason=reason, now=now, error=reason)
        return MessageStatus.FAILED
    _transition(
        message,
        MessageStatus.SENT,
        now=now,
        provider=sender.name,
        provider_message_id=str(provider_message_id)[:300],
        sent_at=now,
        error="",
    )
    return MessageStatus.SENT


def messages_due(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Messages to send again: leases expired (a dead sender; back to ``queued``, same key — or
    ``failed`` once out of attempts), held ones whose window opened, and queued ones whose task
    was lost or whose backoff is over."""
    now = now or timezone.now()
    messages = Message.objects.with_scopes_disabled()
    expired = list(
        messages.filter(status=MessageStatus.SENDING, lease_until__lt=now)
        .order_by("lease_until")
        .values_list("pk", "attempts")[:limit]
    )
    exhausted = [pk for pk, attempts in expired if attempts >= MAX_ATTEMPTS]
    if exhausted:
        messages.filter(pk__in=exhausted, status=MessageStatus.SENDING, lease_until__lt=now).update(
            status=MessageStatus.FAILED,
            lease_until=None,
            error=f"the sender died during each of {MAX_ATTEMPTS} attempts",
        )
    retry = [pk for pk, attempts in expired if attempts < MAX_ATTEMPTS]
    messages.filter(pk__in=retry, status=MessageStatus.SENDING, lease_until__lt=now).update(
        status=MessageStatus.QUEUED, lease_until=None, next_attempt_at=now
    )
    held = messages.filter(status=MessageStatus.HELD, next_attempt_at__lte=now)
    lost = messages.filter(status=MessageStatus.QUEUED, next_attempt_at__lte=now - LOST_AFTER)
    rest = (held | lost).exclude(pk__in=retry).order_by("next_attempt_at").values_list("pk", flat=True)
    return retry + list(rest[: max(0, limit - len(retry))])
