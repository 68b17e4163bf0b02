"""The outbox: one ``Message`` row per send, and the sender that carries it out (docs/workflows.md).

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

Row-level security (docs/tenancy.md, "Workers"): enqueueing runs in the caller's org context. A
send task's ids may span orgs, so the claim (and ``messages_due``'s sweep) runs as the system
role inside its transaction; each org's guards, provider calls and outcomes then go as the app
role in that org's context.
"""

import hashlib
import logging
import re
import threading
import time as clock
from collections import defaultdict
from contextlib import contextmanager
from datetime import datetime, time, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import F, prefetch_related_objects
from django.utils import timezone

from channels_app.metrics import sends_count
from channels_app.models import Channel, Message, MessageStatus, MessageTemplate, Purpose, Suppression
from channels_app.providers import PermanentError, TransientError, provider_for
from channels_app.rate_limits import rate_limit_wait
from marketing import erased_identities
from marketing.bulk_sql import JSONAppend, insert_returning, update_rows
from marketing.database_roles import system_role
from marketing.models import Contact, Organization
from marketing.retries import backoff
from marketing.tenancy import org_context

logger = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
LOST_AFTER = timedelta(seconds=30)  # a queued row not claimed by then lost its task
MAX_ATTEMPTS = 5
BACKOFF_BASE_S = 10
SEND_BATCH = 20  # message ids per send task
# No send starts later than this before its lease ends: the slowest provider call (an SMTP
# exchange times out after EMAIL_TIMEOUT, 30 s) still ends inside the lease.
LEASE_MARGIN = timedelta(seconds=35)

# The consent purpose (compliance.models.Purpose) a marketing message needs, per channel.
CONSENT_PURPOSE = {Channel.EMAIL: "email_marketing", Channel.SMS: "sms", Channel.PUSH: "push"}
# Channels whose messages hand a contact's data to a third party: stopped when the contact opted
# out of sale or sharing (compliance.models.Purpose.SALE_SHARING), whatever the message's purpose.
SHARING_CHANNELS = {Channel.WEBHOOK}
SHARING_PURPOSE = "sale_sharing"
# Suppressions that stop transactional messages too; "manual" stops marketing only.
BLOCKS_TRANSACTIONAL = {
    Suppression.Reason.HARD_BOUNCE,
    Suppression.Reason.COMPLAINT,
    Suppression.Reason.SMS_STOP,  # carriers enforce STOP for every message from the number
    Suppression.Reason.ERASED,
}
# A notice to a plain address (no contact) is not stopped by an erasure: the person may still ask
# about their data, and is answered (a data-subject request's confirmation and outcome).
NOTICE_BLOCKS = BLOCKS_TRANSACTIONAL - {Suppression.Reason.ERASED}
# Quiet hours when the org sets none: SMS only between 08:00 and 21:00 local time.
DEFAULT_QUIET_HOURS = {Channel.SMS: (time(21, 0), time(8, 0))}

SEND, BLOCK, HOLD = "send", "block", "hold"
# A message's outcomes: nothing more is done with it.
DONE_STATUSES = {MessageStatus.SENT, MessageStatus.FAILED, MessageStatus.BLOCKED}


NAMES_WORD = re.compile(r"\b(tags|lists)\b")


class GuardVerdict(NamedTuple):
    """What the guards say of a message now: ``send``, ``block`` (with the reason) or ``hold``
    (with the reason and ``until``, when the window opens). ``kind`` names the guard that spoke,
    for counting: ``no_address``, ``consent`` or ``suppression`` (blocks), ``frequency_cap`` or
    ``quiet_hours`` (holds)."""

    verdict: str
    reason: str = ""
    until: datetime | None = None
    kind: str = ""


class EarlierSend(NamedTuple):
    """A send of the same run, not stored (a dry run's or a projection's), that frequency caps
    count like a stored message sent at ``at``."""

    channel: str
    purpose: str
    at: datetime


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


class Recipient(NamedTuple):
    """One message of a ``messages_enqueue`` batch: to whom, under which key, for which run."""

    contact: Contact
    idempotency_key: str
    instance: object = None  # the WorkflowInstance whose step sends it
    step_id: str = ""
    to: str | None = None  # None: the channel provider's address for the contact


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
    recipient = Recipient(contact, idempotency_key, instance, step_id, to)
    [message] = messages_enqueue(org=org, template=template, recipients=[recipient], now=now, enqueue_send=enqueue_send)
    return message


