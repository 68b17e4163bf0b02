"""The sales rep's panel on the console's home (``marketing.console_home``): "My queue", their
open handoffs with the SLA's state. ``ScoringConfig.ready`` registers it."""

from django.db.models import Count

from marketing.console_home import SALES, HomeBlock, HomeScope, Panel, Stat, admin_url, home_block_register
from scoring.handoffs import SlaState, handoff_sla_state, handoffs_visible_to, sla_state_q
from scoring.models import Handoff

SHOWN = 20
SLA_LABELS = dict(SlaState.CHOICES)


def queue_panel(scope: HomeScope) -> Panel:
    """The open handoffs the user may see (a rep's own; a manager's, all), soonest due first,
    with the counts due soon and overdue."""
    open_ = handoffs_visible_to(user=scope.user, org=scope.org).filter(status=Handoff.Status.OPEN)
    counts = open_.aggregate(
        total=Count("id"),
        due_soon=Count("id", filter=sla_state_q(SlaState.DUE_SOON, now=scope.now)),
        overdue=Count("id", filter=sla_state_q(SlaState.OVERDUE, now=scope.now)),
    )
    handoffs = open_.select_related("contact").order_by("sla_due_at", "id")[:SHOWN]
    queue = "scoring_handoff_changelist"
    rows = []
    for handoff in handoffs:
        contact = handoff.contact
        name = f"{contact.first_name} {contact.last_name}".strip() or contact.email or f"#{contact.pk}"
        rows.append(
            [
                (name, admin_url("scoring_handoff_change", handoff.pk)),
                (handoff.score, None),
                (SLA_LABELS[handoff_sla_state(handoff, now=scope.now)], None),
                (handoff.sla_due_at.strftime("%d %b %H:%M"), None),
            ]
        )
    return Panel(
        title="My queue",
        stats=[
            Stat("Open", counts["total"], admin_url(queue, status__exact=Handoff.Status.OPEN.value)),
            Stat(
                "Due soon",
                counts["due_soon"],
                admin_url(queue, sla=SlaState.DUE_SOON),
                "warn" if counts["due_soon"] else "",
            ),
            Stat(
                "Overdue", counts["overdue"], admin_url(queue, sla=SlaState.OVERDUE), "bad" if counts["overdue"] else ""
            ),
        ],
        columns=["Contact", "Score", "SLA", "Due"],
        rows=rows,
        empty="No open handoff: your queue is clear.",
        more=("The whole queue", admin_url(queue)) if counts["total"] > SHOWN else None,
    )


def home_blocks_register() -> None:
    """Adds the sales queue's panel to the console's home."""
    home_block_register(HomeBlock(name="scoring.queue", audience=SALES, order=10, build=queue_panel))
