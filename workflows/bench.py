"""Benchmark scenario ``engine`` for ``python manage.py bench`` (registered with ``@scenario``).

It runs the workflow engine the way production does — Celery worker processes fed by a real
``celery beat`` (the DatabaseScheduler and its system job "workflows: run due instances") and by
the enrolments' own on-commit tasks — and measures it from the rows the engine writes
(docs/bench.md, "engine", explains each figure).
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.utils import timezone

from marketing.bench import Scenario, scenario
from marketing.models import Organization, PropertyDefinition
from marketing.tenancy import org_context

STEPS = 5  # step runs per instance: condition, set_variable, log, delay, split
COUNTRIES = ["DE", "FR", "US", "GB", "BR", "JP", "IN", "ES", "NL", "CA"]


def definition(delay: dict) -> dict:
    """The bench workflow: condition → set_variable → log → delay → A/B split (5 step runs)."""
    return {
        "trigger": {"type": "manual"},
        "steps": [
            {
                "id": "plan",
                "type": "condition",
                "condition": {"==": [{"var": "properties.plan"}, "pro"]},
                "true_next": "remember",
                "false_next": "remember",
            },
            {
                "id": "remember",
                "type": "action",
                "action": "set_variable",
                "config": {"name": "plan", "value_from": "properties.plan"},
                "next": "note",
            },
            {
                # Workers run with LOG_LEVEL=WARNING, so the line costs a level check, not a write.
                "id": "note",
                "type": "action",
                "action": "log",
                "config": {"message": "bench", "level": "info"},
                "next": "wait",
            },
            {"id": "wait", "type": "delay", "config": delay, "next": "ab"},
            {
                "id": "ab",
                "type": "split",
                "branches": [{"name": "A", "weight": 50, "next": None}, {"name": "B", "weight": 50, "next": None}],
            },
        ],
    }


def role_urls(app_role: str, system_role: str) -> dict:
    """``DATABASE_URL`` and ``SYSTEM_DATABASE_URL`` for worker processes that log in as this
    process does and act as ``app_role`` (default alias) and ``system_role`` (system alias)."""
    from urllib.parse import quote

    db = connection.settings_dict
    login = quote(db["USER"]) + (f":{quote(str(db['PASSWORD']))}" if db.get("PASSWORD") else "")
    base = f"postgres://{login}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return {
        "DATABASE_URL": f"{base}?options={quote(f'-c role={app_role}')}",
        "SYSTEM_DATABASE_URL": f"{base}?options={quote(f'-c role={system_role}')}",
    }


class Processes:
    """The worker and beat subprocesses of one bench run, with their logs and peak memory."""

    def __init__(self, *, workers: int, log_dir: Path, env: dict | None = None):
        self.log_dir = log_dir
        self.extra_env = env or {}
        self.workers: list[subprocess.Popen] = []
        self.beat: subprocess.Popen | None = None
        self.peak_rss: dict[int, int] = {}
        self.count = workers

    def _env(self) -> dict:
        # Workers run as in production: with DEBUG on, Django keeps the last 9,000 SQL statements
        # of each connection, and an engine batch's insert carries ~1 MB of JSON (RSS grew to
        # 460 MB at 100,000 contacts).
        return {
            **os.environ,
            "DEBUG": "false",
            "SECRET_KEY": settings.SECRET_KEY,
            # The keys DEBUG=false requires, as this process has them (docs/encryption.md).
            "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
            "FIELD_INDEX_KEY": settings.FIELD_INDEX_KEY,
            "ERASURE_HASH_KEY": ",".join(settings.ERASURE_HASH_KEY),
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }

    def _start(self, args: list[str], log: Path) -> subprocess.Popen:
        handle = log.open("w")
        return subprocess.Popen(  # noqa: S603  our own interpreter and fixed arguments
            [sys.executable, "-m", "celery", "-A", "marketing", *args],
            cwd=settings.BASE_DIR,
            env=self._env(),
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start(self) -> None:
        from marketing.celery import app

        app.control.purge()  # a previous run's leftover ticks would only find nothing to do
        for index in range(self.count):
            self.workers.append(
                self._start(
                    [
                        "worker",
                        "--pool",
                        "solo",
                        "--hostname",
                        f"bench-engine-{index}@%h",
                        "--without-gossip",
                        "--without-mingle",
                        "--loglevel",
                        "warning",
                    ],
                    self.log_dir / f"worker-{index}.log",
                )
            )
        schedule = self.log_dir / "beat-schedule"
        self.beat = self._start(
            ["beat", "--loglevel", "warning", "--schedule", str(schedule)],
            self.log_dir / "beat.log",
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self.check()
            replies = app.control.ping(timeout=0.5)
            if len(replies) >= self.count:
                return
        raise CommandError("the Celery workers did not answer a ping within 60 s; see " + str(self.log_dir))

    def check(self) -> None:
        for proc in [*self.workers, self.beat]:
            if proc is not None and proc.poll() is not None:
                raise CommandError(f"a Celery process exited early (code {proc.returncode}); see {self.log_dir}")

    def sample_rss(self) -> None:
        import psutil

        for proc in self.workers:
            try:
                tree = psutil.Process(proc.pid)
                rss = tree.memory_info().rss + sum(c.memory_info().rss for c in tree.children(recursive=True))
            except psutil.NoSuchProcess:
                continue
            self.peak_rss[proc.pid] = max(self.peak_rss.get(proc.pid, 0), rss)

    def stop(self) -> None:
        for proc in [self.beat, *self.workers]:
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in [self.beat, *self.workers]:
            if proc is None:
                continue
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def errors(self) -> int:
        """Tracebacks and integrity errors the workers and beat logged."""
        count = 0
        for log in self.log_dir.glob("*.log"):
            text = log.read_text(errors="replace")
            count += text.count("Traceback") + text.count("IntegrityError")
        return count


class Watch:
    """Polls the run: instances finished, delay steps as they become visible (committed)."""

    def __init__(self, workflow_id: int):
        self.workflow_id = workflow_id
        self.seen: set[int] = set()
        self.committed_lags: list[float] = []
        self.low = 0
        self.history: list[tuple[float, int]] = []  # (monotonic time, max id) for the low-water mark

    def finished(self) -> tuple[int, int]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'failed') "
                "FROM workflows_workflowinstance WHERE workflow_id = %s",
                [self.workflow_id],
            )
            return cursor.fetchone()

    def delays(self) -> None:
        """Delay step runs committed since the last poll: the lag from their ``until`` to now.

        Rows are fetched above a low-water mark (the highest id seen 5 s ago), because two
        workers commit out of id order; ``seen`` drops the repeats."""
        now_wall = datetime.now(UTC)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, output ->> 'until' FROM workflows_workflowsteprun "
                "WHERE workflow_id = %s AND step_id = 'wait' AND id > %s",
                [self.workflow_id, self.low],
            )
            rows = cursor.fetchall()
        top = self.low
        for pk, until in rows:
            top = max(top, pk)
            if pk not in self.seen:
                self.seen.add(pk)
                self.committed_lags.append((now_wall - datetime.fromisoformat(until)).total_seconds())
        mono = time.monotonic()
        self.history.append((mono, top))
        while self.history and self.history[0][0] < mono - 5:
            self.low = max(self.low, self.history.pop(0)[1])


def _pct(samples: list[float], pct: float) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))], 3)


@scenario
class EngineScenario(Scenario):
    """The workflow engine under load, with real Celery workers and beat: N contacts run a
    5-step workflow (condition, set_variable, log, a delay that expires, an A/B split),
    enrolled at a steady rate (steps/s, wake lag); then N delays expiring at one instant (drain
    time); and the raw ceiling of the same claims and writes in plain SQL (vs_raw)."""

    name = "engine"
    help = "Workflow engine: steps/s, wake lag p50/p99, worker RSS, burst drain, vs raw SQL (PostgreSQL + Redis)."
    org_slug = "bench-engine"
    org_name = "Bench (engine)"
    org_tables = (  # what the engine writes, child tables first; then the workflow and its contacts
        "workflows_workflowsteprun",
        "workflows_automationexecution",
        "workflows_delivery",
        "workflows_approval",
        "workflows_workflowinstance",
        "workflows_workflowversion",
        "workflows_workflow",
        "marketing_contact",
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--contacts", type=int, default=100_000, help="Contacts enrolled (default 100000).")
        parser.add_argument(
            "--rate",
            type=int,
            default=250,
            help="Enrolments per second in the steady phase (default 250, i.e. 1,250 steps/s offered).",
        )
        parser.add_argument("--delay", type=int, default=10, help="The delay step's duration, seconds (default 10).")
        parser.add_argument("--workers", type=int, default=2, help="Celery worker processes (default 2).")
        parser.add_argument(
            "--burst", type=int, default=None, help="Delays expiring at one instant (default: --contacts; 0 skips)."
        )
        parser.add_argument("--keep", action="store_true", help="Keep the bench org's data afterwards.")
        parser.add_argument(
            "--rls",
            action="store_true",
            help="Run the burst again with workers acting as the app role (row-level security; the roles of "
            "db_roles) and print both drains and the ratio.",
        )
        parser.add_argument(
            "--app-role", default="marketing_app", help="The app role of --rls (default marketing_app)."
        )
        parser.add_argument(
            "--system-role", default="marketing_system", help="The system role of --rls (default marketing_system)."
        )

    def run(self, *, options: dict, progress) -> Iterator[dict]:
        from marketing.bench import rls_roles

        roles = rls_roles(options) if options["rls"] else None
        if connection.vendor != "postgresql" or settings.EMBEDDED:
            raise CommandError(
                "bench engine needs PostgreSQL and Redis (DATABASE_URL=postgres://… REDIS_URL=redis://…): "
                "it starts Celery workers and beat as separate processes that share the database and broker."
            )
        n, burst = options["contacts"], options["burst"]
        burst = n if burst is None else burst
        org = self.org_fresh()
        self._contacts(org, max(n, burst), progress)
        raw = self._raw(min(max(n, 20_000), 50_000), progress)
        figures: dict = {"contacts": n, "rate_per_s": options["rate"], "delay_s": options["delay"]}
        figures.update(workers=options["workers"], burst=burst)
        log_dir = Path(tempfile.mkdtemp(prefix="bench-engine-"))
        procs = Processes(workers=options["workers"], log_dir=log_dir)
        try:
            procs.start()
            with org_context(org):
                figures.update(self._steady(org, n, options, procs, progress))
                if burst:
                    figures.update(self._burst(org, burst, figures["steps_per_s"], procs, progress))
        finally:
            procs.stop()
        if roles and burst:
            # The same burst, the workers acting as the app role: each org's work under its
            # policies, the claims as the login (workflows.engine.advance_batch, system_role).
            rls_procs = Processes(workers=options["workers"], log_dir=log_dir / "rls", env=role_urls(*roles))
            (log_dir / "rls").mkdir()
            try:
                rls_procs.start()
                with org_context(org):
                    rls = self._burst(org, burst, figures["steps_per_s"], rls_procs, progress, slug="burst-rls")
            finally:
                rls_procs.stop()
            figures["rls_drain_steps_per_s"] = rls["drain_steps_per_s"]
            figures["rls_ratio"] = round(rls["drain_steps_per_s"] / figures["drain_steps_per_s"], 3)
            figures["rls_worker_errors"] = rls_procs.errors()
        figures["rss_mb"] = round(max(procs.peak_rss.values(), default=0) / 2**20, 1)
        figures["rss_total_mb"] = round(sum(procs.peak_rss.values()) / 2**20, 1)
        figures["worker_errors"] = procs.errors()
        figures.update(raw)
        capacity = figures.get("drain_steps_per_s") or figures["steps_per_s"]
        figures["vs_raw"] = round(capacity / raw["raw_steps_per_s"], 3)
        yield figures
        if not options["keep"]:
            self.org_empty(org)

    # -- data ----------------------------------------------------------------------------------

    def org_empty(self, org: Organization) -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            # A workflow points at its live version: unlinked first, so the versions can go.
            cursor.execute("UPDATE workflows_workflow SET live_version_id = NULL WHERE org_id = %s", [org.pk])
            super().org_empty(org)

    def _contacts(self, org: Organization, n: int, progress) -> None:
        """N contacts generated in SQL from the row number (a third on the pro plan)."""
        advance = progress("generating contacts", 1)
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO marketing_contact (org_id, email, external_id, phone, phone_bidx, first_name, last_name, "
                "job_title, country, time_zone, locale, lifecycle_stage, lead_status, score, properties, created_at, "
                "updated_at, last_activity_at) "
                "SELECT %s, 'e' || g || '@engine.bench', NULL, '', '', 'First', 'Last ' || g, '', "
                "(%s::text[])[1 + g %% 10], '', '', 'lead', 'new', g %% 1000, "
                "jsonb_build_object('plan', (ARRAY['free', 'pro', 'enterprise'])[1 + g %% 3], 'seats', g %% 500), "
                "now(), now(), NULL FROM generate_series(1, %s) g",
                [org.pk, COUNTRIES, n],
            )
            cursor.execute("ANALYZE marketing_contact")
        with org_context(org):
            for key, kind in (("plan", "enum"), ("seats", "number")):
                PropertyDefinition.objects.get_or_create(org=org, subject="contact", key=key, defaults={"type": kind})
        advance(1)

    def _workflow(self, org: Organization, slug: str, delay: dict):
        from workflows.services import workflow_create, workflow_publish

        workflow = workflow_create(org=org, name=f"Bench {slug}", slug=slug, definition=definition(delay))
        workflow_publish(workflow=workflow)
        workflow.refresh_from_db()
        return workflow

    def _contact_ids(self, org: Organization, n: int) -> list[int]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM marketing_contact WHERE org_id = %s ORDER BY id LIMIT %s", [org.pk, n])
            return [row[0] for row in cursor.fetchall()]

    # -- phases --------------------------------------------------------------------------------

    def _steady(self, org, n: int, options: dict, procs: Processes, progress) -> dict:
        """Enrolments spread over the run at ``--rate``/s, so delays expire at a steady rate."""
        from workflows.services import workflow_enrol

        workflow = self._workflow(org, "steady", {"duration": f"PT{options['delay']}S"})
        ids = self._contact_ids(org, n)
        rate, tick = options["rate"], 0.25
        per_tick = max(1, round(rate * tick))
        watch = Watch(workflow.pk)
        advance = progress("steady: instances completed", n)
        start = time.monotonic()
        enrolled = done = polls = 0
        next_tick = start
        while done < n:
            due = min(n, round((time.monotonic() - start) * rate) + per_tick)  # a tick ahead
            if due > enrolled:
                workflow_enrol(
                    workflow=workflow, contact_ids=ids[enrolled:due], trigger_type="manual", trigger_key="bench"
                )
                enrolled = due
            polls += 1
            if polls % 2 == 0 or enrolled == n:
                completed, failed = watch.finished()
                if failed:
                    raise CommandError(f"{failed} bench runs failed; see the instances' error field")
                advance(completed - done)
                done = completed
                procs.sample_rss()
                procs.check()
            watch.delays()
            next_tick += tick
            time.sleep(max(0.0, next_tick - time.monotonic()))
        elapsed = time.monotonic() - start
        watch.delays()
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM workflows_workflowsteprun WHERE workflow_id = %s", [workflow.pk])
            steps = cursor.fetchone()[0]
        lags = self._wake_lags(workflow.pk)
        return {
            "steps": steps,
            "seconds": round(elapsed, 2),
            "steps_per_s": round(steps / elapsed),
            "enrol_seconds": round(n / rate, 2),
            "wake_lag_p50_s": _pct(lags, 50),
            "wake_lag_p99_s": _pct(lags, 99),
            "wake_lag_max_s": _pct(lags, 100),
            "wake_lag_committed_p50_s": _pct(watch.committed_lags, 50),
            "wake_lag_committed_p99_s": _pct(watch.committed_lags, 99),
            "wake_lag_committed_samples": len(watch.committed_lags),
        }

    def _wake_lags(self, workflow_id: int) -> list[float]:
        """Per instance: the delay's planned ``until`` to the ``started_at`` of the step after it
        (the split). The engine stamps a batch's step runs with the batch's claim time."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT extract(epoch FROM n.started_at - (d.output ->> 'until')::timestamptz) "
                "FROM workflows_workflowsteprun d JOIN workflows_workflowsteprun n "
                "ON n.instance_id = d.instance_id AND n.step_id = 'ab' "
                "WHERE d.workflow_id = %s AND d.step_id = 'wait'",
                [workflow_id],
            )
            return [float(row[0]) for row in cursor.fetchall()]

    def _burst(self, org, n: int, steady_steps_per_s: int, procs: Processes, progress, slug: str = "burst") -> dict:
        """N runs whose delays end at the same instant: the time from that instant until all are
        done (two step runs each: the delay and the split) is the engine's throughput."""
        from workflows.services import workflow_enrol

        # The delay's end is fixed at publish: far enough for the three steps before it to be
        # done for every run first, estimated from the steady phase's rate.
        lead_s = 15 + 1.2 * 3 * n / max(steady_steps_per_s, 500)
        instant = timezone.now() + timedelta(seconds=lead_s)
        workflow = self._workflow(org, slug, {"until": instant.isoformat()})
        ids = self._contact_ids(org, n)
        advance = progress("burst: runs waiting at the delay", n)
        started = time.monotonic()
        for first in range(0, n, 5000):
            workflow_enrol(
                workflow=workflow, contact_ids=ids[first : first + 5000], trigger_type="manual", trigger_key="b"
            )
        waiting = 0
        while waiting < n:
            time.sleep(0.5)
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM workflows_workflowinstance WHERE workflow_id = %s AND status = 'waiting' "
                    "AND current_step = 'wait'",
                    [workflow.pk],
                )
                now_waiting = cursor.fetchone()[0]
            advance(now_waiting - waiting)
            waiting = now_waiting
            procs.sample_rss()
            procs.check()
        ready_s = time.monotonic() - started
        late_s = max(0.0, (timezone.now() - instant).total_seconds())
        watch = Watch(workflow.pk)
        advance = progress("burst: runs completed after the instant", n)
        while timezone.now() < instant:
            time.sleep(0.05)
        start = time.monotonic() - late_s
        done = 0
        while done < n:
            time.sleep(0.25)
            completed, failed = watch.finished()
            if failed:
                raise CommandError(f"{failed} burst runs failed; see the instances' error field")
            advance(completed - done)
            done = completed
            procs.sample_rss()
            procs.check()
        drain_s = time.monotonic() - start
        return {
            "burst_start_seconds": round(ready_s, 2),
            "burst_start_steps_per_s": round(3 * n / ready_s),
            "burst_late_seconds": round(late_s, 2),
            "drain_seconds": round(drain_s, 2),
            "drain_steps_per_s": round(2 * n / drain_s),
        }

    # -- the raw ceiling -----------------------------------------------------------------------

    def _raw(self, rows: int, progress) -> dict:
        """The same claims and writes in plain SQL from one connection, on temporary copies of the
        instance and step-run tables (same columns, indexes and unique constraints): claim 500 due
        rows with SKIP LOCKED, insert 5 step runs each, update the 500 rows, commit."""
        advance = progress("raw SQL ceiling", 2)
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TEMP TABLE raw_instance (LIKE workflows_workflowinstance INCLUDING ALL); "
                "CREATE TEMP TABLE raw_steprun (LIKE workflows_workflowsteprun INCLUDING ALL)"
            )
            fill = (
                "INSERT INTO raw_instance (org_id, workflow_id, version_id, contact_id, status, current_step, "
                "wake_at, waits_for_event, tokens, context, visits, trigger_type, trigger_key, trigger_data, "
                "triggered_at, result, error, paused_status, moves, updated_at) "
                "SELECT 1, 1, 1, g, 'pending', 'plan', now() - interval '1 minute', false, "
                '\'[{"id": "t1", "step": "plan"}]\', \'{"vars": {}, "steps": {}}\', \'{}\', \'manual\', \'raw\', '
                "'{}', now(), '', '', '', '[]', now() FROM generate_series(1, %s) g"
            )
            cursor.execute(fill, [rows])
            cursor.execute("ANALYZE raw_instance")
            claims_s = self._raw_pass(cursor, rows, write=False)
            advance(1)
            cursor.execute("TRUNCATE raw_instance")
            cursor.execute(fill, [rows])
            cursor.execute("ANALYZE raw_instance")
            steps_s = self._raw_pass(cursor, rows, write=True)
            advance(1)
            cursor.execute("DROP TABLE raw_instance; DROP TABLE raw_steprun")
        return {"raw_claims_per_s": round(rows / claims_s), "raw_steps_per_s": round(STEPS * rows / steps_s)}

    def _raw_pass(self, cursor, rows: int, *, write: bool) -> float:
        start = time.perf_counter()
        done = 0
        while done < rows:
            with transaction.atomic():
                cursor.execute(
                    "SELECT id FROM raw_instance WHERE status IN ('pending', 'waiting') AND wake_at <= now() "
                    "ORDER BY wake_at FOR UPDATE SKIP LOCKED LIMIT 500"
                )
                ids = [row[0] for row in cursor.fetchall()]
                if not ids:
                    break
                if write:
                    cursor.execute(
                        "INSERT INTO raw_steprun (org_id, instance_id, workflow_id, step_id, step_type, visit, "
                        "attempt, idempotency_key, status, started_at, completed_at, duration_ms, input, output, "
                        "error, next_step) SELECT 1, i, 1, s, 'action', 1, 1, i || ':' || s || ':1', 'completed', "
                        "now(), now(), 0, '{}', '{\"result\": true}', '', 'next' "
                        "FROM unnest(%s::bigint[]) i, unnest(ARRAY['plan', 'remember', 'note', 'wait', 'ab']) s",
                        [ids],
                    )
                    records = json.dumps(
                        [
                            {
                                "pk": pk,
                                "tokens": [],
                                "context": {"vars": {"plan": "pro"}, "steps": {"plan": {"result": True}}},
                                "visits": {"plan": 1, "remember": 1, "note": 1, "wait": 1, "ab": 1},
                            }
                            for pk in ids
                        ]
                    )
                    cursor.execute(
                        "UPDATE raw_instance SET status = 'completed', wake_at = NULL, tokens = u.tokens, "
                        "context = u.context, visits = u.visits, finished_at = now(), updated_at = now() "
                        "FROM jsonb_to_recordset(%s::jsonb) AS u(pk bigint, tokens jsonb, context jsonb, visits jsonb) "
                        "WHERE raw_instance.id = u.pk",
                        [records],
                    )
                else:
                    cursor.execute(
                        "UPDATE raw_instance SET status = 'running', updated_at = now() WHERE id = ANY(%s)", [ids]
                    )
            done += len(ids)
        return time.perf_counter() - start


# -- projection -----------------------------------------------------------------------------------