# Keys of mail to people who are not contacts (``notice_enqueue``): the guards know them by it.
NOTICE_KEY = "notice:"


def notice_enqueue(
    *, org: Organization, to: str, subject: str, text: str, key: str, html: str = "", user=None, now=None
) -> Message:
    """Queues a transactional email to someone who is not a contact — a rep told of a handoff, a
    console user's test send — and enqueues its send after commit: an outbox row with no contact
    and ``purpose = transactional``, addressed to ``to`` (``user``, when given, is recorded in the
    content as the recipient). The guards skip consent for it, not suppression. ``key`` makes it
    idempotent: a second call with the same key returns the existing row. Logs one line."""
    now = now or timezone.now()
    content = {"subject": subject, "text": text, **({"html": html} if html else {})}
    if user is not None:
        content["recipient_user"] = user.pk
    with transaction.atomic():
        message, created = Message.objects.with_scopes_disabled().get_or_create(
            idempotency_key=f"{NOTICE_KEY}{key}"[:200],
            defaults={
                "org": org,
                "channel": Channel.EMAIL,
                "purpose": Purpose.TRANSACTIONAL,
                "to": to,
                "content": content,
                "status": MessageStatus.QUEUED,
                "status_history": [_history(MessageStatus.QUEUED, now, "notice")],
                "next_attempt_at": now,
                "created_at": now,
            },
        )
        if created:
            _send_after_commit(message.pk)
    logger.info("notice queued org=%s message=%s to=%s subject=%r", org.slug, message.pk, to, subject)
    return message


def _is_notice(message: Message) -> bool:
    return message.contact_id is None and message.idempotency_key.startswith(NOTICE_KEY)


def _notice_verdicts(messages: list[Message]) -> dict[int, GuardVerdict]:
    """The guards of mail to non-contacts: transactional, so no consent, caps or quiet hours;
    blocked without an address or when it is suppressed."""
    verdicts = {m.pk: GuardVerdict(BLOCK, "no email address") for m in messages if not m.to}
    rest = [m for m in messages if m.to]
    if rest:
        verdicts.update({pk: GuardVerdict(BLOCK, reason) for pk, reason in _suppression_blocks(rest).items()})
    return {**{m.pk: GuardVerdict(SEND) for m in rest}, **verdicts}


