"""Scoring's Celery tasks: thin wrappers that load ids and call one service."""

from celery import shared_task


@shared_task(acks_late=True)
def scores_decay_all() -> int:
    """Decays every active scoring model of every org (beat runs it daily; a contact decays at
    most once per window, so running it more often, or twice, is harmless)."""
    from scoring.decay import scores_decay_all_models

    return scores_decay_all_models()


@shared_task(acks_late=True)
def scores_recompute_model(model_id: int, replay_days: int = 0) -> dict:
    """Recomputes every contact's score in one model after its rules changed, first replaying the
    events of the last ``replay_days`` days into it when asked (idempotent)."""
    from datetime import timedelta

    from django.utils import timezone

    from marketing.database_roles import org_of
    from marketing.tenancy import org_context
    from scoring.models import ScoringModel
    from scoring.recompute import scores_recompute, scores_replay

    # The task names only the model: its org is looked up through the system alias, then the
    # model is read and recomputed as the app role in that org's context (docs/tenancy.md).
    org = org_of(ScoringModel, model_id)
    if org is None:
        return {"model": None, "contacts": 0, "changed": 0}
    with org_context(org):
        model = ScoringModel.objects.select_related("org").filter(pk=model_id).first()
        if model is None:  # deleted since
            return {"model": None, "contacts": 0, "changed": 0}
        replayed = {}
        if replay_days > 0:
            replayed = scores_replay(model=model, since=timezone.now() - timedelta(days=replay_days))
        return {**scores_recompute(model=model), "replayed_events": replayed.get("events", 0)}


@shared_task(acks_late=True)
def contacts_predict_task(*, org_id: int, contact_ids: list[int]) -> int:
    """Predicts for the contacts a scored batch changed (``predictive.predictions_enqueue``);
    best effort: a failure is logged and counted, and the rules' scores stand."""
    from marketing.models import Organization
    from marketing.tenancy import org_context
    from scoring.predictive import contacts_predict

    org = Organization.objects.filter(pk=org_id).first()
    if org is None:  # deleted since
        return 0
    with org_context(org):
        return contacts_predict(org=org, contact_ids=contact_ids)
