"""The execution engine: claims due instances in batches and runs their steps.

One transaction per batch (docs/workflows.md): due rows are locked with
``SELECT … FOR UPDATE SKIP LOCKED`` (ordered by ``wake_at``, a few hundred at a time), each
instance's tokens advance until they wait or end (at most ``MAX_STEPS`` steps a claim), and the
step runs, instance rows and finished-run records are written in bulk before the one commit.

Why the claim and the work share a transaction: a killed worker's connection drops, PostgreSQL
rolls the batch back, and its rows are due again at once, with nothing half-done — every write
an internal action makes (a tag, a field, an enrolment) commits with the step run that records
it or not at all, which is what makes it exactly-once in effect. The row locks are the lease; a
worker that hangs instead of dying is cut off by the connection's
``idle_in_transaction_session_timeout``. Side effects that leave the system go through
``Delivery`` rows (``workflows.deliveries``), sent after commit, outside any transaction.

Each instance runs inside a savepoint only around action code, so one action's database error
rolls back that action alone; the step then retries or fails as its policy says.
"""

import logging
import time
import traceback
from collections import defaultdict, deque
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta

from django.db import connection, reset_queries, transaction
from django.utils import timezone

from marketing.bulk_sql import insert_rows, update_rows
from marketing.conditions import contact_facts, evaluate, reads_names, truthy
from marketing.database_roles import system_role
from marketing.models import Contact, Organization
from marketing.tenancy import org_context
from workflows import steps as step_kinds
from workflows.actions import ActionContext, Deferred, PermanentError, RetryableError, actions
from workflows.definitions import settings_of
from workflows.metrics import step_runs_count
from workflows.models import (
    Approval,
    AutomationExecution,
    Delivery,
    InstanceStatus,
    Workflow,
    WorkflowInstance,
    WorkflowStepRun,
    WorkflowVersion,
)
from workflows.steps import Finish, Fork, Go, StepError, Wait

logger = logging.getLogger(__name__)

BATCH = 500
MAX_FEED = 50  # transitions per workflow per batch sent to the live feed (the counts carry the rest)
MAX_STEPS = 100  # per instance per claim: a long chain of instant steps yields to the others
DELIVERY_WAIT = timedelta(hours=6)  # a safety wake; the sender wakes the run when it is done
INSTANCE_FIELDS = [
    "status",
    "current_step",
    "wake_at",
    "waits_for_event",
    "tokens",
    "context",
    "visits",
    "started_at",
    "finished_at",
    "result",
    "error",
    "updated_at",
]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _version(version_id: int) -> tuple[dict, dict, dict]:
    """(definition, steps by id, settings) of a version."""
    definition = WorkflowVersion.objects.with_scopes_disabled().values_list("definition", flat=True).get(pk=version_id)
    return definition, {s["id"]: s for s in definition["steps"]}, settings_of(definition)


def move_targets(
    *, occupied: dict[int, set[str]], old_steps: dict[int, dict], new_steps: dict, step_map: dict, number: int
) -> tuple[dict[int, dict[str, str]], list[str]]:
    """Where each occupied step of each older version goes in version ``number``, and what stops
    the move: a removed step without a target, a target that is not a step, a target of
    another type (a waiting token keeps its wait, which only a step of its type understands).

    ``occupied`` maps a version id to the steps its running instances have tokens at,
    ``old_steps`` a version id to its steps by id; a step absent from ``step_map`` keeps its id.
    """
    targets: dict[int, dict[str, str]] = {}
    problems: list[str] = []
    removed: set[str] = set()
    for version_id, step_ids in sorted(occupied.items()):
        for step_id in sorted(step_ids):
            target = step_map.get(step_id, step_id)
            old_type = old_steps[version_id].get(step_id, {}).get("type")
            new = new_steps.get(target)
            if new is None:
                if step_id in step_map:
                    problems.append(f"“{step_id}” cannot move to “{target}”: version {number} has no such step.")
                else:
                    removed.add(step_id)
            elif new["type"] != old_type:
                problems.append(
                    f"“{step_id}” is a {old_type} step where runs wait, but “{target}” in version {number} is a "
                    f"{new['type']} step: choose a {old_type} step for it."
                )
            else:
                targets.setdefault(version_id, {})[step_id] = target
    if removed:
        listed = ", ".join(f"“{s}”" for s in sorted(removed))
        problems.insert(0, f"Runs wait at steps that version {number} removed; choose where they go: {listed}.")
    return targets, list(dict.fromkeys(problems))