def _reserved_ids(count: int) -> list[int] | None:
    """``count`` fresh ``Message`` ids from the table's sequence (PostgreSQL), so each message is
    rendered with its own id (its signed links) before the one INSERT; None elsewhere."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [Message._meta.db_table, count],
        )
        return [row[0] for row in cursor.fetchall()]


# Columns of the INSERT given to the in-memory ``Message`` as objects instead (or not at all).
SET_APART = {"id", "content", "org_id", "contact_id", "instance_id", "template_version_id"}


def messages_enqueue(
    *,
    org: Organization,
    template: MessageTemplate,
    recipients: list[Recipient],
    now: datetime | None = None,
    enqueue_send: bool = True,
) -> list[Message]:
    """``message_enqueue`` for many contacts at once (a broadcast, a batch of workflow steps):
    the messages in the order of ``recipients``, existing ones (same key) as they are.

    On PostgreSQL it takes the ids from the sequence first, renders every message with its id,
    and writes them all with one ``INSERT … ON CONFLICT DO NOTHING``: a key that is already
    there (or twice in the batch) keeps its row. Elsewhere it inserts, renders and updates the
    content (three statements a batch). Tags and lists are loaded, in one query each, only when a
    variant names them; companies in one query. A ``RenderError`` leaves nothing written."""
    from channels_app import rendering
    from marketing.conditions import contact_facts

    version = template.live_version
    if version is None:
        raise UnpublishedTemplateError(f"template: “{template.slug}” has no published version.")
    if not recipients:
        return []
    now = now or timezone.now()
    contacts = [r.contact for r in recipients]
    variants = [
        rendering.choose_variant(version.variants, contact_id=contact.pk, template_id=template.pk)
        for contact in contacts
    ]
    names = any(_names_read(variant) for variant in version.variants)
    prefetch_related_objects(contacts, "company", *(["tags", "lists"] if names else []))
    sender = provider_for(template.channel)

    def render(message_id: int, index: int) -> dict:
        data = rendering.template_data(
            facts=contact_facts(contacts[index], names=names),
            org=org,
            message={"id": message_id, "channel": template.channel, "purpose": template.purpose},
        )
        content = rendering.render(variants[index], data, channel=template.channel)
        if template.channel == Channel.EMAIL:
            content = rendering.email_finalize(
                content,
                message_id=message_id,
                org=org,
                purpose=template.purpose,
                preferences_url=data["preferences_url"],
            )
        return content

    addresses = sender.addresses(contacts) if sender is not None else [""] * len(contacts)
    columns = {
        "contact_id": [c.pk for c in contacts],
        "idempotency_key": [r.idempotency_key for r in recipients],
        "variant": [str(v.get("name", ""))[:50] for v in variants],
        "instance_id": [getattr(r.instance, "pk", None) for r in recipients],
        "workflow_id": [getattr(r.instance, "workflow_id", None) for r in recipients],
        "step_id": [r.step_id for r in recipients],
        "to": [address if r.to is None else r.to for r, address in zip(recipients, addresses, strict=True)],
    }
    history = [_history(MessageStatus.QUEUED, now)]
    fixed = {
        "org_id": org.pk,
        "channel": template.channel,
        "purpose": template.purpose,
        "template_version_id": version.pk,
        "status": MessageStatus.QUEUED,
        "status_history": history,
        "next_attempt_at": now,
        "created_at": now,
        "content": {},
    }
    ids = _reserved_ids(len(recipients))
    contents: dict[int, dict] = {}
    with transaction.atomic():
        if ids is not None:
            contents = {ids[i]: render(ids[i], i) for i in range(len(recipients))}
            columns = {"id": ids, **columns, "content": [contents[pk] for pk in ids]}
            del fixed["content"]
        stored = dict(
            (key, pk)
            for pk, key in insert_returning(Message, columns=columns, fixed=fixed, returning=["id", "idempotency_key"])
        )
        if ids is None:
            position = {r.idempotency_key: i for i, r in reversed(list(enumerate(recipients)))}
            contents = {pk: render(pk, position[key]) for key, pk in stored.items()}
            update_rows([Message(pk=pk, content=content) for pk, content in contents.items()], ["content"])
    missing = {r.idempotency_key for r in recipients} - stored.keys()
    existing = (
        {m.idempotency_key: m for m in Message.objects.with_scopes_disabled().filter(idempotency_key__in=missing)}
        if missing
        else {}
    )
    result, made = [], {}
    for index, recipient in enumerate(recipients):
        key = recipient.idempotency_key
        if key in existing:
            result.append(existing[key])
            continue
        if key not in made:
            message = Message(
                pk=stored[key],
                org=org,
                contact=recipient.contact,
                template_version=version,
                instance=recipient.instance,
                content=contents[stored[key]],
                **{name: values[index] for name, values in columns.items() if name not in SET_APART},
                **{name: value for name, value in fixed.items() if name not in SET_APART},
            )
            message._state.adding, message._state.db = False, connection.alias
            made[key] = message
        result.append(made[key])
    if enqueue_send:
        for message in made.values():
            _send_after_commit(message.pk)
    return result


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


def _normal(address: str) -> str:
    return address.strip().lower()


def _hashed(address: str) -> str:
    return hashlib.sha256(address.encode()).hexdigest()  # what erasures before keyed hashes left behind


# The kind of identity an erasure keeps a keyed hash of, per channel (marketing.erased_identities).
ERASED_KIND = {Channel.EMAIL: erased_identities.EMAIL, Channel.SMS: erased_identities.PHONE}


def _erasure_hashes(org: Organization, channel: str, address: str) -> set[str]:
    """The keyed hashes an erasure of this address leaves as its suppression, under every key."""
    kind = ERASED_KIND.get(channel)
    if not kind or not address:
        return set()
    return set(erased_identities.digests(kind, address, default_country=org.default_country))


def _consent_blocks(messages: list[Message]) -> dict[int, str]:
    """Messages the org's consent regimes stop: a marketing message whose contact never granted
    the channel's purpose (under opt-in) or withdrew it (either regime), and a webhook message
    about a contact who opted out of sale or sharing of their data (a third party receives it).
    One query per purpose, plus the org's regimes."""
    from compliance.selectors import consent_allowed, consent_regimes, consent_states

    groups: dict[str, list[Message]] = defaultdict(list)
    for message in messages:
        purpose = CONSENT_PURPOSE.get(message.channel)
        if purpose and message.purpose == Purpose.MARKETING:
            groups[purpose].append(message)
        elif message.channel in SHARING_CHANNELS:
            groups[SHARING_PURPOSE].append(message)
    if not groups:
        return {}
    regimes = consent_regimes(org=messages[0].org)
    blocks = {}
    for purpose, group in groups.items():
        states = consent_states(org=group[0].org, contact_ids={m.contact_id for m in group}, purpose=purpose)
        for message in group:
            state = states.get(message.contact_id)
            if consent_allowed(state=state, regime=regimes[purpose]):
                continue
            if state is None:
                blocks[message.pk] = f"no consent: {purpose} was never granted"
            else:
                blocks[message.pk] = f"no consent: {purpose} was withdrawn"
    return blocks


