"""The outbox's panels on the console's home (``marketing.console_home``): the marketer's sends
and engagement by channel, and the admin's outbox backlog and failures.
``ChannelsAppConfig.ready`` registers them."""

from django.db.models import Count, Q

from channels_app.metrics import messages_failed_recently, messages_in_flight
from channels_app.models import Channel, Message, MessageStatus
from marketing.console_home import (
    HEALTH,
    MARKETING,
    HomeBlock,
    HomeScope,
    Panel,
    Stat,
    admin_url,
    duration_text,
    home_block_register,
)
from marketing.metrics import age_seconds

OPENED = (MessageStatus.OPENED, MessageStatus.CLICKED)
WAITING = (MessageStatus.QUEUED, MessageStatus.HELD)  # in flight, not being sent


def sends_panel(scope: HomeScope) -> Panel:
    """Messages sent in the last seven days per channel, and how many were opened and clicked.
    Opens and clicks are the person's: a machine's (a scanner, a prefetch) never moves a message
    to opened or clicked."""
    rows = (
        Message.objects.filter(org=scope.org, sent_at__gte=scope.since)
        .values("channel")
        .annotate(
            sent=Count("id"),
            opened=Count("id", filter=Q(status__in=OPENED)),
            clicked=Count("id", filter=Q(status=MessageStatus.CLICKED)),
        )
        .order_by("channel")
    )
    labels = dict(Channel.choices)

    def outbox(channel: str, **filters) -> str | None:
        # The messages the figure counts: this channel's, sent in the last 7 days.
        return admin_url("channels_app_message_changelist", channel__exact=channel, sent=7, **filters)

    return Panel(
        title="Sends by channel (last 7 days)",
        columns=["Channel", "Sent", "Opened", "Clicked"],
        rows=[
            [
                (labels.get(row["channel"], row["channel"]), None),
                (row["sent"], outbox(row["channel"])),
                (
                    f"{row['opened']} ({_share(row['opened'], row['sent'])})",
                    outbox(row["channel"], engagement="opened"),
                ),
                (
                    f"{row['clicked']} ({_share(row['clicked'], row['sent'])})",
                    outbox(row["channel"], engagement="clicked"),
                ),
            ]
            for row in rows
        ],
        empty="Nothing was sent in the last 7 days.",
    )


def _share(part: int, whole: int) -> str:
    return f"{round(100 * part / whole)} %" if whole else "–"


def outbox_panel(scope: HomeScope) -> Panel:
    """Messages waiting to be sent, how late the oldest due one is, and the last day's failures."""
    flight = messages_in_flight(now=scope.now, org=scope.org)
    waiting = sum(row["count"] for (_channel, status), row in flight.items() if status != MessageStatus.SENDING)
    sending = sum(row["count"] for (_channel, status), row in flight.items() if status == MessageStatus.SENDING)
    oldest = min(
        (row["oldest_due"] for (_c, s), row in flight.items() if s != MessageStatus.SENDING and row["oldest_due"]),
        default=None,
    )
    lag = age_seconds(scope.now, oldest)
    failed = sum(messages_failed_recently(now=scope.now, org=scope.org).values())
    outbox = "channels_app_message_changelist"
    return Panel(
        title="Outbox",
        stats=[
            Stat("Waiting to send", waiting, admin_url(outbox, outbox="waiting")),
            Stat("Sending", sending, admin_url(outbox, status__exact=MessageStatus.SENDING.value)),
            Stat("Oldest due", duration_text(lag), tone="bad" if lag > 600 else ""),
            Stat(
                "Failed (24 h)",
                failed,
                admin_url(outbox, status__exact=MessageStatus.FAILED.value, created=1),
                "bad" if failed else "",
            ),
        ],
    )


def home_blocks_register() -> None:
    """Adds the outbox's panels to the console's home."""
    home_block_register(HomeBlock(name="channels.sends", audience=MARKETING, order=120, build=sends_panel))
    home_block_register(HomeBlock(name="channels.outbox", audience=HEALTH, order=310, build=outbox_panel))