def tokens_move(instance: WorkflowInstance, *, targets: dict[str, str], version_id: int, record: dict) -> list:
    """Moves ``instance`` (in memory) to another version: its tokens' steps per ``targets``, with
    their waits, wake times and attempts as they are. Returns the (old, new) step pairs moved.

    Visit counters carry over, and a token that changes step gets the next visit of its new
    step, so the idempotency keys (instance:step:visit) of what runs after never repeat one.
    """
    pairs = []
    for token in instance.tokens:
        old, new = token["step"], targets[token["step"]]
        if new == old:
            continue
        token["step"] = new
        if token.get("visit") is not None:
            instance.visits[new] = instance.visits.get(new, 0) + 1
            token["visit"] = instance.visits[new]
        pairs.append((old, new))
    if instance.tokens:
        instance.current_step = instance.tokens[0]["step"]
    instance.version_id = version_id
    instance.migrate_to = None
    instance.moves = [*instance.moves, record]
    return pairs


def approvals_move(instance_ids: list[int], pairs: set[tuple[str, str]]) -> None:
    """Open approvals follow their tokens to the new step ids."""
    for old, new in sorted(pairs):
        Approval.objects.with_scopes_disabled().filter(
            instance_id__in=instance_ids, status=Approval.Status.PENDING, step_id=old
        ).update(step_id=new)


def _deferred_moves(instances: list[WorkflowInstance], batch: "Batch") -> None:
    """Applies the moves a publish left on rows a batch held, before their steps run. A run
    whose tokens went on meanwhile to a step the map does not cover stays on its version (the
    record says why)."""
    for instance in instances:
        move = instance.migrate_to
        if not move:
            continue
        version_id, number = move["version"], move.get("number")
        for needed in (version_id, instance.version_id):
            if needed not in batch.versions:
                batch.versions[needed] = _version(needed)
        old_steps, new_steps = batch.versions[instance.version_id][1], batch.versions[version_id][1]
        targets, problems = move_targets(
            occupied={instance.version_id: {t["step"] for t in instance.tokens}},
            old_steps={instance.version_id: old_steps},
            new_steps=new_steps,
            step_map=move.get("map") or {},
            number=number,
        )
        record = {
            "from": instance.version_id,
            "to": version_id,
            "number": number,
            "map": move.get("map") or {},
            "by": move.get("by"),
            "at": iso(batch.now),
        }
        if problems:
            instance.migrate_to = None
            instance.moves = [*instance.moves, {**record, "skipped": " ".join(problems)}]
            batch.moved.append(instance)
            continue
        targets = targets.get(instance.version_id, {})
        pairs = tokens_move(instance, targets=targets, version_id=version_id, record=record)
        approvals_move([instance.pk], set(pairs))
        batch.moved.append(instance)


class Batch:
    """What one claimed batch writes at its end, and publishes after commit."""

    def __init__(self, now: datetime):
        self.now = now
        self.step_runs: list[dict] = []  # rows for insert_rows: no model instances, thousands a batch
        self.executions: list[dict] = []
        # Per workflow: the last few transitions (what the live feed shows) and how many in all.
        self.transitions: dict[int, deque] = defaultdict(lambda: deque(maxlen=MAX_FEED))
        self.transition_totals: dict[int, int] = defaultdict(int)
        self.deliveries: list[int] = []
        self.versions: dict[int, tuple[dict, dict, dict]] = {}  # read once per batch
        self.moved: list[WorkflowInstance] = []  # moved to a newer version at this claim

    def write(self, instances: list[WorkflowInstance]) -> None:
        insert_rows(WorkflowStepRun, self.step_runs)
        step_runs_count(self.step_runs)  # by outcome, once the batch commits
        insert_rows(AutomationExecution, self.executions)
        for instance in instances:
            instance.updated_at = self.now
        update_rows(instances, INSTANCE_FIELDS)
        if self.moved:  # rare: not worth three more columns on every row of every batch
            update_rows(self.moved, ["version", "migrate_to", "moves"])

    def after_commit(self) -> None:
        from marketing.celery import enqueue_on_commit
        from workflows.live_status import transitions_publish
        from workflows.tasks import deliveries_send

        if self.transitions:
            feed = {workflow_id: list(items) for workflow_id, items in self.transitions.items()}
            totals = dict(self.transition_totals)
            transaction.on_commit(lambda: transitions_publish(feed, totals), robust=True)
        if self.deliveries:
            enqueue_on_commit(deliveries_send, delivery_ids=list(self.deliveries))