def _topic_blocks(messages: list[Message]) -> dict[int, str]:
    """Marketing messages whose template's topic the contact left (in the preference centre, or
    recorded by hand): the newest choice of the topic wins. One query for the whole batch when
    any template has a topic (the claim loads the templates with the messages), none otherwise."""
    from channels_app.models import TemplateVersion
    from compliance.preference_centre import topics_left

    marketing = [m for m in messages if m.purpose == Purpose.MARKETING and m.template_version_id]
    topics: dict[int, tuple[int, str]] = {}
    unloaded = set()
    for message in marketing:
        if not Message.template_version.is_cached(message):
            unloaded.add(message.template_version_id)
        elif message.template_version.template.topic_id:
            topic = message.template_version.template.topic
            topics[message.template_version_id] = (topic.pk, topic.name)
    if unloaded:
        for version_id, topic_id, name in TemplateVersion.objects.filter(
            pk__in=unloaded, template__topic__isnull=False
        ).values_list("pk", "template__topic_id", "template__topic__name"):
            topics[version_id] = (topic_id, name)
    if not topics:
        return {}
    left = topics_left(
        org=messages[0].org,
        contact_ids={m.contact_id for m in marketing},
        topic_ids={topic_id for topic_id, _ in topics.values()},
    )
    blocks = {}
    for message in marketing:
        topic_id, name = topics.get(message.template_version_id, (None, ""))
        if topic_id is not None and (message.contact_id, topic_id) in left:
            blocks[message.pk] = f"topic left: the contact unsubscribed from “{name}”"
    return blocks


def _suppression_blocks(messages: list[Message]) -> dict[int, str]:
    """Messages to a suppressed address (or its erasure hash) on their channel, with the oldest
    suppression's reason; transactional ones only for ``BLOCKS_TRANSACTIONAL`` reasons. One query."""
    addresses = {_normal(m.to) for m in messages}
    # A phone is kept as its keyed hash (Suppression.address_of); rows from before, in clear.
    keyed = {a: Suppression.address_of(a) for a in addresses}
    org = messages[0].org  # one org's batch, as the query below assumes
    erased = {(m.channel, _normal(m.to)): _erasure_hashes(org, m.channel, _normal(m.to)) for m in messages}
    found: dict[tuple[str, str], list[tuple[datetime, str]]] = defaultdict(list)
    wanted = addresses | {_hashed(a) for a in addresses} | set(keyed.values())
    wanted |= {hashed for hashes in erased.values() for hashed in hashes}
    rows = Suppression.objects.filter(org=org, address__in=wanted).values_list(
        "channel", "address", "created_at", "reason"
    )
    for channel, address, created_at, reason in rows:
        found[channel, address].append((created_at, reason))
    blocks = {}
    for message in messages:
        address = _normal(message.to)
        candidates = {address, _hashed(address), keyed[address], *erased[message.channel, address]}
        matches = sorted(match for candidate in candidates for match in found[message.channel, candidate])
        if message.purpose == Purpose.TRANSACTIONAL:
            blocking = NOTICE_BLOCKS if _is_notice(message) else BLOCKS_TRANSACTIONAL
            matches = [match for match in matches if match[1] in blocking]
        if matches:
            blocks[message.pk] = f"suppressed: {Suppression.Reason(matches[0][1]).label.lower()}"
    return blocks


