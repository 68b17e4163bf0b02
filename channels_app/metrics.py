"""The outbox's metrics (docs/metrics.md): messages waiting by channel and status, how late the
oldest due one is, recent failures, and sends by outcome. ``ChannelsAppConfig.ready`` registers
the gauges."""

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from django.db.models import Count, Min, Q
from prometheus_client.core import GaugeMetricFamily, Metric

from channels_app.models import Message, MessageStatus
from marketing.database_roles import system_alias
from marketing.metrics import age_seconds, counter_declare, counter_tally
from marketing.models import Organization

SENDS = "outbox_sends"
counter_declare(SENDS, "Send attempts that ended, by channel and outcome.", ["channel", "outcome"])
# What a send ended in, as the counter names it: a message back in the queue will be tried again.
OUTCOMES = {MessageStatus.QUEUED: "retry"}
IN_FLIGHT = (MessageStatus.QUEUED, MessageStatus.HELD, MessageStatus.SENDING)
RECENT = timedelta(hours=24)


def sends_count(*, messages: Iterable[Message], results: dict[int, str]) -> None:
    """Counts one send batch's outcomes (``sent``, ``failed``, ``retry``, ``held``, ``blocked``) by
    channel: one increment per channel and outcome, in one round trip."""
    counter_tally(
        SENDS,
        (
            {"channel": message.channel, "outcome": OUTCOMES.get(results[message.pk], results[message.pk])}
            for message in messages
            if message.pk in results
        ),
    )


def _messages(org: Organization | None):
    """The org's messages, or every org's through the system alias when ``org`` is None (row-level
    security shows the app role one org at most)."""
    messages = Message.objects.with_scopes_disabled()
    return messages.using(system_alias()) if org is None else messages.filter(org=org)


def messages_in_flight(*, now: datetime, org: Organization | None = None) -> dict[tuple[str, str], dict]:
    """Messages not sent yet: (channel, status) → ``{"count", "oldest_due"}`` for ``queued``,
    ``held`` and ``sending``; ``oldest_due`` is the earliest ``next_attempt_at`` that has come.
    All orgs' when ``org`` is None. Reads the partial index ``message_due`` (only unsent rows)."""
    rows = (
        _messages(org)
        .filter(status__in=IN_FLIGHT)
        .values("channel", "status")
        .annotate(count=Count("*"), oldest_due=Min("next_attempt_at", filter=Q(next_attempt_at__lte=now)))
        .order_by()
    )
    return {(row.pop("channel"), row.pop("status")): row for row in rows}


def messages_failed_recently(*, now: datetime, org: Organization | None = None) -> dict[str, int]:
    """Failed messages created in the last 24 hours, by channel (the index ``message_status``,
    one range per org: the cost follows the day's failures, not the table)."""
    messages = _messages(org)
    if org is None:
        # The org ids as a list, not a subquery: PostgreSQL then walks the index once per org
        # instead of scanning the whole table (about 5 ms instead of 200 ms on a million rows).
        messages = messages.filter(org__in=list(Organization.objects.order_by().values_list("pk", flat=True)))
    rows = (
        messages.filter(status=MessageStatus.FAILED, created_at__gte=now - RECENT)
        .values("channel")
        .annotate(count=Count("*"))
        .order_by()
    )
    return {row["channel"]: row["count"] for row in rows}


def outbox_gauges(*, now: datetime) -> Iterator[Metric]:
    """The outbox's gauges, over all orgs."""
    flight = messages_in_flight(now=now)
    waiting = GaugeMetricFamily(
        "outbox_messages", "Messages not sent yet, by channel and status.", labels=["channel", "status"]
    )
    oldest: dict[str, datetime] = {}
    for (channel, status), row in sorted(flight.items()):
        waiting.add_metric([channel, status], row["count"])
        if status != MessageStatus.SENDING and row["oldest_due"]:
            oldest[channel] = min(row["oldest_due"], oldest.get(channel, row["oldest_due"]))
    yield waiting
    lag = GaugeMetricFamily(
        "outbox_oldest_due_age_seconds",
        "How long the longest-waiting queued or held message has been due, by channel.",
        labels=["channel"],
    )
    for channel, at in sorted(oldest.items()):
        lag.add_metric([channel], age_seconds(now, at))
    yield lag
    failed = GaugeMetricFamily(
        "outbox_failed_messages_recent", "Failed messages created in the last 24 hours, by channel.", labels=["channel"]
    )
    for channel, count in sorted(messages_failed_recently(now=now).items()):
        failed.add_metric([channel], count)
    yield failed