class Run:
    """One instance's advance within a batch (or a dry run's, with ``dry_run=True``)."""

    def __init__(
        self,
        instance: WorkflowInstance,
        *,
        contact: Contact,
        now: datetime,
        batch: Batch,
        dry_run: bool = False,
        definition: dict | None = None,
    ):
        self.instance, self.contact, self.now, self.batch, self.dry_run = instance, contact, now, batch, dry_run
        if definition is None:
            if instance.version_id not in batch.versions:
                batch.versions[instance.version_id] = _version(instance.version_id)
            self.definition, self.steps, self.settings = batch.versions[instance.version_id]
        else:
            self.definition, self.steps, self.settings = (
                definition,
                {s["id"]: s for s in definition["steps"]},
                settings_of(definition),
            )
        self.now_iso = iso(now)
        self.token: dict = {}
        self.budget = MAX_STEPS
        self._facts: dict | None = None
        self.trace: list[dict] = []  # a dry run's path
        self.parked: set[str] = set()  # tokens that began to wait during this advance

    # -- what steps use ----------------------------------------------------------------------

    @property
    def time_zone(self) -> str:
        return self.contact.time_zone or self.instance.org.default_time_zone

    @staticmethod
    def iso(moment: datetime) -> str:
        return iso(moment)

    def facts(self, *, names: bool = False) -> dict:
        """The contact's facts (docs/conditions.md) with the run's ``workflow`` namespace; tags and
        lists (two queries) only when a rule reads them."""
        if self._facts is None:
            self._facts = contact_facts(self.contact, names=False)
        if names and "tags" not in self._facts:
            named = contact_facts(self.contact, names=True)
            self._facts.update(tags=named["tags"], lists=named["lists"])
        context = self.instance.context
        self._facts["workflow"] = {
            "trigger": context.get("trigger", {}),
            "vars": context.get("vars", {}),
            "steps": context.get("steps", {}),
        }
        return self._facts

    def holds(self, rule) -> bool:
        return truthy(evaluate(rule, self.facts(names=reads_names(rule)), contact=self.contact, now=self.now))

    def key(self) -> str:
        return f"{self.instance.pk}:{self.token['step']}:{self.token['visit']}"

    # -- advancing ---------------------------------------------------------------------------

    def advance(self) -> None:
        """Moves every due token as far as it goes now."""
        instance = self.instance
        starting = instance.status == InstanceStatus.PENDING
        if starting:
            instance.started_at = self.now
        instance.status = InstanceStatus.WAITING
        try:
            if not starting:
                self._check_exit_rules()
            progressed = True
            while progressed and instance.tokens and instance.finished_at is None:
                progressed = False
                for token in list(instance.tokens):
                    if instance.finished_at is not None or token not in instance.tokens:
                        break
                    if token["id"] not in self.parked and self._due(token):
                        self._drive(token)
                        progressed = progressed or self._due_any()
                if self.budget <= 0:
                    break
        except StepError as exc:
            self._fail(str(exc))
        except Exception as exc:  # a bug or a rule that cannot evaluate: fail this run, not the batch
            logger.exception("workflow step crashed instance=%s step=%s", instance.pk, self.token.get("step"))
            self._fail(f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}")
        self._settle()

    def _due(self, token: dict) -> bool:
        wait = token.get("wait") or {}
        if wait.get("kind") == "merge":
            return False  # the last branch to arrive moves it
        if wait.get("kind") in ("approval", "delivery"):
            return True  # the run was woken: the step looks up its record (a decision, a result)
        wake = token.get("wake_at")
        return wake is None or datetime.fromisoformat(wake) <= self.now or bool(wait.get("arrived"))

    def _due_any(self) -> bool:
        return self.budget > 0 and any(t["id"] not in self.parked and self._due(t) for t in self.instance.tokens)

    def _check_exit_rules(self) -> None:
        # Goal and exit rules are checked on every event (workflows.consumers); a woken run
        # checks them too, so a delay that ends after the goal was met does not go on.
        for name, result in (("goal", "goal_reached"), ("exit", "exited")):
            if self.settings.get(name) is not None and self.holds(self.settings[name]):
                self._finish(result, f"the {name} rule holds")
                return

    def _drive(self, token: dict) -> None:
        self.token = token
        while self.budget > 0 and self.instance.finished_at is None:
            step = self.steps[token["step"]]
            if token.get("visit") is None:
                visits = self.instance.visits
                visits[step["id"]] = visits.get(step["id"], 0) + 1
                token.update(visit=visits[step["id"]], entered_at=self.now_iso, attempt=1, wait=None, wake_at=None)
            self.budget -= 1
            outcome = step_kinds.step_types()[step["type"]].run(self, step)
            if isinstance(outcome, Wait):
                token["wait"], token["wake_at"] = outcome.wait, iso(outcome.until) if outcome.until else None
                self.parked.add(token["id"])
                self._trace(step, "wait", outcome.wait)
                return
            if isinstance(outcome, Finish):
                self._record(step, outcome=outcome.reason or outcome.result, next_step="")
                self._finish(outcome.result, outcome.reason)
                return
            if isinstance(outcome, Fork):
                self._record(step, output={"branches": outcome.targets}, next_step=",".join(outcome.targets))
                groups = [*token.get("groups", []), f"{step['id']}:{token['visit']}"]
                for index, target in enumerate(outcome.targets[1:], start=2):
                    self.instance.tokens.append({"id": f"{token['id']}.{index}", "step": target, "groups": groups})
                token.update(step=outcome.targets[0], visit=None, groups=groups)
                continue
            self._record(step, output=outcome.output, next_step=outcome.target or "", edge=outcome.edge)
            if outcome.target is None:
                self.instance.tokens.remove(token)
                if not self.instance.tokens:
                    self._finish("completed")
                return
            token.update(step=outcome.target, visit=None)
        if self.budget <= 0 and token in self.instance.tokens:
            token["wake_at"] = iso(self.now)  # go on at the next claim

    def merge(self, step: dict) -> Go | Wait:
        token, tokens = self.token, self.instance.tokens
        group = (token.get("groups") or [None])[-1]
        siblings = [t for t in tokens if t is not token and group is not None and group in t.get("groups", [])]
        arrived = [t for t in siblings if t.get("step") == step["id"] and (t.get("wait") or {}).get("kind") == "merge"]
        if step["mode"] == "any" or len(arrived) == len(siblings):
            for sibling in siblings:
                tokens.remove(sibling)
            token["groups"] = token.get("groups", [])[:-1]
            return Go(step.get("next"), {"merged": len(siblings) + 1, "mode": step["mode"]})
        return Wait(None, {"kind": "merge"})

    # -- actions -----------------------------------------------------------------------------

    def run_action(self, step: dict):
        token = self.token
        wait = token.get("wait") or {}
        if wait.get("kind") == "delivery":
            return self._delivery_outcome(step, wait)
        action = actions()[step["action"]]
        ctx = ActionContext(
            org=self.instance.org,
            contact=self.contact,
            instance=self.instance,
            step_id=step["id"],
            idempotency_key=self.key(),
            config=step.get("config", {}),
            now=self.now,
            dry_run=self.dry_run,
            facts=self.facts(),
        )
        if self.dry_run:
            return Go(step.get("next"), {"dry_run": action.preview(ctx)})
        try:
            # A savepoint only where the action writes: a failed write then rolls back alone
            # (a round trip each way, which actions that only compute do not pay).
            with transaction.atomic() if action.writes_database else nullcontext():
                result = action.run(ctx)
                if isinstance(result, Deferred):
                    delivery, _ = Delivery.objects.get_or_create(
                        idempotency_key=ctx.idempotency_key,
                        defaults={
                            "org": self.instance.org,
                            "instance": self.instance,
                            "step_id": step["id"],
                            "action": action.name,
                            "request": result.request,
                            "max_attempts": result.max_attempts,
                        },
                    )
                    self.batch.deliveries.append(delivery.pk)
                    return Wait(self.now + DELIVERY_WAIT, {"kind": "delivery", "key": ctx.idempotency_key})
        except RetryableError as exc:
            return self._retry_or_fail(step, str(exc))
        except (PermanentError, StepError) as exc:
            return self._error_edge(step, str(exc))
        except Exception as exc:  # an action's bug: its savepoint is rolled back; retry per policy
            logger.exception("action crashed instance=%s step=%s", self.instance.pk, step["id"])
            return self._retry_or_fail(step, f"{type(exc).__name__}: {exc}")
        return Go(step.get("next"), result if isinstance(result, dict) else {"result": result})

    def _delivery_outcome(self, step: dict, wait: dict):
        delivery = Delivery.objects.filter(idempotency_key=wait["key"]).only("status", "response", "error").first()
        if delivery is None or delivery.status == Delivery.Status.FAILED:
            return self._error_edge(step, delivery.error if delivery else "the delivery record is gone")
        if delivery.status == Delivery.Status.SENT:
            return Go(step.get("next"), delivery.response)
        return Wait(self.now + DELIVERY_WAIT, wait)

    def _retry_or_fail(self, step: dict, error: str):
        attempt = self.token.get("attempt", 1)
        if attempt >= step_kinds.max_attempts(step):
            return self._error_edge(step, f"{error} (after {attempt} attempts)")
        self._record(step, status=WorkflowStepRun.Status.RETRYING, error=error)
        self.token["attempt"] = attempt + 1
        return Wait(self.now + step_kinds.backoff(step, attempt), {"kind": "retry", "error": error[:500]})

    def _error_edge(self, step: dict, error: str):
        if "on_error" in step:
            return Go(step["on_error"], {"error": error[:2000]}, "on_error")
        raise StepError(error)

    # -- approvals ---------------------------------------------------------------------------

    def approval_request(self, step: dict, due: datetime) -> int | None:
        if self.dry_run:
            return None
        approval, _ = Approval.objects.get_or_create(
            idempotency_key=self.key(),
            defaults={
                "org": self.instance.org,
                "instance": self.instance,
                "step_id": step["id"],
                "approvers": step["approvers"],
                "due_at": due,
            },
        )
        return approval.pk

    def approval_decision(self, approval_id: int | None) -> str | None:
        if self.dry_run or approval_id is None:
            return (self.dry_run and "approved") or None
        status = Approval.objects.filter(pk=approval_id).values_list("status", flat=True).first()
        return status if status in ("approved", "rejected") else None

    def approval_expire(self, approval_id: int | None) -> None:
        if approval_id and not self.dry_run:
            Approval.objects.filter(pk=approval_id, status=Approval.Status.PENDING).update(
                status=Approval.Status.EXPIRED
            )

    # -- records -----------------------------------------------------------------------------

    def _record(
        self,
        step: dict,
        *,
        output: dict | None = None,
        next_step: str = "",
        edge: str = "",
        status: str = WorkflowStepRun.Status.COMPLETED,
        error: str = "",
        outcome: str = "",
    ) -> None:
        token, instance = self.token, self.instance
        entered_at = token.get("entered_at")
        entered = self.now if entered_at in (None, self.now_iso) else datetime.fromisoformat(entered_at)
        if status == WorkflowStepRun.Status.COMPLETED:
            instance.context.setdefault("steps", {})[step["id"]] = {"result": output or {}}
        self._trace(step, edge or status, output or {"error": error} if error else output or {}, next_step=next_step)
        if self.dry_run:
            return
        self.batch.step_runs.append(
            {
                "org_id": instance.org_id,
                "instance_id": instance.pk,
                "workflow_id": instance.workflow_id,
                "step_id": step["id"],
                "step_type": step["type"],
                "visit": token.get("visit") or 1,
                "attempt": token.get("attempt", 1),
                "idempotency_key": self.key(),
                "status": status,
                "started_at": entered,
                "completed_at": self.now,
                "duration_ms": max(0, int((self.now - entered).total_seconds() * 1000)),
                "input": {},
                "output": output or {},
                "error": error[:5000],
                "next_step": next_step[:100] or outcome[:100],
            }
        )
        self._transition(step["id"], next_step, status)

    def _transition(self, step_id: str, to: str, status: str, result: str = "") -> None:
        instance = self.instance
        self.batch.transition_totals[instance.workflow_id] += 1
        self.batch.transitions[instance.workflow_id].append(
            {
                "instance": instance.pk,
                "contact": instance.contact_id,
                "step": step_id,
                "to": to,
                "status": status,
                "result": result,
                "at": self.now_iso,
            }
        )

    def _trace(self, step: dict, decision: str, detail: dict, *, next_step: str | None = None) -> None:
        if self.dry_run:
            self.trace.append(
                {
                    "at": iso(self.now),
                    "step": step["id"],
                    "type": step["type"],
                    "decision": decision,
                    "detail": detail,
                    "next": next_step,
                }
            )

    def _finish(self, result: str, reason: str = "") -> None:
        instance = self.instance
        instance.tokens = []
        instance.finished_at = self.now
        instance.result = result
        failed = result == WorkflowInstance.Result.FAILED
        instance.status = InstanceStatus.FAILED if failed else InstanceStatus.COMPLETED
        if reason and failed:
            instance.error = reason[:10000]
        if self.dry_run:
            self.trace.append(
                {"at": iso(self.now), "step": None, "type": "end", "decision": result, "detail": {"reason": reason}}
            )
            return
        started = instance.started_at or self.now
        self.batch.executions.append(
            {
                "org_id": instance.org_id,
                "workflow_id": instance.workflow_id,
                "instance_id": instance.pk,
                "contact_id": instance.contact_id,
                "status": "failure" if failed else "success",
                "result": result,
                "started_at": started,
                "finished_at": self.now,
                "error": instance.error[:5000],
                "duration_ms": max(0, int((self.now - started).total_seconds() * 1000)),
            }
        )
        self._transition(instance.current_step, "", instance.status, result)

    def _fail(self, error: str) -> None:
        step = self.steps.get(self.token.get("step", ""))
        if step is not None:
            self._record(step, status=WorkflowStepRun.Status.FAILED, error=error)
        failed_step = self.token.get("step", "")
        self.instance.error = error[:10000]
        self._finish(WorkflowInstance.Result.FAILED, error)
        # Kept so "retry from the failed step" knows where to start again.
        self.instance.current_step = failed_step

    def _settle(self) -> None:
        instance = self.instance
        if instance.finished_at is not None:
            instance.wake_at = None
            instance.waits_for_event = False
            return
        tokens = instance.tokens
        instance.current_step = tokens[0]["step"] if tokens else ""
        wakes = [datetime.fromisoformat(t["wake_at"]) for t in tokens if t.get("wake_at")]
        instance.wake_at = min(wakes) if wakes else None
        instance.waits_for_event = any((t.get("wait") or {}).get("kind") == "event" for t in tokens) or bool(
            self.settings.get("goal") or self.settings.get("exit")
        )


