"""Predictive scoring: training on history, predictions on contacts, and the rules-only fallbacks."""

import logging
import os
import random
from datetime import timedelta

import pytest
import skops.io
from django.utils import timezone

from marketing.models import Company, Contact, Event
from scoring import predictive
from scoring.models import ContactScore, PredictiveModel, ScoringModel
from scoring.predictive import (
    FALLBACKS,
    TrainingDataError,
    UntrustedArtifactError,
    artifact_load,
    contacts_predict,
    predictive_model_train,
)
from tests.factories import ContactFactory

NOW = timezone.now()


def make_history(org, *, n=300, seed=1, prefix="h") -> list[Contact]:
    """``n`` contacts; about a third converted (a purchase, stage customer). Converters looked at
    pricing, asked for demos and clicked emails more, and sit in bigger companies; with noise."""
    rng = random.Random(seed)
    small = Company.objects.create(org=org, name="Small", domain=f"{prefix}-small.example", size=8)
    big = Company.objects.create(org=org, name="Big", domain=f"{prefix}-big.example", size=2000)
    contacts, plans = [], []
    for i in range(n):
        converted = rng.random() < 0.35
        anchor = NOW - timedelta(days=rng.uniform(1, 60)) if converted else NOW
        contacts.append(
            Contact(
                org=org,
                email=f"{prefix}{i}@example.com",
                company=big if rng.random() < (0.7 if converted else 0.3) else small,
                lifecycle_stage="customer" if converted else "lead",
                created_at=anchor - timedelta(days=rng.uniform(30, 90)),
            )
        )
        rate = 3 if converted else 1
        plan = [("page_view", {"path": "/"}, rng.randrange(0, 4))]
        plan += [("page_view", {"path": "/pricing"}, rng.randrange(0, 2 * rate + 1))]
        plan += [("email_clicked", {}, rng.randrange(0, rate + 1))]
        plan += [("demo_requested", {}, int(rng.random() < 0.15 * rate))]
        plans.append((anchor, converted, plan))
    Contact.objects.bulk_create(contacts)
    events = []
    for contact, (anchor, converted, plan) in zip(contacts, plans, strict=True):
        for event_type, properties, count in plan:
            for k in range(count):
                at = anchor - timedelta(days=rng.uniform(0.1, 25))
                events.append((contact, event_type, properties, at, k))
        if converted:
            events.append((contact, "purchase", {}, anchor, 0))
    Event.objects.bulk_create(
        Event(
            org=org,
            contact=contact,
            type=event_type,
            properties=properties,
            occurred_at=at,
            message_id=f"{prefix}-{contact.pk}-{event_type}-{properties.get('path')}-{k}",
        )
        for contact, event_type, properties, at, k in events
    )
    return contacts


@pytest.fixture
def history(org):
    return make_history(org)


@pytest.fixture
def lead_score(org):
    return ScoringModel.objects.create(org=org, slug="lead-score", name="Lead score", is_default=True)


@pytest.fixture
def trained(org, history):
    return predictive_model_train(org=org, seed=3).model


@pytest.fixture(autouse=True)
def fresh_cache():
    predictive._versions.clear()
    predictive._warned_no_model.clear()
    FALLBACKS.clear()


def _score(org, model, contact, score=100):
    return ContactScore.objects.create(org=org, model=model, contact=contact, score=score)


def test_training_on_a_clear_signal_stores_a_good_version(org, history):
    first = predictive_model_train(org=org, seed=3)
    second = predictive_model_train(org=org, seed=4).model
    model = first.model
    model.refresh_from_db()

    assert model.metrics["auc"] > 0.8
    assert {"auc", "precision", "recall", "f1", "base_rate", "rows", "positives"} <= set(model.metrics)
    assert model.metrics["rows"] == 300 and first.test_rows == 75 and first.train_rows == 225
    assert 0.2 < model.metrics["base_rate"] < 0.5
    assert model.algorithm in predictive.ALGORITHMS and model.version == 1 and second.version == 2
    assert not model.active and second.active  # one active version: the newest
    assert len(model.importances) == len(model.feature_names)
    importance = [item["importance"] for item in model.importances]
    assert importance == sorted(importance, reverse=True)
    signal = {"page_views_90d:/pricing", "events_90d:page_view", "events_30d:page_view", "company_size_log"}
    assert {item["feature"] for item in model.importances[:6]} & signal
    loaded = artifact_load(bytes(model.artifact))
    assert loaded.predict_proba([[0.0] * len(model.feature_names)]).shape == (1, 2)


