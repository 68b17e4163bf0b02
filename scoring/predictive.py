"""Predictive scoring: a conversion model trained on the org's history, and its predictions.

``predictive_model_train`` builds one feature row per contact (``scoring.features``; converted
contacts as they were just before converting, so the label does not leak), holds out a stratified
split, picks logistic regression or gradient boosting by cross-validated AUC on the training part,
fits it, measures it on the held-out part (AUC, precision, recall, F1 at a threshold chosen on
the training part, the base rate) and stores it as a new ``PredictiveModel`` version, serialised
with skops, with permutation importances; older versions are deactivated.

``contacts_predict`` writes a conversion probability and the three features that move it most
on the contacts' default-model ``ContactScore`` rows. It only updates rows that exist: a contact
without one has not been scored yet, and creating the row is the scoring service's job (its
score = base, Σ delta = 0, and ``Contact.score`` mirrored in the same write). Without a model, or
when loading or predicting fails (a corrupt artifact, a type skops does not trust, features the
code no longer makes), it logs one warning line, counts it in ``FALLBACKS`` and returns 0: scoring
carries on with the rules alone, never an error for the user.

Scoring asks for predictions with ``predictions_enqueue``: after its batch commits, one task
(``scoring.tasks.contacts_predict_task``) predicts for the contacts whose score changed. So the
event dispatch never waits on the estimator, nor holds the batch's score rows locked while it
runs, and a failing model cannot hold back the rules' scores.

Artifacts are loaded with ``skops.io.loads`` trusting only what ``get_untrusted_types`` reports
*and* ``TRUSTED_TYPES`` lists (the scikit-learn classes our two pipelines need beyond skops's
defaults): an artifact naming anything else is refused, never executed.
"""

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from threadpoolctl import ThreadpoolController

from marketing.bulk_sql import update_rows
from marketing.consent_providers import consent_allowed_q
from marketing.models import Organization
from scoring.features import FeatureSpec, contact_features, feature_spec_for, training_features
from scoring.models import ContactScore, PredictiveModel, ScoringModel
from scoring.rules import PROFILING

logger = logging.getLogger(__name__)

MIN_ROWS = 50
MIN_PER_CLASS = 5
FACTORS = 3
# Beyond skops's defaults (builtins, numpy arrays and dtypes, the common sklearn estimators).
TRUSTED_TYPES = frozenset({"sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"})
ALGORITHMS = ("logistic_regression", "gradient_boosting")

# What prediction fell back from, per reason (a process-level metric: "no_model", "failed").
FALLBACKS: Counter = Counter()
_versions: dict[int, "_Loaded"] = {}  # PredictiveModel id → the version as predicting needs it, per process
_warned_no_model: set[int] = set()
_threadpools: list[ThreadpoolController] = []  # made once: making one inspects every loaded library


def _one_thread():
    """One OpenMP thread for gradient boosting. On a small shared machine its thread pool costs more
    than it gives: 0.3 s a fit instead of 2–4 s for a thousand contacts, and a few-row predict
    waits up to 400 ms for busy threads at p95 instead of under 5 ms."""
    if not _threadpools:
        _threadpools.append(ThreadpoolController())
    return _threadpools[0].limit(limits=1, user_api="openmp")


class TrainingDataError(ValueError):
    """The org's data cannot train a model (too few contacts, or only one outcome)."""


class UntrustedArtifactError(ValueError):
    """An artifact names a type outside the allow-list; it is refused, not loaded."""


@dataclass
class TrainingResult:
    model: PredictiveModel
    train_rows: int
    test_rows: int


def _candidates(seed: int) -> dict:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return {
        "logistic_regression": Pipeline(
            [("scale", StandardScaler()), ("model", LogisticRegression(C=0.5, max_iter=2000))]
        ),
        "gradient_boosting": HistGradientBoostingClassifier(
            max_iter=150, learning_rate=0.05, max_leaf_nodes=15, l2_regularization=1.0, random_state=seed
        ),
    }


