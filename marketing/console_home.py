"""The console's home page: what each role needs today, as panels of numbers and links.

Each app registers the panels it knows how to fill (``home_block_register`` in its
``AppConfig.ready``), so this module imports no other app: scoring fills the sales rep's queue,
workflows and channels the marketer's week, and each app its share of the admin's system health.

A panel is for one audience:

- ``sales``: sales reps (their open handoffs and SLA);
- ``marketing``: marketers, analysts and admins (the current org's workflows, sends, approvals);
- ``health``: org admins (their org) and superusers (every org: ``HomeScope.org`` is None).

Every number is counted in SQL (a grouped query per panel) and, where a list shows the rows
behind it, links to that list filtered.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from marketing.metrics import age_seconds, dispatch_backlog
from marketing.models import DispatchBatch, Organization, Role

SALES, MARKETING, HEALTH = "sales", "marketing", "health"
WEEK = timedelta(days=7)
AUDIENCES: dict[str, tuple[str, ...]] = {
    Role.ADMIN: (MARKETING, HEALTH),
    Role.MARKETER: (MARKETING,),
    Role.ANALYST: (MARKETING,),
    Role.SALES: (SALES,),
    Role.COMPLIANCE: (),
}


@dataclass(frozen=True)
class HomeScope:
    """Who the home is for: ``org`` is None for a superuser's system health (every org)."""

    user: AbstractBaseUser
    org: Organization | None
    now: datetime

    @property
    def since(self) -> datetime:
        """The start of "this week": the last seven days, so Monday's home is not empty."""
        return self.now - WEEK


@dataclass(frozen=True)
class Stat:
    """One number with what it counts; ``tone`` ("warn", "bad") marks one that needs a look."""

    label: str
    value: int | str
    url: str | None = None
    tone: str = ""


@dataclass
class Panel:
    """A block of the home: numbers on top, then a table whose cells are (text, url or None)."""

    title: str
    stats: list[Stat] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    rows: list[list[tuple[object, str | None]]] = field(default_factory=list)
    empty: str = ""
    more: tuple[str, str] | None = None  # (label, url): the full list


@dataclass(frozen=True)
class HomeBlock:
    """A panel builder for one audience; ``order`` places it (lower first)."""

    name: str
    audience: str
    order: int
    build: Callable[[HomeScope], Panel | None]


_blocks: dict[str, HomeBlock] = {}


def home_block_register(block: HomeBlock) -> None:
    """Adds (or replaces, by name) a panel of the console's home. Apps call it in ``ready``."""
    _blocks[block.name] = block


def admin_url(name: str, *args, **filters) -> str | None:
    """The console URL ``admin:<name>`` with ``filters`` as its query string (None when the page
    is not installed)."""
    try:
        url = reverse(f"admin:{name}", args=args)
    except NoReverseMatch:
        return None
    return f"{url}?{urlencode(filters)}" if filters else url


def duration_text(seconds: float) -> str:
    """A wait as a person reads it: "0 s", "45 s", "12 min", "3 h 5 min", "2 d 4 h"."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours < 1:
        return f"{minutes} min"
    if days < 1:
        return f"{hours} h {minutes % 60} min" if minutes % 60 else f"{hours} h"
    return f"{days} d {hours % 24} h" if hours % 24 else f"{days} d"


def home_audiences(request: HttpRequest) -> tuple[str, ...]:
    """The audiences whose panels ``request.user`` sees in the current org."""
    if request.user.is_superuser:
        return (MARKETING, HEALTH) if getattr(request, "org", None) else (HEALTH,)
    membership = getattr(request, "membership", None)
    return AUDIENCES.get(membership.role, ()) if membership else ()


def home_panels(request: HttpRequest, *, now: datetime | None = None) -> list[Panel]:
    """The panels of the home for ``request``'s user, in order. Health is all orgs' for a
    superuser and the current org's for an org admin; the other panels are the current org's."""
    now = now or timezone.now()
    audiences = home_audiences(request)
    org = getattr(request, "org", None)
    panels = []
    for block in sorted(_blocks.values(), key=lambda b: (b.order, b.name)):
        if block.audience not in audiences:
            continue
        scope_org = None if block.audience == HEALTH and request.user.is_superuser else org
        if scope_org is None and not (block.audience == HEALTH and request.user.is_superuser):
            continue
        panel = block.build(HomeScope(user=request.user, org=scope_org, now=now))
        if panel is not None:
            panels.append(panel)
    return panels


# --- marketing's own panel: the dispatch backlog ---------------------------------------------------


def dispatch_panel(scope: HomeScope) -> Panel:
    """Dispatch batches (broadcasts and segment sends being split into messages) not done yet."""
    backlog = dispatch_backlog(org=scope.org)
    oldest = min((at for _n, at in backlog.values() if at), default=None)
    lag = age_seconds(scope.now, oldest)
    stats = [
        Stat(
            status.label,
            backlog[status][0],
            admin_url("marketing_dispatchbatch_changelist", status__exact=status.value),
            "warn" if backlog[status][0] else "",
        )
        for status in (DispatchBatch.Status.PENDING, DispatchBatch.Status.RUNNING)
    ]
    stats.append(Stat("Oldest waiting", duration_text(lag), tone="bad" if lag > 3600 else ""))
    return Panel(title="Dispatch backlog", stats=stats)


home_block_register(HomeBlock(name="marketing.dispatch", audience=HEALTH, order=320, build=dispatch_panel))