def _cap_windows(now: datetime, zone: ZoneInfo) -> dict[str, tuple[datetime, datetime, str]]:
    local = now.astimezone(zone)
    week_start = _at_local(local.date() - timedelta(days=local.weekday()), time(0), zone)
    return {
        "day": (
            _at_local(local.date(), time(0), zone),
            _at_local(local.date() + timedelta(days=1), time(0), zone),
            "today",
        ),
        "week": (week_start, _at_local(week_start.date() + timedelta(days=7), time(0), zone), "this week"),
    }


class _Caps:
    """The frequency caps of one org's batch (``org.frequency_caps``, e.g. ``{"email": {"day": 2,
    "week": 5}}``): the marketing messages already sent to its contacts in the longest window,
    read in one query per batch, plus those this batch lets through, so two messages to one
    contact in one batch cannot both pass a cap of one, plus ``earlier`` (contact id: the
    unstored sends of its simulated run)."""

    def __init__(self, messages: list[Message], now: datetime, earlier: dict[int, list[EarlierSend]] | None = None):
        org = messages[0].org
        self.now = now
        self.caps = {channel: cap for channel, cap in (org.frequency_caps or {}).items() if isinstance(cap, dict)}
        capped = [m for m in messages if self.applies(m)]
        self.windows = {m.pk: _cap_windows(now, _zone(m)) for m in capped}
        self.sent: dict[tuple[str, int | None], list[tuple[int | None, datetime]]] = defaultdict(list)
        for contact_id, sends in (earlier or {}).items():
            for send in sends:
                if send.purpose == Purpose.MARKETING:
                    self.sent[send.channel, contact_id].append((None, send.at))
        if not capped:
            return
        earliest = min(start for w in self.windows.values() for start, _, _ in w.values())
        for pk, contact_id, channel, sent_at in Message.objects.filter(
            org=org,
            channel__in={m.channel for m in capped},
            contact_id__in={m.contact_id for m in capped},
            purpose=Purpose.MARKETING,
            sent_at__gte=earliest,
        ).values_list("pk", "contact_id", "channel", "sent_at"):
            self.sent[channel, contact_id].append((pk, sent_at))

    def applies(self, message: Message) -> bool:
        return message.purpose == Purpose.MARKETING and bool(self.caps.get(message.channel))

    def hold(self, message: Message) -> GuardVerdict | None:
        """The hold of the cap that frees ``message`` last, or None when it is under every cap."""
        if not self.applies(message):
            return None
        sent = self.sent[message.channel, message.contact_id]
        holds = []
        for period, (start, next_start, label) in self.windows[message.pk].items():
            cap = self.caps[message.channel].get(period)
            if isinstance(cap, bool) or not isinstance(cap, int) or cap <= 0:
                continue
            count = sum(1 for pk, at in sent if at >= start and pk != message.pk)
            if count >= cap:
                reason = f"frequency cap: {count} {message.channel} sent {label} (at most {cap} a {period})"
                holds.append(GuardVerdict(HOLD, reason, next_start, "frequency_cap"))
        return max(holds, key=lambda hold: hold.until) if holds else None

    def going_out(self, message: Message) -> None:
        """Counts ``message`` as sent for the rest of the batch."""
        if self.applies(message):
            self.sent[message.channel, message.contact_id].append((message.pk, self.now))


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
    return GuardVerdict(HOLD, reason, until, "quiet_hours")