def predictive_model_train(
    *, org: Organization, test_size: float = 0.25, seed: int = 42, algorithm: str = "auto", by=None, now=None
) -> TrainingResult:
    """Trains, evaluates and stores a new active ``PredictiveModel`` version for ``org``.

    Raises ``TrainingDataError`` (a readable one-line message) when the data cannot train a model.
    """
    with _one_thread():
        return _train(org=org, test_size=test_size, seed=seed, algorithm=algorithm, by=by, now=now)


def _train(*, org, test_size, seed, algorithm, by, now) -> TrainingResult:
    from sklearn.base import clone
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split

    if algorithm != "auto" and algorithm not in ALGORITHMS:
        raise TrainingDataError(f"Unknown algorithm '{algorithm}': use auto, {', '.join(ALGORITHMS)}.")
    if not 0 < test_size < 1:
        raise TrainingDataError(f"--test-size must be between 0 and 1, not {test_size}.")
    now = now or timezone.now()
    spec = feature_spec_for(org=org)
    rows = training_features(org=org, spec=spec, now=now)
    positives = int(rows.y.sum())
    negatives = len(rows.y) - positives
    if len(rows.y) < MIN_ROWS:
        raise TrainingDataError(f"Too little data: {len(rows.y)} contacts, at least {MIN_ROWS} are needed.")
    if min(positives, negatives) < MIN_PER_CLASS:
        raise TrainingDataError(
            f"Too little data: {positives} converted and {negatives} not converted contacts; "
            f"at least {MIN_PER_CLASS} of each are needed."
        )
    X_train, X_test, y_train, y_test = train_test_split(  # noqa: N806  sklearn's names
        rows.X, rows.y, test_size=test_size, stratify=rows.y, random_state=seed
    )
    if min(int(y_test.sum()), len(y_test) - int(y_test.sum())) < 1:
        raise TrainingDataError("Too little data: the held-out split has only one outcome; raise --test-size.")

    # Out-of-fold probabilities on the training part choose the algorithm and the threshold, so
    # the held-out part is touched once, for the figures.
    smallest_class = min(int(y_train.sum()), len(y_train) - int(y_train.sum()))
    folds = StratifiedKFold(n_splits=max(2, min(5, smallest_class)), shuffle=True, random_state=seed)
    candidates = _candidates(seed)
    names = [algorithm] if algorithm != "auto" else list(ALGORITHMS)
    oof = {
        name: cross_val_predict(candidates[name], X_train, y_train, cv=folds, method="predict_proba")[:, 1]
        for name in names
    }
    cv_auc = {name: roc_auc_score(y_train, oof[name]) for name in names}
    chosen = max(names, key=lambda name: cv_auc[name])
    threshold = _best_f1_threshold(y_train, oof[chosen])

    estimator = clone(candidates[chosen]).fit(X_train, y_train)
    proba = estimator.predict_proba(X_test)[:, 1]
    predicted = (proba >= threshold).astype(int)
    metrics = {
        "auc": round(float(roc_auc_score(y_test, proba)), 4),
        "precision": round(float(precision_score(y_test, predicted, zero_division=0)), 4),
        "recall": round(float(recall_score(y_test, predicted, zero_division=0)), 4),
        "f1": round(float(f1_score(y_test, predicted, zero_division=0)), 4),
        "threshold": round(float(threshold), 4),
        "base_rate": round(positives / len(rows.y), 4),
        "rows": len(rows.y),
        "positives": positives,
        "train_rows": len(y_train),
        "test_rows": len(y_test),
        "cv_auc": {name: round(float(value), 4) for name, value in cv_auc.items()},
    }
    importance = permutation_importance(
        estimator,
        X_test,
        y_test,
        scoring="roc_auc",
        n_repeats=5,
        random_state=seed,
        max_samples=min(1.0, 5000 / len(y_test)),
    )
    # The training mean of each feature rides along: a contact's factors compare it with them.
    means = X_train.mean(axis=0)
    importances = sorted(
        (
            {"feature": name, "importance": round(float(value), 5), "mean": round(float(mean), 5)}
            for name, value, mean in zip(rows.names, importance.importances_mean, means, strict=True)
        ),
        key=lambda item: (-item["importance"], item["feature"]),
    )
    import skops.io  # with scikit-learn: 2–3 s to import, paid only where a model is trained or used

    artifact = skops.io.dumps(estimator)
    with transaction.atomic():
        Organization.objects.select_for_update().get(pk=org.pk)  # one version number at a time
        version = (PredictiveModel.objects.filter(org=org).aggregate(v=Max("version"))["v"] or 0) + 1
        PredictiveModel.objects.filter(org=org, active=True).update(active=False)
        model = PredictiveModel.objects.create(
            org=org,
            version=version,
            algorithm=chosen,
            artifact=artifact,
            feature_names=rows.names,
            metrics=metrics,
            importances=importances,
            active=True,
            trained_at=now,
            trained_by=by,
        )
    logger.info(
        "predictive model trained org=%s version=%s algorithm=%s auc=%s rows=%s",
        org.slug,
        version,
        chosen,
        metrics["auc"],
        len(rows.y),
    )
    return TrainingResult(model=model, train_rows=len(y_train), test_rows=len(y_test))


