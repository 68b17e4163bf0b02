"""``bench scoring`` at a small size: one JSON line whose figures agree with what it did (the rules
scored, the model was trained before the dispatch phase and the batches' prediction tasks
predicted, as many new events drained by two Celery worker processes when there is a broker,
every inactive contact decayed on two connections), and the bench org is gone afterwards.
PostgreSQL only, like the bench."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from marketing.models import Contact, Organization
from marketing.tenancy import org_context

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_bench_scoring_prints_consistent_figures_and_cleans_up(request, settings, monkeypatch):
    if connection.vendor != "postgresql":
        with pytest.raises(CommandError, match="needs PostgreSQL"):
            call_command("bench", "scoring", stdout=StringIO(), stderr=StringIO())
        return
    drained = not settings.EMBEDDED  # Celery workers drain a phase when there is a broker
    if drained:  # the workers reach this test's database
        monkeypatch.setenv("DATABASE_URL", request.getfixturevalue("shared_database_url"))
    out = StringIO()
    call_command(
        "bench",
        "scoring",
        *("--contacts", "600", "--events", "3000", "--active", "300", "--predictions", "5"),
        *(("--workers", "2") if drained else ()),
        stdout=out,
        stderr=StringIO(),
    )

    [line] = out.getvalue().strip().splitlines()
    figures = json.loads(line)
    assert (figures["scenario"], figures["db"], figures["contacts"], figures["events"]) == (
        "scoring",
        "postgresql",
        600,
        3000,
    )
    assert figures["dispatch_events_per_s"] > 0 and figures["scoring_events_per_s"] > 0
    # One prediction task per dispatch batch (1,500 events: 3 batches), each over its changed contacts.
    assert figures["predict_tasks"] == 3 and figures["predicted_contacts_per_s"] > 0
    assert 0 < figures["dispatch_and_predict_events_per_s"] <= figures["dispatch_events_per_s"]
    assert 0 < figures["contacts_scored"] <= 300
    assert figures["ledger_rows"] >= figures["contacts_scored"]
    assert 0.5 <= figures["auc"] <= 1 and figures["predict_p95_ms"] >= figures["predict_p50_ms"] > 0
    # Every inactive contact, and the few active ones whose events all went the direct way
    # (``events_score`` alone does not move ``last_activity_at``); never one the dispatch saw.
    # (An inactive contact whose id is a multiple of 400 was given the base score: nothing to decay.)
    assert 600 - 300 - 1 <= figures["decayed"] < 600 - 300 + 30
    assert figures["decay_seconds"] > 0 and figures["decay_raw_seconds"] > 0
    assert figures["decay_workers"] == 2  # SCORING_DECAY_WORKERS: the parts ran at once
    if drained:  # 1,500 more events through two worker processes, none of them retried
        assert figures["dispatch_workers"] == 2 and figures["workers_dispatch_retries"] == 0
        assert 0 < figures["workers_dispatch_and_predict_events_per_s"] <= figures["workers_dispatch_events_per_s"]
    assert figures["decay_vs_raw"] > 0  # the ratio of unrounded times (the two above are rounded)
    org = Organization.objects.get(slug="bench-scoring")
    with org_context(org):  # the bench org's rows, as row-level security shows them to the app role
        assert not Contact.objects.filter(org=org).exists()
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM scoring_scoreledger WHERE org_id = %s", [org.pk])
            assert cursor.fetchone()[0] == 0
