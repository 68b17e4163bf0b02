"""Projected volume: what a workflow would do to a segment if every member started it now
(docs/workflows.md, "Projection").

A projection is, by definition, the sum of one dry run per member (``workflows.dry_run``),
started now, with no simulated events (every wait times out), every approval approved, and each
send step answered by the outbox's guards counting stored messages plus the run's own earlier
sends. The answer: how many contacts reach each step, how many messages would go out, how many
the guards would block (no consent, a suppressed address, no address) and hold (a frequency
cap, quiet hours).

Running a dry run per member does not scale to 100,000 contacts, so the projection walks the
definition set-based instead, when it can: the members are a query, filtered step by step
(a condition by its rule compiled with ``to_q`` at the step's time, a split by the same hash
the engine uses, computed in SQL), delays, waits and approvals move one clock that every member
shares, and each send step's guards are one grouped query in which the earlier send steps'
verdicts are columns (so a frequency cap counts the run's own earlier sends). Where the walk
cannot follow every member the same way — a rule that does not compile, a delay until a local
time (each contact's clock differs), parallel branches or loops — it runs the dry run for a
deterministic sample of the members instead and scales the sums up, stating the sample size.
"""

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import DecimalField, Func, QuerySet, TextField, Value
from django.db.models.functions import MD5, Cast, Concat
from django.db.models.lookups import GreaterThanOrEqual, LessThan
from django.utils import timezone

from marketing.conditions import NotCompilable, to_q
from marketing.models import Contact, Organization, Segment, SegmentMembership
from marketing.tenancy import org_context
from workflows import durations
from workflows.definitions import definition_errors, settings_of
from workflows.dry_run import DEFAULT_HORIZON, workflow_dry_run
from workflows.models import Workflow
from workflows.steps import DEFAULT_WAIT_TIMEOUT

DEFAULT_SAMPLE = 200
MAX_PATHS = 500  # distinct routes through the definition before the walk gives way to a sample
BLOCKS = ("consent", "suppression", "no_address")
HOLDS = ("frequency_cap", "quiet_hours")
TWO_64 = 2**64


def projection_definition(*, workflow: Workflow) -> tuple[dict, str]:
    """(definition, where it came from): the draft when it has steps — a marketer previews before
    publishing —, else the live version."""
    if (workflow.draft_definition or {}).get("steps") or workflow.live_version_id is None:
        return workflow.draft_definition or {}, "the draft"
    return workflow.live_version.definition, f"live version {workflow.live_version.number}"


def workflow_project(
    *,
    workflow: Workflow,
    segment: Segment,
    now: datetime | None = None,
    sample: int = DEFAULT_SAMPLE,
    definition: dict | None = None,
) -> dict:
    """The projected volume of ``workflow`` (its draft when it has one, else its live version;
    or ``definition``) over ``segment``'s members, all starting at ``now``:
    ``{"contacts", "steps": {id: n}, "sends", "blocked": {...}, "held": {...}, "sample_size"}``.
    ``sample_size`` is None when the figures are exact (set-based), else the number of members
    dry-run (at most ``sample``) whose sums were scaled up. Raises ValidationError on
    ``definition`` for a definition that cannot be published."""
    if definition is None:
        definition, _source = projection_definition(workflow=workflow)
    errors = definition_errors(definition, org=workflow.org)
    if errors:
        raise ValidationError({"definition": errors})
    if segment.org_id != workflow.org_id:
        raise ValidationError({"segment": ["No such segment in this workflow's organisation."]})
    now = now or timezone.now()
    org = workflow.org
    with org_context(org):
        members = Contact.objects.filter(
            org=org,
            pk__in=SegmentMembership.objects.filter(org=org, segment=segment, exited_at__isnull=True).values(
                "contact_id"
            ),
        )
        if connection.vendor == "postgresql":
            try:
                return _Walk(workflow=workflow, definition=definition, members=members, now=now).result()
            except NotCompilable:
                pass  # some member's way cannot be told in SQL: dry-run a sample instead
        return _sampled(workflow=workflow, definition=definition, members=members, now=now, sample=sample)


def _empty(definition: dict) -> dict:
    return {
        "contacts": 0,
        "steps": {step["id"]: 0 for step in definition["steps"]},
        "sends": 0,
        "blocked": dict.fromkeys(BLOCKS, 0),
        "held": dict.fromkeys(HOLDS, 0),
        "sample_size": None,
    }


