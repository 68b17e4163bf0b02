"""``bench console`` at a tiny size: one JSON line per page a marketer, an org admin and a sales
rep open, each answered 200 with its timings and query count, then a summary line with the
sizes and the canvas's figures; a second run finds the data there and does not generate it
again. The 200-step canvas workflow it opens is one the workflow checks accept. Timings are not
checked (the machine is shared); budgets are set out of reach so the run never fails on them.
PostgreSQL only, like the bench."""

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from marketing.bench_console import CHROMIUM, canvas_definition
from marketing.models import Contact, Organization
from marketing.tenancy import org_context
from workflows.definitions import definition_errors
from workflows.models import Workflow, WorkflowStepRun

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SIZES = ("--contacts", "300", "--workflows", "30", "--step-runs", "1000")
PAGES = {
    "marketer": {
        "home",
        "contacts",
        "contacts_search",
        "contacts_filter",
        "contact_page",
        "segments",
        "segment_page",
        "workflows",
        "workflows_search",
        "workflow_page",
        "canvas_page",
        "runs",
        "runs_failed",
        "runs_of_workflow",
        "run_page",
        "outbox",
        "outbox_failed",
        "approvals",
        "imports",
        "library",
    },
    "admin": {"home", "step_runs", "step_runs_failed", "runs", "contacts"},
    "sales": {"home", "handoffs", "handoff_page", "contact_page"},
}


def run(*extra: str) -> list[dict]:
    out = StringIO()
    call_command(
        "bench", "console", *SIZES, "--repeat", "1", "--budget-ms", "600000", *extra, stdout=out, stderr=StringIO()
    )
    return [json.loads(line) for line in out.getvalue().strip().splitlines()]


def test_bench_console_times_every_page_of_each_role_and_reuses_its_data():
    if connection.vendor != "postgresql":
        with pytest.raises(CommandError, match="PostgreSQL"):
            call_command("bench", "console", *SIZES, stdout=StringIO(), stderr=StringIO())
        return
    canvas = Path(CHROMIUM).exists()
    *pages, summary = run("--canvas-steps", "20", "--canvas-budget-ms", "600000", *(() if canvas else ("--no-canvas",)))

    seen: dict[str, set] = {}
    for page in pages:
        assert page["scenario"] == "console" and page["db"] == "postgresql"
        seen.setdefault(page["role"], set()).add(page["page"])
        assert page["status"] == 200, page
        assert page["ok"] is True
        assert page["p95_ms"] >= page["p50_ms"] > 0 and page["sql_p50_ms"] >= 0
        assert 0 < page["queries"] < 60, page  # a list that loads a row's relations one by one goes far over
        assert page["url"].startswith("/admin/")
    assert seen == PAGES

    assert (summary["contacts"], summary["workflows"], summary["step_runs"]) == (300, 30, 1000)
    assert summary["pages"] == len(pages) and summary["pages_over_budget"] == 0 and summary["ok"] is True
    assert summary["seed_seconds"] > 0
    if canvas:
        assert summary["canvas_steps"] == 20
        assert summary["canvas_open_p50_ms"] > 0 and summary["canvas_layout_p50_ms"] > 0
    with org_context(Organization.objects.get(slug="bench-console")):
        assert Contact.objects.filter(org__slug="bench-console").count() == 300
        assert Workflow.objects.filter(org__slug="bench-console", slug__startswith="wf-").count() == 30
        assert WorkflowStepRun.objects.filter(org__slug="bench-console").count() == 1000

    # Again: the data is there, so nothing is generated (and the canvas workflows are made anew).
    *again, summary = run("--no-canvas")
    assert summary["seed_seconds"] == 0.0
    assert [page["status"] for page in again] == [200] * len(pages)
    with org_context(Organization.objects.get(slug="bench-console")):
        assert Contact.objects.filter(org__slug="bench-console").count() == 300
        assert Workflow.objects.filter(org__slug="bench-console", slug__startswith="bench-canvas").count() == 2


def test_a_page_over_budget_fails_the_run_after_printing_its_figures():
    if connection.vendor != "postgresql":
        pytest.skip("bench console generates its data in PostgreSQL")
    out = StringIO()
    with pytest.raises(CommandError, match="Over budget: home"):
        call_command(
            "bench",
            "console",
            *SIZES,
            "--repeat",
            "1",
            "--budget-ms",
            "0",
            "--no-canvas",
            stdout=out,
            stderr=StringIO(),
        )
    *pages, summary = [json.loads(line) for line in out.getvalue().strip().splitlines()]
    assert all(page["ok"] is False for page in pages)
    assert summary["ok"] is False and summary["pages_over_budget"] == len(pages)


@pytest.mark.parametrize("positions", [True, False])
def test_the_canvas_workflow_is_a_valid_200_step_definition(org, positions):
    definition = canvas_definition(200, positions=positions)

    assert len(definition["steps"]) == 200
    assert definition_errors(definition, org=org) == []
    assert {step["type"] for step in definition["steps"]} >= {
        "condition",
        "action",
        "delay",
        "wait_for_event",
        "split",
        "switch",
        "goal",
    }
    assert all(("position" in step) is positions for step in definition["steps"])