def instances_advance_due(*, limit: int = BATCH, budget_s: float = 20.0, now: datetime | None = None) -> int:
    """Claims and runs batches of due instances until none are left (or ``budget_s`` passes);
    returns how many instances were advanced."""
    total, started = 0, time.monotonic()
    while True:
        advanced = advance_batch(limit=limit, now=now)
        total += advanced
        if advanced < limit or time.monotonic() - started > budget_s:
            return total


def advance_batch(*, limit: int = BATCH, now: datetime | None = None) -> int:
    """One claim: locks up to ``limit`` due instances, advances them, writes and commits."""
    reset_queries()  # DEBUG keeps every statement of a connection; a worker is not a request
    with transaction.atomic():
        now = now or timezone.now()
        if connection.vendor == "postgresql":
            # Walk the due index in wake_at order and stop at the limit. A bitmap scan (the
            # planner's pick on young statistics) would visit every stale entry that finished
            # runs left behind, on every claim; an index scan marks them dead as it passes.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL enable_bitmapscan = off")
        # Claimed across orgs as the system role (a worker acting as app: docs/tenancy.md); each
        # org's runs then go as app, in that org's context, in this same transaction.
        with system_role():
            instances = list(
                WorkflowInstance.objects.with_scopes_disabled()
                .filter(status__in=[InstanceStatus.PENDING, InstanceStatus.WAITING], wake_at__lte=now)
                .order_by("wake_at")
                .select_for_update(skip_locked=True, of=("self",))[:limit]
            )
            if not instances:
                return 0
            batch = Batch(now)
            contacts = (
                Contact.objects.with_scopes_disabled()
                .select_related("company")
                .in_bulk({i.contact_id for i in instances})
            )
            orgs = Organization.objects.in_bulk({i.org_id for i in instances})
            workflows = Workflow.objects.with_scopes_disabled().in_bulk({i.workflow_id for i in instances})
            by_org: dict[int, list[WorkflowInstance]] = defaultdict(list)
            for instance in instances:
                instance.org, instance.workflow = orgs[instance.org_id], workflows[instance.workflow_id]
                by_org[instance.org_id].append(instance)
            _deferred_moves(instances, batch)
        for org_id, group in by_org.items():
            with org_context(orgs[org_id]):
                for instance in group:
                    Run(instance, contact=contacts[instance.contact_id], now=now, batch=batch).advance()
        # The batch's rows are written together, across the batch's orgs: as the system role.
        with system_role():
            batch.write(instances)
        batch.after_commit()
    return len(instances)