def dry_run_tally(report: dict, totals: dict) -> None:
    """Adds one dry run's report to ``totals`` (a projection's shape): the steps it reached, and
    each send step's guard verdict."""
    for step_id in {item["step"] for item in report["path"] if item["step"]}:
        totals["steps"][step_id] = totals["steps"].get(step_id, 0) + 1
    for preview in report["actions"]:
        guard = preview["preview"].get("guard") if isinstance(preview["preview"], dict) else None
        if guard is None:
            continue
        if guard["verdict"] == "send":
            totals["sends"] += 1
        elif guard["verdict"] == "block":
            totals["blocked"][guard["kind"]] += 1
        else:
            totals["held"][guard["kind"]] += 1


def _sampled(*, workflow: Workflow, definition: dict, members: QuerySet, now: datetime, sample: int) -> dict:
    """A dry run for each of a deterministic sample of the members — the first ``sample`` in the
    order of the MD5 of their id, which follows no pattern of how contacts were made (every
    n-th id would, for contacts imported in a repeating order) —, the sums scaled by members /
    sample."""
    totals = _empty(definition)
    totals["contacts"] = members.count()
    chosen = list(
        members.order_by(MD5(Cast("pk", output_field=TextField())), "pk").values_list("pk", flat=True)[: max(1, sample)]
    )
    for contact in Contact.objects.filter(pk__in=chosen).select_related("company").order_by("pk"):
        report = workflow_dry_run(
            workflow=workflow, contact=contact, start=now, definition=definition, approve=True, checked=True
        )
        dry_run_tally(report, totals)
    factor = totals["contacts"] / len(chosen) if chosen else 0
    totals["steps"] = {step: round(n * factor) for step, n in totals["steps"].items()}
    totals["sends"] = round(totals["sends"] * factor)
    totals["blocked"] = {kind: round(n * factor) for kind, n in totals["blocked"].items()}
    totals["held"] = {kind: round(n * factor) for kind, n in totals["held"].items()}
    totals["sample_size"] = len(chosen)
    return totals


# -- the set-based walk -----------------------------------------------------------------------


class _SplitPoint(Func):
    """Where a contact falls in a split, as ``SplitStep`` computes it: the first 8 bytes of the
    SHA-256 of "workflow:step:contact" read as an unsigned integer (0 ≤ point < 2^64)."""

    template = (
        "mod(('x' || encode(substring(sha256(convert_to(%(expressions)s, 'UTF8')) from 1 for 8), 'hex'))"
        f"::bit(64)::bigint::numeric + {TWO_64}, {TWO_64})"
    )
    output_field = DecimalField()


@dataclass(frozen=True)
class _Send:
    """A send step passed on a route: its verdict is column ``v<index>`` of the guard query."""

    index: int
    action: str  # the registered action that sent it: its ``projection_guards`` counts the route
    channel: str
    purpose: str
    at: datetime
    destination: str | None


@dataclass
class _Route:
    """The members that take one route so far, the time they reach its end, and its sends."""

    members: QuerySet
    at: datetime
    sends: tuple[_Send, ...] = ()
    seen: frozenset = frozenset()
    count: int | None = None
    # Sends whose verdicts are not counted yet: counted together, in one query, when the
    # members change or the route ends (until then every one of them applies to all members).
    pending: tuple[_Send, ...] = ()

    def narrowed(self, members: QuerySet) -> "_Route":
        return replace(self, members=members, count=None)

    def size(self) -> int:
        if self.count is None:
            self.count = self.members.count()
        return self.count