@pytest.mark.parametrize("algorithm", ["logistic_regression", "gradient_boosting"])
def test_either_algorithm_trains_and_reloads(org, history, algorithm):
    model = predictive_model_train(org=org, seed=5, algorithm=algorithm).model
    assert model.algorithm == algorithm and model.metrics["auc"] > 0.8
    assert list(model.metrics["cv_auc"]) == [algorithm]
    estimator = artifact_load(PredictiveModel.objects.get(pk=model.pk).artifact)
    assert estimator.predict_proba([[0.0] * len(model.feature_names)]).shape == (1, 2)


def test_too_little_data_is_a_readable_error(org):
    make_history(org, n=30)
    with pytest.raises(TrainingDataError, match="30 contacts, at least 50"):
        predictive_model_train(org=org)
    Contact.objects.filter(org=org).update(lifecycle_stage="lead")
    Event.objects.filter(org=org, type="purchase").delete()
    make_history(org, n=40, prefix="more")
    Contact.objects.filter(org=org).update(lifecycle_stage="lead")
    Event.objects.filter(org=org, type="purchase").delete()
    with pytest.raises(TrainingDataError, match="0 converted and 70 not converted"):
        predictive_model_train(org=org)
    assert not PredictiveModel.objects.filter(org=org).exists()


def test_prediction_writes_probability_and_factors(org, trained, lead_score):
    eager = ContactFactory(org=org, email="eager@example.com", created_at=NOW - timedelta(days=40))
    for k in range(6):
        Event.objects.create(
            org=org,
            contact=eager,
            type="page_view",
            properties={"path": "/pricing"},
            occurred_at=NOW - timedelta(days=k + 1),
            message_id=f"eager-{k}",
        )
    idle = ContactFactory(org=org, email="idle@example.com", created_at=NOW - timedelta(days=40))
    unscored = ContactFactory(org=org, email="unscored@example.com")
    rows = {c.pk: _score(org, lead_score, c) for c in (eager, idle)}

    written = contacts_predict(org=org, contact_ids=[eager.pk, idle.pk, unscored.pk], now=NOW)

    assert written == 2
    for row in rows.values():
        row.refresh_from_db()
    high, low = rows[eager.pk], rows[idle.pk]
    assert 0 <= low.probability < high.probability <= 1
    assert high.predicted_at == NOW and high.score == 100  # the rules' score is not touched
    assert 1 <= len(high.factors) <= 3 and set(high.factors[0]) == {"feature", "value", "effect"}
    top = high.factors[0]
    assert top["effect"] > 0 and top["value"] >= 1  # what raises it: the pricing views, a non-zero count
    assert top["feature"].endswith((":/pricing", ":page_view"))
    effects = [abs(f["effect"]) for f in high.factors]
    assert effects == sorted(effects, reverse=True)
    assert not ContactScore.objects.filter(contact=unscored).exists()  # not scored yet: left alone


def test_a_scored_batch_is_predicted_by_a_task_once_it_commits(
    org, trained, lead_score, eager_tasks, django_capture_on_commit_callbacks
):
    from marketing.dispatch import consumers
    from tests.scoring.test_rules import make_event, make_rule

    make_rule(lead_score, "email_clicked", 10)
    contact = ContactFactory(org=org)
    with django_capture_on_commit_callbacks() as callbacks:
        consumers()["scoring"].consume([make_event(contact, "email_clicked")])
        row = ContactScore.objects.get(contact=contact)
        assert (row.score, row.probability) == (110, None)  # the batch is not held up by the model
    assert len(callbacks) == 1
    callbacks[0]()  # the batch committed: its task predicts
    row.refresh_from_db()
    assert 0 <= row.probability <= 1 and row.predicted_at is not None


def test_the_estimator_is_loaded_once_per_model(org, trained, lead_score):
    contact = ContactFactory(org=org)
    row = _score(org, lead_score, contact)
    assert contacts_predict(org=org, contact_ids=[contact.pk]) == 1
    PredictiveModel.objects.filter(pk=trained.pk).update(artifact=b"gone")  # the cached one still predicts
    assert contacts_predict(org=org, contact_ids=[contact.pk]) == 1
    row.refresh_from_db()
    assert row.probability is not None


