"""Benchmark scenario ``console`` for ``python manage.py bench`` (registered with ``@scenario``;
``marketing.bench`` imports this module).

One org holds a large account — by default 100,000 contacts, 10,000 workflows and 1,000,000
step runs, with events, messages, handoffs, approvals, segments, imports and library entries so
no list is trivially empty — generated in SQL and kept between runs. Each console page a
marketer, an org admin and a sales rep open is requested through Django's test client (in this
process, logged in) several times; per page the median and p95 server time and the number of SQL
queries are printed. Then a 200-step workflow is opened in headless chromium and timed from the
navigation's start until all its steps are drawn on the canvas (docs/bench.md, "console").

The other apps' tables are written by name, in SQL: ``marketing`` is the ground floor and
imports no other app, and a bench seeds faster in SQL than through the services anyway.
"""

import json
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from marketing.bench import (
    COUNTRIES,
    FIRST_NAMES,
    LAST_NAMES,
    STAGE_WEIGHTS,
    Scenario,
    checkpoint,
    percentile_ms,
    scenario,
    vacuum_analyze,
)
from marketing.models import Membership, Organization, Role, User
from marketing.tenancy import org_context

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
STEP_RUN_STEPS = ["plan", "remember", "note", "wait", "ab"]  # five step runs per seeded run
CANVAS_SLUGS = ("bench-canvas-200", "bench-canvas-200-unplaced")

# Tables the scenario fills, children first (deleted in this order, set-based).
SEEDED_TABLES = (
    "workflows_workflowsteprun",
    "workflows_approval",
    "channels_app_message",
    "scoring_handoff",
    "workflows_workflowinstance",
    "workflows_workflowversion",
    "workflows_workflow",
    "workflows_workflowtemplate",
    "marketing_segmentmembership",
    "marketing_segment",
    "marketing_importjob",
    "marketing_event",
    "marketing_contact",
    "marketing_company",
)