def messages_guards(
    messages: list[Message], now: datetime, *, earlier: dict[int, list[EarlierSend]] | None = None
) -> dict[int, GuardVerdict]:
    """Whether each of one org's ``messages`` (with ``org`` and ``contact`` loaded) may go out at
    ``now``, by message id: blocked without an address or a contact, without marketing consent
    (email_marketing, sms, push by channel), or when its address is suppressed (any reason for
    marketing; hard bounce, complaint, STOP or erasure for transactional); held by a marketing
    frequency cap (until the contact's next local day or week) or quiet hours in the contact's
    time zone, else the org's (the org's hours; SMS 21:00–08:00 when the org sets none), until
    the window opens. At most one query per check for the whole batch. Call inside
    ``org_context(org)``. ``earlier`` (contact id: sends of its run not stored, as a dry run
    has them) counts toward the caps as if sent. A projection's SQL form of these rules is
    ``workflows.projection``; a test holds the two together."""
    verdicts: dict[int, GuardVerdict] = {}
    for message in messages:
        if message.contact_id is None:
            verdicts[message.pk] = GuardVerdict(BLOCK, "the contact no longer exists", kind="no_address")
        elif not message.to:
            channel = message.get_channel_display().lower()
            verdicts[message.pk] = GuardVerdict(BLOCK, f"the contact has no {channel} address", kind="no_address")
    rest = [m for m in messages if m.pk not in verdicts]
    if not rest:
        return verdicts
    # Consent's reason wins, as it comes first.
    for kind, blocks in (
        ("suppression", _suppression_blocks(rest)),
        ("topic", _topic_blocks(rest)),
        ("consent", _consent_blocks(rest)),
    ):
        verdicts.update({pk: GuardVerdict(BLOCK, reason, kind=kind) for pk, reason in blocks.items()})
    rest = [m for m in rest if m.pk not in verdicts]
    caps = _Caps(rest, now, earlier) if rest else None
    for message in rest:
        hold = caps.hold(message)
        if hold is None and message.purpose == Purpose.MARKETING:
            hold = _quiet_hold(message, now, _zone(message))
        if hold is None:
            caps.going_out(message)
        verdicts[message.pk] = hold or GuardVerdict(SEND)
    return verdicts


def message_guards(message: Message, now: datetime) -> GuardVerdict:
    """``messages_guards`` for one message."""
    with org_context(message.org):
        return messages_guards([message], now)[message.pk]


def send_guards(
    *,
    org: Organization,
    contact: Contact,
    channel: str,
    purpose: str,
    to: str,
    now: datetime,
    earlier: list[EarlierSend] = (),
    template: MessageTemplate | None = None,
) -> GuardVerdict:
    """``messages_guards`` for a message that is not stored — what a dry run (and so a
    projection) asks of a send step: ``contact`` on ``channel`` for ``purpose`` at ``now``, to
    ``to`` (the provider's address, or a destination), after the run's own ``earlier`` sends;
    ``template`` (its live version) for the topic guard."""
    version = template.live_version if template is not None else None
    if version is not None:
        version.template = template  # the topic guard reads the template's topic from it
    message = Message(
        pk=0, org=org, contact=contact, channel=channel, purpose=purpose, to=to or "", template_version=version
    )
    with org_context(org):
        return messages_guards([message], now, earlier={contact.pk: list(earlier)})[0]


# --- send ----------------------------------------------------------------------------------------