def test_no_model_means_rules_only_and_says_so_once(org, lead_score, caplog):
    contact = ContactFactory(org=org)
    _score(org, lead_score, contact)
    with caplog.at_level(logging.WARNING, logger="scoring.predictive"):
        assert contacts_predict(org=org, contact_ids=[contact.pk]) == 0
        assert contacts_predict(org=org, contact_ids=[contact.pk]) == 0
    assert FALLBACKS["no_model"] == 2
    assert [r.getMessage() for r in caplog.records] == [
        "predictive scoring: no trained model org=org-a; scoring with rules only"
    ]
    assert ContactScore.objects.get(contact=contact).probability is None


def test_a_corrupt_artifact_falls_back_with_a_warning(org, trained, lead_score, caplog):
    contact = ContactFactory(org=org)
    _score(org, lead_score, contact)
    PredictiveModel.objects.filter(pk=trained.pk).update(artifact=b"not a zip file")
    with caplog.at_level(logging.WARNING, logger="scoring.predictive"):
        assert contacts_predict(org=org, contact_ids=[contact.pk]) == 0
    assert FALLBACKS["failed"] == 1
    assert len(caplog.records) == 1 and "predictive scoring failed org=org-a model=v1" in caplog.records[0].getMessage()
    assert ContactScore.objects.get(contact=contact).probability is None


def test_features_the_code_no_longer_makes_fall_back(org, trained, lead_score, caplog):
    contact = ContactFactory(org=org)
    _score(org, lead_score, contact)
    PredictiveModel.objects.filter(pk=trained.pk).update(feature_names=[*trained.feature_names, "shoe_size"])
    with caplog.at_level(logging.WARNING, logger="scoring.predictive"):
        assert contacts_predict(org=org, contact_ids=[contact.pk]) == 0
    assert "ValueError" in caplog.records[0].getMessage()


def test_skops_refuses_an_untrusted_type(org, trained, lead_score, caplog):
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    sneaky = skops.io.dumps(Pipeline([("run", FunctionTransformer(func=os.system))]))
    with pytest.raises(UntrustedArtifactError, match="system"):
        artifact_load(sneaky)

    contact = ContactFactory(org=org)
    _score(org, lead_score, contact)
    PredictiveModel.objects.filter(pk=trained.pk).update(artifact=sneaky)
    with caplog.at_level(logging.WARNING, logger="scoring.predictive"):
        assert contacts_predict(org=org, contact_ids=[contact.pk]) == 0
    assert "UntrustedArtifactError" in caplog.records[0].getMessage()


def test_each_factor_is_the_change_from_setting_that_feature_to_its_training_mean():
    import numpy as np
    from sklearn.ensemble import GradientBoostingClassifier

    rng = np.random.default_rng(3)
    X = rng.integers(0, 4, size=(200, 5)).astype(float)  # noqa: N806
    y = (X[:, 0] + X[:, 2] > 3).astype(int)
    estimator = GradientBoostingClassifier(n_estimators=20, random_state=0).fit(X, y)
    names = ["a", "b", "c", "d", "e"]
    means = X.mean(axis=0)
    means[1] = 2.0  # a mean a row may equal: that feature cannot be a factor of that row
    recorded = {n: float(m) for n, m in zip(names, means, strict=True)}
    recorded["e"] = None  # no mean recorded: never a factor
    rows = np.array([[3, 2, 3, 0, 1], [0, 1, 0, 3, 3]], dtype=float)

    proba, factors = predictive._proba_and_factors(estimator, rows, names=names, means=recorded)

    assert np.allclose(proba, estimator.predict_proba(rows)[:, 1])

    for row, p, found in zip(rows, proba, factors, strict=True):
        expected = {}
        for c in range(4):
            if row[c] != means[c]:
                probe = row.copy()
                probe[c] = means[c]
                expected[names[c]] = p - estimator.predict_proba(probe[None, :])[0, 1]
        top = sorted((n for n in expected if abs(expected[n]) >= 1e-4), key=lambda n: -abs(expected[n]))[:3]
        assert [f["feature"] for f in found] == top
        assert all(f["effect"] == round(float(expected[f["feature"]]), 4) for f in found)
    named = [f["feature"] for found in factors for f in found]
    assert named and "e" not in named