def canvas_definition(steps: int, *, positions: bool) -> dict:
    """A valid ``steps``-step workflow of blocks of ten (condition, tag, delay, wait for an event
    with a timeout, A/B split, switch, set variable, log, goal and a delay joining them), the
    blocks chained one after the other; each step at a grid position unless ``positions`` is off."""
    blocks = max(1, steps // 10)
    out = []
    for b in range(blocks):
        nxt = f"b{b + 1}_check" if b + 1 < blocks else None
        p = f"b{b}_"
        out += [
            {
                "id": p + "check",
                "type": "condition",
                "name": f"Block {b + 1}: engaged?",
                "condition": {"==": [{"var": "country"}, COUNTRIES[b % len(COUNTRIES)]]},
                "true_next": p + "tag",
                "false_next": p + "pause",
            },
            {
                "id": p + "tag",
                "type": "action",
                "name": "Tag as engaged",
                "action": "add_tag",
                "config": {"tags": [f"engaged-{b}"]},
                "next": p + "pause",
            },
            {
                "id": p + "pause",
                "type": "delay",
                "name": "Two days",
                "config": {"duration": "P2D"},
                "next": p + "visit",
            },
            {
                "id": p + "visit",
                "type": "wait_for_event",
                "name": "Visits pricing?",
                "event": "page_view",
                "timeout": "P3D",
                "next": p + "ab",
                "timeout_next": p + "ab",
            },
            {
                "id": p + "ab",
                "type": "split",
                "name": "A/B",
                "branches": [
                    {"name": "A", "weight": 50, "next": p + "route"},
                    {"name": "B", "weight": 50, "next": p + "route"},
                ],
            },
            {
                "id": p + "route",
                "type": "switch",
                "name": "By stage",
                "cases": [{"when": {"==": [{"var": "lifecycle_stage"}, "lead"]}, "next": p + "remember"}],
                "default_next": p + "note",
            },
            {
                "id": p + "remember",
                "type": "action",
                "name": "Remember the plan",
                "action": "set_variable",
                "config": {"name": "plan", "value_from": "properties.plan"},
                "next": p + "note",
            },
            {
                "id": p + "note",
                "type": "action",
                "name": "Note",
                "action": "log",
                "config": {"message": f"block {b + 1}", "level": "info"},
                "next": p + "goal",
            },
            {
                "id": p + "goal",
                "type": "goal",
                "name": "Customer yet?",
                "condition": {"==": [{"var": "lifecycle_stage"}, "customer"]},
                "next": p + "rest",
            },
            {"id": p + "rest", "type": "delay", "name": "One day", "config": {"duration": "P1D"}, "next": nxt},
        ]
    if positions:
        for i, step in enumerate(out):
            block, row = divmod(i, 10)
            step["position"] = {
                "x": 40 + (block % 5) * 320 + (row % 2) * 140,
                "y": 40 + (block // 5) * 1100 + row * 105,
            }
    return {"trigger": {"type": "manual"}, "steps": out}


@scenario
class ConsoleScenario(Scenario):
    """The console's pages at scale, as a marketer, an org admin and a sales rep open them:
    median and p95 server time and SQL queries per page, then the time a 200-step workflow takes
    to appear on the canvas in headless chromium. PostgreSQL only (the data is generated in SQL)."""

    name = "console"
    help = "Console pages at scale (p50/p95 server ms, queries) and a 200-step canvas in chromium."
    org_slug = "bench-console"
    org_name = "Bench (console)"
    org_tables = SEEDED_TABLES

    def add_arguments(self, parser) -> None:
        parser.add_argument("--contacts", type=int, default=100_000, help="How many contacts (default 100000).")
        parser.add_argument("--workflows", type=int, default=10_000, help="How many workflows (default 10000).")
        parser.add_argument(
            "--step-runs", type=int, default=1_000_000, help="How many step runs, five per run (default 1000000)."
        )
        parser.add_argument("--repeat", type=int, default=5, help="Timed requests per page, after one (default 5).")
        parser.add_argument("--budget-ms", type=int, default=300, help="A page's median limit (default 300).")
        parser.add_argument("--canvas-budget-ms", type=int, default=1000, help="The canvas's limit (default 1000).")
        parser.add_argument("--canvas-steps", type=int, default=200, help="Steps of the canvas workflow (default 200).")
        parser.add_argument("--no-canvas", action="store_true", help="Skip the chromium part.")
        parser.add_argument("--fresh", action="store_true", help="Regenerate the data even if it is there.")

    def run(self, *, options: dict, progress) -> Iterator[dict]:
        if connection.vendor != "postgresql":
            raise CommandError("bench console generates its data in PostgreSQL; set DATABASE_URL=postgres://…")
        sizes = {"contacts": options["contacts"], "workflows": options["workflows"], "step_runs": options["step_runs"]}
        org, seeded_s = self._data(sizes, fresh=options["fresh"], progress=progress)
        with org_context(org):  # row-level security: the app role reads and writes only this org's rows
            users = self._users(org)
            canvas_ids = self._canvas_workflows(org, options["canvas_steps"], users["admin"])
            pages = self._pages(org, users, canvas_ids)
        checkpoint()
        slow = []
        advance = progress("requesting pages", len(pages))
        with override_settings(ALLOWED_HOSTS=["testserver"], SECURE_SSL_REDIRECT=False):
            for role, name, url in pages:
                figures = self._time_page(users[role], url, options["repeat"])
                figures = {"page": name, "role": role, "url": url, **figures}
                figures["ok"] = figures["status"] == 200 and figures["p50_ms"] < options["budget_ms"]
                if not figures["ok"]:
                    slow.append(f"{name} ({role}): {figures['p50_ms']} ms, status {figures['status']}")
                advance(1)
                yield figures
        summary = {**sizes, "seed_seconds": seeded_s, "pages": len(pages), "budget_ms": options["budget_ms"]}
        summary["pages_over_budget"] = len(slow)
        if not options["no_canvas"]:
            summary.update(self._canvas(org, users["marketer"], canvas_ids, options["canvas_steps"], progress))
            if summary["canvas_open_p50_ms"] >= options["canvas_budget_ms"]:
                slow.append(f"canvas: {summary['canvas_open_p50_ms']} ms")
        summary["ok"] = not slow
        yield summary
        if slow:
            raise CommandError("Over budget: " + "; ".join(slow))

    # -- data ----------------------------------------------------------------------------------

    def org_empty(self, org: Organization) -> None:
        with org_context(org), transaction.atomic(), connection.cursor() as cursor:
            # A workflow points at its live version: unlinked first, so the versions can go.
            cursor.execute("UPDATE workflows_workflow SET live_version_id = NULL WHERE org_id = %s", [org.pk])
            for table in self.org_tables:
                cursor.execute(f"DELETE FROM {table} WHERE org_id = %s", [org.pk])  # noqa: S608  fixed names

    def _present(self, org: Organization) -> dict:
        with connection.cursor() as cursor:
            found = {}
            for key, sql in (
                ("contacts", "SELECT count(*) FROM marketing_contact WHERE org_id = %s"),
                ("workflows", "SELECT count(*) FROM workflows_workflow WHERE org_id = %s AND slug LIKE 'wf-%%'"),
                ("step_runs", "SELECT count(*) FROM workflows_workflowsteprun WHERE org_id = %s"),
            ):
                cursor.execute(sql, [org.pk])
                found[key] = cursor.fetchone()[0]
        return found

    def _data(self, sizes: dict, *, fresh: bool, progress) -> tuple[Organization, float]:
        """The org's data as ``sizes`` asks, generated unless an earlier run left exactly that.
        Generated in the org's context: row-level security accepts only the current org's rows."""
        org = Organization.objects.filter(slug=self.org_slug).first()
        if org and not fresh:
            with org_context(org):
                self._canvas_delete(org)
                present = self._present(org)
            # The canvas workflows' step runs (none) aside, what a run leaves is what it made.
            if present == {**sizes, "step_runs": sizes["step_runs"] // 5 * 5}:
                return org, 0.0
        org = self.org_fresh()
        steps = [
            ("companies and contacts", self._contacts),
            ("events", self._events),
            ("segments", self._segments),
            ("workflows", self._workflows),
            ("runs", self._runs),
            ("step runs", self._step_runs),
            ("messages, handoffs, approvals", self._records),
        ]
        advance = progress("generating the console's data", len(steps) + 1)
        start = time.perf_counter()
        for _label, step in steps:
            with org_context(org), transaction.atomic(), connection.cursor() as cursor:
                step(cursor, org, sizes)
            advance(1)
        vacuum_analyze(*SEEDED_TABLES)
        advance(1)
        return org, round(time.perf_counter() - start, 1)

    def _contacts(self, cursor, org, sizes) -> None:
        stages = [stage for stage, weight in STAGE_WEIGHTS.items() for _ in range(weight)]
        cursor.execute(
            "INSERT INTO marketing_company (org_id, name, domain, industry, size, revenue, properties, created_at, "
            "updated_at) SELECT %s, 'Company ' || g, 'c' || g || '.console.bench', (ARRAY['software', 'retail', "
            "'finance', 'health'])[1 + g %% 4], 10 + g %% 900, NULL, '{}', now(), now() "
            "FROM generate_series(1, %s) g",
            [org.pk, max(1, sizes["contacts"] // 100)],
        )
        cursor.execute(
            "INSERT INTO marketing_contact (org_id, email, external_id, phone, first_name, last_name, job_title, "
            "country, time_zone, locale, lifecycle_stage, lead_status, score, properties, company_id, created_at, "
            "updated_at, last_activity_at) "
            "SELECT %(org)s, lower(f) || '.' || g || '@d' || g %% 5000 || '.console.bench', NULL, '', f, l, '', "
            "(%(countries)s::text[])[1 + g %% %(nc)s], '', '', (%(stages)s::text[])[1 + (g * 13) %% %(ns)s], "
            "(ARRAY['new', 'open', 'in_progress', 'connected'])[1 + g %% 4], (g * 37) %% 1000, "
            "jsonb_build_object('plan', (ARRAY['free', 'pro', 'enterprise'])[1 + g %% 3], 'seats', g %% 500), "
            "CASE WHEN g %% 3 = 0 THEN NULL ELSE (SELECT min(id) FROM marketing_company WHERE org_id = %(org)s) "
            "+ g %% %(companies)s END, now() - (g %% 730) * interval '1 day', now() - (g %% 30) * interval '1 day', "
            "now() - (g %% 60) * interval '1 hour' "
            "FROM generate_series(1, %(n)s) g, LATERAL (SELECT (%(first)s::text[])[1 + g %% %(nf)s] AS f, "
            "(%(last)s::text[])[1 + (g / 7) %% %(nl)s] AS l) names",
            {
                "org": org.pk,
                "countries": COUNTRIES,
                "nc": len(COUNTRIES),
                "stages": stages,
                "ns": len(stages),
                "companies": max(1, sizes["contacts"] // 100),
                "n": sizes["contacts"],
                "first": FIRST_NAMES,
                "nf": len(FIRST_NAMES),
                "last": LAST_NAMES,
                "nl": len(LAST_NAMES),
            },
        )

    def _events(self, cursor, org, sizes) -> None:
        """Two events per contact, and 500 more on the first (its timeline is a long one)."""
        cursor.execute(
            "INSERT INTO marketing_event (org_id, contact_id, type, properties, occurred_at, received_at, source, "
            "message_id) SELECT %s, first.id + CASE WHEN g <= 500 THEN 0 ELSE g %% %s END, "
            "(ARRAY['page_view', 'page_view', 'email_opened', 'email_clicked', 'form_submitted'])[1 + g %% 5], "
            "jsonb_build_object('path', (ARRAY['/', '/pricing', '/blog', '/docs'])[1 + (g / 5) %% 4]), "
            "now() - (g %% 2000) * interval '1 hour', now(), 'bench', 'console-' || g "
            "FROM (SELECT min(id) AS id FROM marketing_contact WHERE org_id = %s) first, generate_series(1, %s) g",
            [org.pk, sizes["contacts"], org.pk, 2 * sizes["contacts"] + 500],
        )

    def _segments(self, cursor, org, sizes) -> None:
        """Thirty segments on country and stage; the first (contacts in Germany) with its members."""
        cursor.execute(
            "INSERT INTO marketing_segment (org_id, slug, name, description, kind, rule, member_count, computed_at, "
            "created_at, updated_at, library_template) SELECT %s, 'segment-' || g, 'Segment ' || g || ': ' || c, '', "
            "'dynamic', jsonb_build_object('==', jsonb_build_array(jsonb_build_object('var', 'country'), c)), "
            "0, now(), now(), now(), '' FROM generate_series(1, 30) g, "
            "LATERAL (SELECT (%s::text[])[1 + g %% %s] AS c) country",
            [org.pk, COUNTRIES, len(COUNTRIES)],
        )
        cursor.execute(
            "INSERT INTO marketing_segmentmembership (org_id, segment_id, contact_id, entered_at, exited_at) "
            "SELECT %s, s.id, c.id, c.created_at, NULL FROM marketing_segment s JOIN marketing_contact c "
            "ON c.org_id = s.org_id AND c.country = s.rule -> '==' ->> 1 "
            "WHERE s.org_id = %s AND s.slug IN ('segment-1', 'segment-2')",
            [org.pk, org.pk],
        )
        cursor.execute(
            "UPDATE marketing_segment s SET member_count = (SELECT count(*) FROM marketing_segmentmembership m "
            "WHERE m.segment_id = s.id AND m.exited_at IS NULL) WHERE s.org_id = %s",
            [org.pk],
        )
        cursor.execute(
            "INSERT INTO marketing_importjob (org_id, kind, file, file_sha256, mapping, dry_run, dispatch, status, "
            "rows_total, rows_done, rows_created, rows_updated, rows_failed, error, created_at, finished_at) "
            "SELECT %s, (ARRAY['contacts', 'events'])[1 + g %% 2], 'imports/bench-' || g || '.csv', md5(g::text), "
            "'{}', false, true, 'done', 1000, 1000, 900, 90, 10, '', now() - g * interval '1 day', "
            "now() - g * interval '1 day' FROM generate_series(1, 25) g",
            [org.pk],
        )

    def _workflows(self, cursor, org, sizes) -> None:
        """N workflows (six in ten active), each with a published version 1 of the engine bench's
        five-step definition; the library's entries beside them."""
        definition = json.dumps(
            {
                "trigger": {"type": "manual"},
                "steps": [
                    {"id": "plan", "type": "condition", "condition": {"==": [{"var": "properties.plan"}, "pro"]},
                     "true_next": "remember", "false_next": "remember"},
                    {"id": "remember", "type": "action", "action": "set_variable",
                     "config": {"name": "plan", "value_from": "properties.plan"}, "next": "note"},
                    {"id": "note", "type": "action", "action": "log", "config": {"message": "bench"}, "next": "wait"},
                    {"id": "wait", "type": "delay", "config": {"duration": "P1D"}, "next": "ab"},
                    {"id": "ab", "type": "split", "branches": [{"name": "A", "weight": 50, "next": None},
                                                                {"name": "B", "weight": 50, "next": None}]},
                ],
            }
        )  # fmt: skip
        cursor.execute(
            "INSERT INTO workflows_workflow (org_id, slug, name, description, status, draft_definition, trigger_type, "
            "trigger_event, webhook_secret, created_at, updated_at) "
            "SELECT %s, 'wf-' || g, (ARRAY['Welcome', 'Nurture', 'Win-back', 'Onboarding', 'Renewal'])[1 + g %% 5] "
            "|| ' ' || g, '', (ARRAY['active', 'active', 'active', 'active', 'active', 'active', 'draft', 'draft', "
            "'paused', 'archived'])[1 + g %% 10], %s::jsonb, (ARRAY['manual', 'event', 'segment', 'schedule'])"
            "[1 + g %% 4], CASE WHEN g %% 4 = 1 THEN 'signed_up' ELSE '' END, '', now() - g * interval '1 hour', "
            "now() - g * interval '1 minute' FROM generate_series(1, %s) g",
            [org.pk, definition, sizes["workflows"]],
        )
        cursor.execute(
            "INSERT INTO workflows_workflowversion (org_id, workflow_id, number, definition, published_at) "
            "SELECT org_id, id, 1, draft_definition, created_at FROM workflows_workflow "
            "WHERE org_id = %s AND slug LIKE 'wf-%%' ORDER BY id",
            [org.pk],
        )
        cursor.execute(
            "UPDATE workflows_workflow w SET live_version_id = v.id FROM workflows_workflowversion v "
            "WHERE v.workflow_id = w.id AND w.org_id = %s AND w.status <> 'draft'",
            [org.pk],
        )
        cursor.execute(
            "INSERT INTO workflows_workflowtemplate (org_id, slug, name, description, category, tags, trigger, "
            "definition, usage_count, status, created_at, updated_at) "
            "SELECT %s, 'library-' || g, 'Library entry ' || g, 'A ready-made workflow.', "
            "(ARRAY['social', 'campaign', 'lead_nurture', 'engagement', 'reporting'])[1 + g %% 5], '[]', "
            "'{\"type\": \"manual\"}', %s::jsonb, g, 'active', now(), now() FROM generate_series(1, 12) g",
            [org.pk, definition],
        )

    def _runs(self, cursor, org, sizes) -> None:
        """step_runs / 5 runs: half in the first ten workflows (a busy workflow has thousands),
        the rest spread over all; mostly completed, some waiting, failed, running and paused."""
        cursor.execute(
            "INSERT INTO workflows_workflowinstance (org_id, workflow_id, version_id, contact_id, status, "
            "current_step, wake_at, waits_for_event, tokens, context, visits, trigger_type, trigger_key, "
            "trigger_data, triggered_at, started_at, finished_at, result, error, paused_status, updated_at, moves) "
            "SELECT %(org)s, v.workflow_id, v.id, cf.id + (g * 7919) %% %(contacts)s, st, "
            "CASE WHEN st IN ('completed', 'failed') THEN '' ELSE 'wait' END, "
            "CASE WHEN st = 'waiting' THEN now() + (g %% 48) * interval '1 hour' END, false, '[]', "
            "'{\"vars\": {}, \"steps\": {}}', '{}', 'manual', 'bench-' || g, '{}', t, t, "
            "CASE WHEN st IN ('completed', 'failed') THEN t + interval '1 day' END, "
            "CASE st WHEN 'completed' THEN 'completed' WHEN 'failed' THEN 'failed' ELSE '' END, "
            "CASE WHEN st = 'failed' THEN 'The destination answered 500.' ELSE '' END, "
            "CASE WHEN st = 'paused' THEN 'waiting' ELSE '' END, t, '[]' "
            "FROM generate_series(1, %(runs)s) g "
            "CROSS JOIN (SELECT min(id) AS id FROM marketing_contact WHERE org_id = %(org)s) cf "
            "CROSS JOIN (SELECT min(id) AS id FROM workflows_workflowversion WHERE org_id = %(org)s) vf "
            "CROSS JOIN LATERAL (SELECT (ARRAY['completed', 'completed', 'completed', 'completed', 'completed', "
            "'completed', 'completed', 'waiting', 'waiting', 'failed', 'running', 'paused'])[1 + (g / 3) %% 12] AS st, "
            "now() - (g %% 1440) * interval '1 hour' AS t, "
            "CASE WHEN g %% 2 = 0 THEN g %% 10 ELSE g %% %(workflows)s END AS k) r "
            "JOIN workflows_workflowversion v ON v.id = vf.id + r.k",
            {
                "org": org.pk,
                "contacts": sizes["contacts"],
                "runs": sizes["step_runs"] // 5,
                "workflows": sizes["workflows"],
            },
        )

    def _step_runs(self, cursor, org, sizes) -> None:
        cursor.execute(
            "INSERT INTO workflows_workflowsteprun (org_id, instance_id, workflow_id, step_id, step_type, visit, "
            "attempt, idempotency_key, status, started_at, completed_at, duration_ms, input, output, error, next_step) "
            "SELECT i.org_id, i.id, i.workflow_id, s.step, s.kind, 1, 1, i.id || ':' || s.step || ':1', "
            "CASE WHEN i.status = 'failed' AND s.n = 5 THEN 'failed' ELSE 'completed' END, "
            "i.triggered_at + s.n * interval '1 second', i.triggered_at + s.n * interval '1 second', s.n, '{}', "
            "'{\"result\": true}', CASE WHEN i.status = 'failed' AND s.n = 5 THEN 'The destination answered 500.' "
            "ELSE '' END, '' FROM workflows_workflowinstance i CROSS JOIN (SELECT * FROM unnest(%s::text[], "
            "ARRAY['condition', 'action', 'action', 'delay', 'split']) WITH ORDINALITY AS u(step, kind, n)) s "
            "WHERE i.org_id = %s",
            [STEP_RUN_STEPS, org.pk],
        )

    def _records(self, cursor, org, sizes) -> None:
        """Messages (one per two runs), handoffs (one per fifty contacts; half of the open ones go to
        the sales rep when the users are made), pending approvals."""
        cursor.execute(
            "INSERT INTO channels_app_message (org_id, contact_id, workflow_id, instance_id, channel, purpose, "
            'variant, step_id, idempotency_key, "to", content, status, status_history, provider, '
            "provider_message_id, error, attempts, next_attempt_at, created_at, sent_at) "
            "SELECT i.org_id, i.contact_id, i.workflow_id, i.id, ch, 'marketing', 'A', 'send', "
            "'console-bench:' || i.id, CASE ch WHEN 'sms' THEN '+4915100' || i.id ELSE 'to' || i.id || "
            "'@console.bench' END, jsonb_build_object('subject', 'Hello ' || i.id), st, "
            "jsonb_build_array(jsonb_build_object('at', i.triggered_at, 'status', st)), 'console', "
            "CASE WHEN st = 'queued' THEN '' ELSE 'p' || i.id END, CASE WHEN st = 'failed' THEN "
            "'Mailbox unavailable' ELSE '' END, 1, i.triggered_at, i.triggered_at, "
            "CASE WHEN st IN ('queued', 'failed') THEN NULL ELSE i.triggered_at END "
            "FROM workflows_workflowinstance i CROSS JOIN LATERAL (SELECT (ARRAY['email', 'email', 'email', 'sms'])"
            "[1 + i.id %% 4] AS ch, (ARRAY['sent', 'delivered', 'opened', 'clicked', 'sent', 'queued', 'failed', "
            "'bounced'])[1 + (i.id / 4) %% 8] AS st) m WHERE i.org_id = %s AND i.id %% 2 = 0",
            [org.pk],
        )
        cursor.execute(
            "INSERT INTO scoring_handoff (org_id, contact_id, reason, detail, status, score, sla_due_at, "
            "rejection_reason, created_at, accepted_at, closed_at, assignee_id) "
            "SELECT org_id, id, (ARRAY['threshold', 'demo_request', 'nurtured', 'workflow'])[1 + id %% 4], "
            "'Score passed 80', (ARRAY['open', 'open', 'accepted', 'rejected', 'converted'])[1 + (id / 50) %% 5], "
            "score, now() + ((id / 50) %% 48 - 12) * interval '1 hour', '', created_at, NULL, NULL, "
            "NULL FROM marketing_contact WHERE org_id = %s AND id %% 50 = 0",
            [org.pk],
        )
        cursor.execute(
            "INSERT INTO workflows_approval (org_id, instance_id, step_id, idempotency_key, approvers, status, "
            "due_at, note, created_at) SELECT org_id, id, 'wait', 'approval:' || id || ':wait:1', "
            "'{\"role\": \"marketer\"}', 'pending', now() + interval '2 days', '', triggered_at "
            "FROM workflows_workflowinstance WHERE org_id = %s AND status = 'waiting' ORDER BY id LIMIT 200",
            [org.pk],
        )

    def _users(self, org: Organization) -> dict[str, User]:
        """A marketer, an org admin and a sales rep of the org (made once, kept)."""
        users = {}
        for role in (Role.MARKETER, Role.ADMIN, Role.SALES):
            user, _ = User.objects.get_or_create(
                username=f"bench-console-{role.value}", defaults={"email": f"{role.value}@console.bench"}
            )
            Membership.objects.update_or_create(org=org, user=user, defaults={"role": role})
            users[role.value] = user
        with connection.cursor() as cursor:  # the sales rep's queue: half the open handoffs, given once
            cursor.execute(
                "UPDATE scoring_handoff SET assignee_id = %s WHERE id IN (SELECT id FROM (SELECT id, row_number() "
                "OVER (ORDER BY id) AS n FROM scoring_handoff WHERE org_id = %s AND assignee_id IS NULL "
                "AND status IN ('open', 'accepted')) every WHERE n %% 2 = 1) "
                "AND NOT EXISTS (SELECT 1 FROM scoring_handoff WHERE org_id = %s AND assignee_id = %s)",
                [users["sales"].pk, org.pk, org.pk, users["sales"].pk],
            )
            # What assigning grants (guardian's per-handoff permissions): the rep sees these.
            cursor.execute(
                "INSERT INTO guardian_userobjectpermission (object_pk, content_type_id, permission_id, user_id) "
                "SELECT h.id::text, p.content_type_id, p.id, h.assignee_id FROM scoring_handoff h "
                "JOIN auth_permission p ON p.codename IN ('view_handoff', 'change_handoff') "
                "JOIN django_content_type ct ON ct.id = p.content_type_id AND ct.app_label = 'scoring' "
                "AND ct.model = 'handoff' WHERE h.org_id = %s AND h.assignee_id = %s "
                "ON CONFLICT DO NOTHING",
                [org.pk, users["sales"].pk],
            )
            cursor.execute("ANALYZE guardian_userobjectpermission")  # as autovacuum would, soon after
        return users

    # -- the pages -----------------------------------------------------------------------------

    def _canvas_delete(self, org: Organization) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM workflows_workflow WHERE org_id = %s AND slug = ANY(%s)", [org.pk, list(CANVAS_SLUGS)]
            )

    def _canvas_workflows(self, org: Organization, steps: int, user: User) -> list[int]:
        """The 200-step workflow twice, with positions and without (the canvas lays it out)."""
        self._canvas_delete(org)
        ids = []
        with connection.cursor() as cursor:
            for slug, positions in zip(CANVAS_SLUGS, (True, False), strict=True):
                cursor.execute(
                    "INSERT INTO workflows_workflow (org_id, slug, name, description, status, draft_definition, "
                    "trigger_type, trigger_event, webhook_secret, created_at, updated_at, created_by_id) "
                    "VALUES (%s, %s, %s, '', 'draft', %s::jsonb, 'manual', '', '', now(), now(), %s) RETURNING id",
                    [
                        org.pk,
                        slug,
                        f"Canvas: {steps} steps" + ("" if positions else " (laid out on opening)"),
                        json.dumps(canvas_definition(steps, positions=positions)),
                        user.pk,
                    ],
                )
                ids.append(cursor.fetchone()[0])
        return ids

    def _pages(self, org: Organization, users: dict, canvas_ids: list[int]) -> list[tuple[str, str, str]]:
        """(role, name, url) of each page timed: what each role opens in a working day."""
        with connection.cursor() as cursor:

            def one(sql: str) -> int:
                cursor.execute(sql, [org.pk])
                return cursor.fetchone()[0]

            contact = one("SELECT min(id) FROM marketing_contact WHERE org_id = %s")  # the long timeline
            segment = one("SELECT id FROM marketing_segment WHERE org_id = %s AND slug = 'segment-1'")
            busy = one(  # the first workflow: the busiest (thousands of runs)
                "SELECT min(id) FROM workflows_workflow WHERE org_id = %s AND slug LIKE 'wf-%%'"
            )
            run = one("SELECT max(id) FROM workflows_workflowinstance WHERE org_id = %s AND status = 'failed'")
            cursor.execute(  # one of the sales rep's own
                "SELECT min(id) FROM scoring_handoff WHERE org_id = %s AND assignee_id = %s",
                [org.pk, users["sales"].pk],
            )
            handoff = cursor.fetchone()[0]
        a = "/admin/"
        return [
            ("marketer", "home", a),
            ("marketer", "contacts", a + "marketing/contact/"),
            ("marketer", "contacts_search", a + "marketing/contact/?q=schmidt"),
            ("marketer", "contacts_filter", a + "marketing/contact/?lifecycle_stage__exact=lead&country__exact=DE"),
            ("marketer", "contact_page", f"{a}marketing/contact/{contact}/change/"),
            ("marketer", "segments", a + "marketing/segment/"),
            ("marketer", "segment_page", f"{a}marketing/segment/{segment}/change/"),
            ("marketer", "workflows", a + "workflows/workflow/"),
            ("marketer", "workflows_search", a + "workflows/workflow/?q=nurture"),
            ("marketer", "workflow_page", f"{a}workflows/workflow/{busy}/change/"),
            ("marketer", "canvas_page", f"{a}workflows/workflow/{canvas_ids[0]}/change/"),
            ("marketer", "runs", a + "workflows/workflowinstance/"),
            ("marketer", "runs_failed", a + "workflows/workflowinstance/?status__exact=failed"),
            ("marketer", "runs_of_workflow", f"{a}workflows/workflowinstance/?workflow__id__exact={busy}"),
            ("marketer", "run_page", f"{a}workflows/workflowinstance/{run}/change/"),
            ("marketer", "outbox", a + "channels_app/message/"),
            ("marketer", "outbox_failed", a + "channels_app/message/?status__exact=failed"),
            ("marketer", "approvals", a + "workflows/approval/"),
            ("marketer", "imports", a + "marketing/importjob/"),
            ("marketer", "library", a + "workflows/workflowtemplate/"),
            ("admin", "home", a),
            ("admin", "step_runs", a + "workflows/workflowsteprun/"),
            ("admin", "step_runs_failed", a + "workflows/workflowsteprun/?status__exact=failed"),
            ("admin", "runs", a + "workflows/workflowinstance/"),
            ("admin", "contacts", a + "marketing/contact/"),
            ("sales", "home", a),
            ("sales", "handoffs", a + "scoring/handoff/"),
            ("sales", "handoff_page", f"{a}scoring/handoff/{handoff}/change/"),
            ("sales", "contact_page", f"{a}marketing/contact/{contact}/change/"),
        ]

    def _time_page(self, user: User, url: str, repeat: int) -> dict:
        """One warm-up request, then ``repeat`` timed ones (wall time in this process, i.e. the
        server's time without the network), the part of it spent in SQL and the queries of the last."""
        client = Client()
        client.force_login(user)
        response = client.get(url)
        samples, sql = [], []
        for _ in range(repeat):
            with CaptureQueriesContext(connection) as queries:
                start = time.perf_counter()
                response = client.get(url)
                samples.append(time.perf_counter() - start)
            sql.append(sum(float(q["time"]) for q in queries.captured_queries))
        return {
            "status": response.status_code,
            "p50_ms": round(statistics.median(samples) * 1000, 2),
            "p95_ms": percentile_ms(samples, 95),
            "sql_p50_ms": round(statistics.median(sql) * 1000, 1),
            "queries": len(queries),
        }

    # -- the canvas ----------------------------------------------------------------------------

    def _canvas(self, org: Organization, user: User, canvas_ids: list[int], steps: int, progress) -> dict:
        """Each canvas workflow opened three times in headless chromium: milliseconds from the
        navigation's start until every step is drawn (visible, measured by React Flow)."""
        from django.contrib.staticfiles.handlers import StaticFilesHandler
        from django.test.testcases import LiveServerThread

        if not Path(CHROMIUM).exists():
            return {"canvas": f"skipped: {CHROMIUM} is missing"}
        from playwright.sync_api import sync_playwright

        cookie_client = Client()
        cookie_client.force_login(user)
        from django.conf import settings

        session = cookie_client.cookies[settings.SESSION_COOKIE_NAME].value
        figures: dict = {"canvas_steps": steps}
        shots = Path(tempfile.gettempdir()) / "bench-console"
        shots.mkdir(exist_ok=True)
        advance = progress("opening the canvas", 2 * 3)
        hosts = ["127.0.0.1", "localhost", "testserver"]
        with override_settings(ALLOWED_HOSTS=hosts, SECURE_SSL_REDIRECT=False, SESSION_COOKIE_SECURE=False):
            server = LiveServerThread("127.0.0.1", StaticFilesHandler, port=0)
            server.daemon = True
            server.start()
            server.is_ready.wait()
            if server.error:
                raise server.error
            base = f"http://127.0.0.1:{server.port}"
            try:
                with sync_playwright() as playwright:
                    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                    try:
                        page = browser.new_page(viewport={"width": 1366, "height": 900})
                        page.context.add_cookies(
                            [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": base}]
                        )
                        for key, workflow_id in zip(("canvas_open", "canvas_layout"), canvas_ids, strict=True):
                            samples, parts = [], []
                            for attempt in range(3):
                                page.goto(f"{base}/admin/workflows/workflow/{workflow_id}/change/", wait_until="commit")
                                # React Flow hides a node (inline style) until it has measured it;
                                # reading the inline style forces no layout, unlike getComputedStyle.
                                drawn = page.wait_for_function(
                                    "n => { const nodes = document.querySelectorAll('.react-flow__node');"
                                    " if (nodes.length < n) return false;"
                                    " for (const node of nodes) if (node.style.visibility === 'hidden')"
                                    " return false; return performance.now(); }",
                                    arg=steps + 1,  # the steps and the trigger's node
                                    timeout=30_000,
                                )
                                samples.append(drawn.json_value() / 1000)
                                timing = page.evaluate(
                                    "() => { const t = performance.getEntriesByType('navigation')[0];"
                                    " return [t.responseEnd, t.domContentLoadedEventEnd]; }"
                                )
                                parts.append(timing)
                                if attempt == 0:
                                    page.screenshot(path=str(shots / f"{key}.png"))
                                advance(1)
                            figures[f"{key}_p50_ms"] = round(statistics.median(samples) * 1000, 1)
                            figures[f"{key}_max_ms"] = round(max(samples) * 1000, 1)
                            # Where the time goes: the page's HTML received, its scripts run (DOMContentLoaded).
                            figures[f"{key}_html_p50_ms"] = round(statistics.median(p[0] for p in parts), 1)
                            figures[f"{key}_scripts_p50_ms"] = round(statistics.median(p[1] for p in parts), 1)
                    finally:
                        browser.close()
            finally:
                server.terminate()
                server.join()
        figures["canvas_ok"] = figures["canvas_open_p50_ms"] < 1000
        return figures