@contextmanager
def _outcome_transaction():
    """The transaction of one outcome. On PostgreSQL its commit does not wait for the WAL to
    reach the disk (``synchronous_commit`` off for this transaction only), which takes the
    outbox from ~3 ms to ~0.3 ms a message on this machine. A sender killed right after is
    still recorded (the commit is done); only a crash of the database server in the next
    ~0.6 s (3 × ``wal_writer_delay``) could lose the record, and then the message is sent again
    with the same key: the one duplicate the delivery protocol allows."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield


def _transition(message: Message, status: str, *, reason: str = "", now: datetime | None = None, **fields) -> bool:
    """Ends this claim: ``status`` with ``fields``, the history appended, only if the claim is
    still ours (``sending`` at our attempt number). Call in the message's org context."""
    now = now or timezone.now()
    with _outcome_transaction():
        updated = Message.objects.filter(pk=message.pk, status=MessageStatus.SENDING, attempts=message.attempts).update(
            status=status,
            lease_until=None,
            status_history=JSONAppend("status_history", _history(status, now, reason)),
            **fields,
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
    """``messages_send`` for one message: its new status, or None when it was not ours to send."""
    return messages_send(message_ids=[message_id], now=now).get(message_id)


def _claim(message_ids: list[int], now: datetime) -> list[Message]:
    """Moves the due ones of ``message_ids`` that nobody else holds to ``sending`` with a lease
    (one transaction: PostgreSQL skips rows another sender has locked; SQLite's IMMEDIATE
    transactions serialise claims), and returns them with their org and contact.

    The ids of one task may belong to several orgs: the claim locks, moves and reads them as the
    system role (a worker acting as app, docs/tenancy.md "Workers"); what follows runs in each
    message's org context."""
    messages = Message.objects.with_scopes_disabled()
    due = messages.filter(
        pk__in=message_ids, status__in=[MessageStatus.QUEUED, MessageStatus.HELD], next_attempt_at__lte=now
    )
    with transaction.atomic(), system_role():
        ids = list(due.select_for_update(skip_locked=True, of=("self",)).values_list("pk", flat=True))
        if not ids:
            return []
        messages.filter(pk__in=ids).update(
            status=MessageStatus.SENDING, lease_until=now + LEASE, attempts=F("attempts") + 1
        )
        return list(
            messages.filter(pk__in=ids)
            .select_related("org", "contact", "template_version__template__topic")  # the topic guard reads it
            .order_by("pk")
        )


def messages_send(*, message_ids: list[int], now: datetime | None = None) -> dict[int, str]:
    """Sends the due ones of ``message_ids`` that nobody else has (docs/workflows.md); returns the
    new status of each one it claimed (``sent``, ``queued`` for a retry, ``held``, ``blocked``,
    ``failed``). Call it outside any transaction. ``now`` (default: the clock) is the time of the
    claim, the guards and the outcomes' record.

    One claim, one guard check and one provider session (an SMTP connection) serve the batch;
    each outcome is recorded as soon as the provider answered, so a sender that dies mid-batch
    leaves only the message in the provider's hands unrecorded. A send is not started when the
    lease would end before the slowest provider call could (``LEASE_MARGIN``): the rest of the
    batch goes back to the queue."""
    now = now or timezone.now()
    claimed = _claim(list(message_ids), now)
    results: dict[int, str] = {}
    sessions: dict[str, tuple] = {}
    deadline = clock.monotonic() + (LEASE - LEASE_MARGIN).total_seconds()
    by_org: dict[int, list[Message]] = defaultdict(list)
    for message in claimed:
        by_org[message.org_id].append(message)
    try:
        for group in by_org.values():
            with org_context(group[0].org):
                notices = [m for m in group if _is_notice(m)]
                verdicts = messages_guards([m for m in group if not _is_notice(m)], now)
                verdicts.update(_notice_verdicts(notices) if notices else {})
                for message in group:
                    if clock.monotonic() > deadline:
                        results[message.pk] = _release(message, now)
                        continue
                    results[message.pk] = _send_claimed(message, now, verdicts[message.pk], sessions)
                if notices:
                    _erased_notices_forget(group[0].org, notices, results)
    finally:
        for sender, session in sessions.values():
            if session is not None:
                sender.close_session(session)
        sends_count(messages=claimed, results=results)  # the outcomes recorded, even if one send crashed
    return results


def _erased_notices_forget(org: Organization, notices: list[Message], results: dict[int, str]) -> int:
    """A notice done with (sent, failed or blocked) whose address was erased keeps nothing of the
    person: the answer to an erasure request is sent after the erasure, to the address it
    erased, and would otherwise stay readable in the outbox. Its address, body and reason go,
    as the erasure does with earlier mail; its status and times stay. Returns how many."""
    done = [m for m in notices if results.get(m.pk) in DONE_STATUSES and m.to]
    erased = erased_identities.erased_emails(org=org, emails={m.to for m in done}) if done else set()
    forgotten = [m.pk for m in done if m.to in erased]
    if forgotten:
        Message.objects.filter(pk__in=forgotten).update(to="", content={}, error="")
    return len(forgotten)


def _release(message: Message, now: datetime) -> str:
    """Gives a claimed message back unsent (not an attempt), to be sent by a new task at once."""
    from channels_app.tasks import messages_send as send_task

    if _transition(message, MessageStatus.QUEUED, now=now, next_attempt_at=now, attempts=F("attempts") - 1):
        send_task.delay(message_ids=[message.pk])
    return MessageStatus.QUEUED


def _send_claimed(message: Message, now: datetime, guard: GuardVerdict, sessions: dict) -> str:
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
        if sender.name not in sessions:
            sessions[sender.name] = (sender, sender.open_session())
        provider_message_id = sender.send(message, sessions[sender.name][1])
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
                    address=Suppression.address_of(message.to),
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
    was lost or whose backoff is over. Every org's: as the system role (a worker acting as app,
    docs/tenancy.md "Workers"), in one transaction."""
    now = now or timezone.now()
    messages = Message.objects.with_scopes_disabled()
    with transaction.atomic(), system_role():
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