@dataclass
class _Walk:
    workflow: Workflow
    definition: dict
    members: QuerySet
    now: datetime
    totals: dict = field(default_factory=dict)
    routes: int = 0
    sends: int = 0

    def result(self) -> dict:
        from workflows.actions import actions

        self.org: Organization = self.workflow.org
        self.steps = {step["id"]: step for step in self.definition["steps"]}
        self.settings = settings_of(self.definition)
        self.registry = actions()
        self.totals = _empty(self.definition)
        self.memo: dict = {}  # what the send actions' guards read once per projection
        first = _Route(members=self.members, at=self.now)
        self.totals["contacts"] = first.size()
        self._go(self.definition["steps"][0]["id"], first)
        return self.totals

    def _q(self, rule, at: datetime):
        return to_q(rule, "contact", org=self.org, now=at)

    def _flush(self, route: _Route) -> _Route:
        """Counts the verdicts of the route's pending sends for its members (one query)."""
        if not route.pending:
            return route
        if route.size():
            # The send actions share one implementation of the guards: the last send's counts them all.
            counts = self.registry[route.pending[-1].action].projection_guards(
                org=self.org, members=route.members, sends=route.sends, counted=route.pending, memo=self.memo
            )
            for send in route.pending:
                for verdict, count in counts[send.index].items():
                    if verdict == "send":
                        self.totals["sends"] += count
                    elif verdict in BLOCKS:
                        self.totals["blocked"][verdict] += count
                    else:
                        self.totals["held"][verdict] += count
        return replace(route, pending=())

    def _split_by(self, route: _Route, rule) -> tuple[_Route, _Route]:
        route = self._flush(route)
        holds = route.members.filter(self._q(rule, route.at))
        return route.narrowed(holds), route.narrowed(route.members.exclude(pk__in=holds.values("pk")))

    def _paused(self, route: _Route, until: datetime) -> _Route | None:
        """The route after a pause until ``until``: a woken run checks the goal and exit rules
        first, and a dry run stops at its horizon."""
        if until - self.now > DEFAULT_HORIZON:
            self._flush(route)
            return None
        route = replace(route, at=until)
        for name in ("goal", "exit"):
            if self.settings.get(name) is not None:
                route = self._split_by(route, self.settings[name])[1]
        return route

    def _go(self, step_id: str | None, route: _Route | None) -> None:
        if route is None:
            return
        if step_id is None:
            self._flush(route)
            return
        if step_id in route.seen:
            raise NotCompilable(f"steps[{step_id}]: a cycle")
        self.routes += 1
        if self.routes > MAX_PATHS:
            raise NotCompilable("too many routes through the definition")
        if route.size() == 0:
            return  # nobody comes this way
        self.totals["steps"][step_id] += route.size()
        route = replace(route, seen=route.seen | {step_id})
        step = self.steps[step_id]
        kind = step["type"]
        if kind == "action":
            route = self._send(step, route)
            self._go(step.get("next"), route)
        elif kind in ("condition", "goal"):
            rule = step["condition"] if kind == "condition" else step.get("condition", self.settings.get("goal"))
            holds, rest = self._split_by(route, rule)
            if kind == "condition":
                self._go(step["true_next"], holds)
            self._go(step["false_next"] if kind == "condition" else step.get("next"), rest)
        elif kind == "switch":
            for case in step["cases"]:
                holds, route = self._split_by(route, case["when"])
                self._go(case["next"], holds)
            self._go(step["default_next"], route)
        elif kind == "split":
            self._split(step, route)
        elif kind == "delay":
            config = step["config"]
            if "until_local_time" in config:
                raise NotCompilable(f"steps[{step_id}]: a delay until a local time ends at each contact's own time")
            if "duration" in config:
                until = durations.after(route.at, config["duration"])
            else:
                until = datetime.fromisoformat(config["until"])
                until = until if until.tzinfo else until.replace(tzinfo=route.at.tzinfo)
            self._go(step.get("next"), self._paused(route, until) if until > route.at else route)
        elif kind == "wait_for_event":  # no simulated events: every wait times out
            deadline = durations.after(route.at, step.get("timeout", DEFAULT_WAIT_TIMEOUT))
            self._go(step.get("timeout_next"), self._paused(route, deadline))
        elif kind == "approval":  # approved at once, after the pause a decision is
            self._go(step["approved_next"], self._paused(route, route.at))
        elif kind == "stop":
            self._flush(route)
        else:
            raise NotCompilable(f"steps[{step_id}]: a {kind} step")

    def _split(self, step: dict, route: _Route) -> None:
        route = self._flush(route)
        prefix = f"{self.workflow.pk}:{step['id']}:"
        total = sum(Decimal(str(b["weight"])) for b in step["branches"])
        point = _SplitPoint(Concat(Value(prefix), Cast("pk", output_field=TextField()))) * Value(total)
        low = Decimal(0)
        for index, branch in enumerate(step["branches"]):
            high = low + Decimal(str(branch["weight"]))
            members = route.members.filter(GreaterThanOrEqual(point, Value(low * TWO_64)))
            if index < len(step["branches"]) - 1:  # the last branch takes the rest, as in the engine
                members = members.filter(LessThan(point, Value(high * TWO_64)))
            self._go(branch["next"], route.narrowed(members))
            low = high

    def _send(self, step: dict, route: _Route) -> _Route:
        """The route with the step's message added, when its action sends one (asked of the action)."""
        action = self.registry.get(step["action"])
        message = action.projection_send(org=self.org, config=step.get("config", {})) if action else None
        if message is None:
            return route  # not a send, or nothing published: the step sends nothing
        self.sends += 1
        send = _Send(
            index=self.sends,
            action=step["action"],
            channel=message["channel"],
            purpose=message["purpose"],
            at=route.at,
            destination=message.get("destination"),
        )
        return replace(route, sends=(*route.sends, send), pending=(*route.pending, send))