def _best_f1_threshold(y, proba) -> float:
    """The probability cut that maximises F1 on these (out-of-fold) predictions."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(y, proba)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0)
    best = int(np.argmax(f1[:-1])) if len(thresholds) else 0
    return float(thresholds[best]) if len(thresholds) else 0.5


def artifact_load(data: bytes):
    """The estimator in ``data``, if every type it names is trusted (skops's defaults plus
    ``TRUSTED_TYPES``); raises ``UntrustedArtifactError`` naming the others."""
    import skops.io

    untrusted = skops.io.get_untrusted_types(data=bytes(data))
    refused = sorted(set(untrusted) - TRUSTED_TYPES)
    if refused:
        raise UntrustedArtifactError(f"The artifact names types outside the allow-list: {', '.join(refused)}.")
    return skops.io.loads(bytes(data), trusted=list(untrusted))


@dataclass(frozen=True)
class _Loaded:
    """A model version as predicting needs it: read once per process (a version's estimator,
    features and training means never change; only whether it is active does)."""

    estimator: object
    spec: FeatureSpec
    means: dict[str, float | None]  # feature → its training mean, for the factors


def _loaded(pk: int) -> _Loaded:
    loaded = _versions.get(pk)
    if loaded is None:
        artifact, names, importances = (
            PredictiveModel.objects.filter(pk=pk).values_list("artifact", "feature_names", "importances").get()
        )
        means = {item["feature"]: item.get("mean") for item in importances}
        loaded = _versions[pk] = _Loaded(artifact_load(artifact), FeatureSpec.from_names(names), means)
    return loaded


def contacts_predict(*, org, contact_ids, now=None) -> int:
    """Predicts for these contacts with the org's newest active model and writes the probability
    and top factors on their default-model ``ContactScore`` rows; returns how many were written
    (0: rules only — no model, or prediction failed, which is logged and counted, never raised)."""
    contact_ids = list(contact_ids)
    if not contact_ids:
        return 0
    version = "?"
    try:
        # A savepoint: a failed statement must not spoil the caller's transaction.
        with transaction.atomic():
            newest = PredictiveModel.objects.filter(org=org, active=True).order_by("-version")
            pk, version = newest.values_list("pk", "version").first() or (None, "?")
            if pk is None:
                _no_model(org)
                return 0
            return _predict(org=org, model=_loaded(pk), contact_ids=contact_ids, now=now or timezone.now())
    except Exception as exc:  # any failure means rules only; the user never sees an error
        FALLBACKS["failed"] += 1
        logger.warning(
            "predictive scoring failed org=%s model=v%s error=%s: %s; scoring with rules only",
            org.slug,
            version,
            type(exc).__name__,
            str(exc)[:200],
        )
        return 0


def predictions_enqueue(*, org, contact_ids) -> bool:
    """Asks for predictions for these contacts once the current transaction commits (one task);
    False, counted and logged as ``contacts_predict`` does, when the org has no trained model."""
    from marketing.celery import enqueue_on_commit
    from scoring.tasks import contacts_predict_task

    contact_ids = sorted(contact_ids)
    if not contact_ids:
        return False
    if not PredictiveModel.objects.filter(org=org, active=True).exists():
        _no_model(org)
        return False
    enqueue_on_commit(contacts_predict_task, org_id=org.pk, contact_ids=contact_ids)
    return True


def _no_model(org) -> None:
    FALLBACKS["no_model"] += 1
    if org.pk not in _warned_no_model:  # once per org and process: the normal state before training
        _warned_no_model.add(org.pk)
        logger.warning("predictive scoring: no trained model org=%s; scoring with rules only", org.slug)


def org_predict(*, org, batch_size: int = 1000, now=None) -> int:
    """Predicts for every scored contact of the org (its default-model ``ContactScore`` rows), in
    batches; returns how many got a probability. Run after training so the new model shows."""
    default = ScoringModel.objects.filter(org=org, is_default=True).values_list("pk", flat=True).first()
    if default is None:
        return 0
    ids = list(
        ContactScore.objects.filter(org=org, model_id=default)
        .order_by("contact_id")
        .values_list("contact_id", flat=True)
    )
    now = now or timezone.now()
    return sum(
        contacts_predict(org=org, contact_ids=ids[first : first + batch_size], now=now)
        for first in range(0, len(ids), batch_size)
    )


def _predict(*, org, model: _Loaded, contact_ids: list, now: datetime) -> int:
    # A contact without profiling consent (as the org's regime has it) gets no prediction.
    scores = dict(
        ContactScore.objects.filter(org=org, model__is_default=True, contact_id__any_of=contact_ids)
        .filter(consent_allowed_q(org=org, purpose=PROFILING, field="contact_id"))
        .values_list("contact_id", "pk")
    )
    if not scores:
        return 0
    rows = contact_features(org=org, contact_ids=list(scores), spec=model.spec, now=now)
    with _one_thread():
        proba, factors = _proba_and_factors(model.estimator, rows.X, names=rows.names, means=model.means)
    changed = [
        ContactScore(
            pk=scores[contact_id],
            probability=round(float(probability), 4),
            factors=contact_factors,
            predicted_at=now,
        )
        for contact_id, probability, contact_factors in zip(rows.contact_ids, proba, factors, strict=True)
    ]
    update_rows(changed, ["probability", "factors", "predicted_at"])
    return len(changed)


def _proba_and_factors(estimator, X, *, names, means) -> tuple[np.ndarray, list[list[dict]]]:  # noqa: N803
    """Each contact's probability and the features whose value moves it most: each feature in
    turn is set to its training mean and the change in probability is its effect (positive: this
    value raises the probability). One ``predict_proba`` over the contacts' rows followed by
    (contacts × features that differ) probe rows."""
    mean = np.array([np.nan if means.get(name) is None else means[name] for name in names], dtype=np.float64)
    differs = ~np.isnan(mean)[None, :] & ~np.isclose(X, mean[None, :])
    rows, columns = np.nonzero(differs)
    probes = X[rows]  # one copy of its contact's row per differing feature
    probes[np.arange(len(rows)), columns] = mean[columns]
    predicted = estimator.predict_proba(np.vstack([X, probes]))[:, 1]
    proba = predicted[: len(X)]
    effects = np.zeros(X.shape, dtype=np.float64)
    effects[rows, columns] = proba[rows] - predicted[len(X) :]
    # The largest effects first; ties in feature order (a stable sort).
    top = np.argsort(-np.abs(effects), axis=1, kind="stable")[:, :FACTORS]
    factors = [
        [
            {"feature": names[c], "value": _plain(X[r, c]), "effect": round(float(effects[r, c]), 4)}
            for c in top[r]
            if differs[r, c] and abs(effects[r, c]) >= 1e-4
        ]
        for r in range(len(X))
    ]
    return proba, factors


def _plain(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(float(value), 3)
