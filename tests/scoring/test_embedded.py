"""Scoring on the embedded default (SQLite, no broker), as the README's first command sets it up:
the demo's scores follow their ledger, and replay, recomputation and decay run there too (their
SQLite branches, which the PostgreSQL suite does not reach). Separate processes, as a newcomer
runs them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

# Contacts whose default-model score is not base + Σ delta, and mirrors out of step.
CHECK = """
from django.db.models import Sum
from django_scopes import scopes_disabled
from scoring.models import ContactScore, ScoreLedger
with scopes_disabled():
    sums = {
        (row["contact_id"], row["model_id"]): row["total"]
        for row in ScoreLedger.objects.values("contact_id", "model_id").annotate(total=Sum("delta"))
    }
    rows = ContactScore.objects.select_related("model", "contact")
    broken = sum(r.score != r.model.base + sums.get((r.contact_id, r.model_id), 0) for r in rows)
    drift = sum(r.model.is_default and r.contact.score != r.score for r in rows)
    print(rows.count(), broken, drift)
"""


def manage(*args: str, env: dict) -> list[str]:
    result = subprocess.run(  # noqa: S603  our own interpreter and manage.py
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().splitlines()


def test_scoring_on_the_embedded_database(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    manage("demo", "--no-serve", env=env)

    scored, broken, drift = map(int, manage("shell", "-c", CHECK, env=env)[-1].split())
    assert scored > 100 and (broken, drift) == (0, 0)

    replayed, recomputed = manage("recompute_scores", "--org", "acme", "--replay-days", "30", env=env)
    assert replayed.startswith("replayed ") and "into model lead-score" in replayed
    assert recomputed.startswith("recomputed ") and recomputed.endswith(": 0 changed")
    again = manage("recompute_scores", "--org", "acme", "--replay-days", "30", env=env)[0]
    assert again.endswith(": 0 contacts changed")
    assert manage("recompute_scores", "--org", "acme", "--decay", env=env)[0].startswith("decayed ")

    scored_after, broken, drift = map(int, manage("shell", "-c", CHECK, env=env)[-1].split())
    assert scored_after >= scored and (broken, drift) == (0, 0)
