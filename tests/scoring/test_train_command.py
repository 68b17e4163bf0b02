"""``manage.py train_scoring_model``: its printed figures, its errors, and the demo it is shown on."""

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from marketing.models import Contact, Event
from scoring.models import ContactScore, PredictiveModel, ScoringModel
from scoring.predictive_demo import demo_prediction_history
from tests.scoring.test_predictive import make_history

REPO = Path(__file__).resolve().parents[2]


def _train(*args) -> list[str]:
    out = io.StringIO()
    call_command("train_scoring_model", *args, stdout=out)
    return out.getvalue().splitlines()


def test_prints_the_held_out_metrics_one_per_line(org):
    make_history(org)
    lead_score = ScoringModel.objects.create(org=org, slug="lead-score", name="Lead score", is_default=True)
    scored = Contact.objects.filter(org=org).order_by("pk")[:5]
    ContactScore.objects.bulk_create(ContactScore(org=org, model=lead_score, contact=c, score=100) for c in scored)

    lines = _train("--org", org.slug, "--seed", "7", "--test-size", "0.3")

    figures = dict(line.split(": ", 1) for line in lines)
    model = PredictiveModel.objects.get(org=org)
    assert float(figures["AUC"]) == pytest.approx(model.metrics["auc"], abs=5e-4) and float(figures["AUC"]) > 0.8
    assert re.fullmatch(r"AUC: 0\.\d{3}", next(line for line in lines if line.startswith("AUC")))
    for name, key in (("Precision", "precision"), ("Recall", "recall"), ("F1", "f1"), ("Base rate", "base_rate")):
        assert float(figures[name]) == pytest.approx(model.metrics[key], abs=5e-4)
    assert figures["Rows"].startswith("300 (") and "held-out 90" in figures["Rows"]
    assert figures["Model"].startswith(f"v1 ({model.algorithm};")
    assert figures["Top features"].startswith(model.importances[0]["feature"])
    assert figures["Predicted"] == "5 scored contacts"
    assert ContactScore.objects.filter(org=org, probability__isnull=False).count() == 5


def test_a_second_run_is_a_new_active_version(org):
    make_history(org)
    _train("--org", org.slug, "--no-predict", "--algorithm", "logistic_regression")
    lines = _train("--org", org.slug, "--no-predict", "--algorithm", "logistic_regression")
    assert lines[0].startswith("v2 (logistic_regression;", len("Model: "))
    assert list(PredictiveModel.objects.filter(org=org).values_list("version", "active")) == [(2, True), (1, False)]
    assert not any(line.startswith("Predicted") for line in lines)


def test_unknown_org(db):
    with pytest.raises(CommandError, match="No organisation with slug 'nope'"):
        _train("--org", "nope")


def test_too_little_data(org):
    make_history(org, n=20)
    with pytest.raises(CommandError, match=r"^Too little data: 20 contacts, at least 50 are needed\.$"):
        _train("--org", org.slug)
    Event.objects.filter(org=org, type="purchase").delete()
    Contact.objects.filter(org=org).update(lifecycle_stage="lead")
    make_history(org, n=60, prefix="more")
    Event.objects.filter(org=org, type="purchase").delete()
    Contact.objects.filter(org=org).update(lifecycle_stage="lead")
    with pytest.raises(CommandError, match="0 converted and 80 not converted"):
        _train("--org", org.slug)


def test_exits_non_zero_with_one_line(transactional_db, org, shared_database_url):
    make_history(org, n=10)
    done = subprocess.run(  # noqa: S603  our own manage.py, arguments built here
        [sys.executable, "manage.py", "train_scoring_model", "--org", org.slug],
        cwd=REPO, env={**os.environ, "DATABASE_URL": shared_database_url}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == ["CommandError: Too little data: 10 contacts, at least 50 are needed."]
    assert done.stdout == ""


def test_the_demo_history_trains_to_the_acceptance_auc_and_seeds_once(org):
    out = io.StringIO()
    demo_prediction_history(org=org, users={}, stdout=out)
    contacts, events = Contact.objects.filter(org=org).count(), Event.objects.filter(org=org).count()
    assert contacts == 600 and events > 5000
    demo_prediction_history(org=org, users={}, stdout=out)  # a second seed adds nothing
    assert (Contact.objects.filter(org=org).count(), Event.objects.filter(org=org).count()) == (contacts, events)
    assert "0 past contacts and 0 events added" in out.getvalue().splitlines()[-1]

    figures = dict(line.split(": ", 1) for line in _train("--org", org.slug, "--no-predict"))

    assert float(figures["AUC"]) >= 0.75
    model = PredictiveModel.objects.get(org=org)
    assert 0.2 < model.metrics["base_rate"] < 0.5
    # The hidden intent shows through the behaviour it drove, not the contact's age.
    top = [item["feature"] for item in model.importances[:5]]
    assert "days_since_first_seen" not in top
    assert any("pricing" in name or "email_click" in name or "demo" in name for name in top)
