"""The scoring actions of workflows (registered in ``workflows.actions``).

``adjust_score`` writes a ``manual`` ledger row in the engine's transaction, so it commits with
the step run or not at all (exactly once by construction). The handoff action follows below.
"""

from django.core.exceptions import ValidationError

from scoring.selectors import scoring_model_get
from workflows.actions import Action, ActionContext, PermanentError, action


@action
class AdjustScore(Action):
    """Adds points to (or takes them off) the contact's score, e.g. {"points": 20, "note": "webinar
    attended"}; ``model`` names a scoring model by slug (default: the default model)."""

    name = "adjust_score"
    label = "Adjust the score"
    description = "Adds points to the contact's score, or takes them off (a negative number)."
    config_schema = {
        "type": "object",
        "required": ["points"],
        "properties": {
            "points": {"type": "integer", "minimum": -100000, "maximum": 100000, "title": "Points"},
            "model": {
                "type": "string",
                "minLength": 1,
                "maxLength": 100,
                "title": "Scoring model",
                "description": "Which score to change (the default one if left empty).",
            },
            "note": {
                "type": "string",
                "maxLength": 200,
                "title": "Note",
                "description": "Shown in the score's history.",
            },
        },
        "additionalProperties": False,
    }

    def check(self, config, *, org):
        if org is not None and scoring_model_get(org=org, slug=config.get("model")) is None:
            if config.get("model"):
                return [f"model: there is no scoring model “{config['model']}”."]
            return ["model: the organisation has no default scoring model; name one."]
        return []

    def run(self, ctx: ActionContext) -> dict:
        from scoring.rules import score_adjust

        model = scoring_model_get(org=ctx.org, slug=ctx.config.get("model"))
        if model is None:
            raise PermanentError(f"model: there is no scoring model “{ctx.config.get('model') or 'default'}”.")
        note = ctx.config.get("note") or f"workflow {getattr(ctx.instance, 'workflow_id', '?')}, step {ctx.step_id}"
        try:
            row = score_adjust(
                org=ctx.org,
                contact=ctx.contact,
                model=model,
                delta=ctx.config["points"],
                note=note,
                now=ctx.now,
                cause=ctx.idempotency_key,
            )
        except ValidationError as exc:
            raise PermanentError("; ".join(exc.messages)) from exc
        return {"model": model.slug, "points": ctx.config["points"], "score": row.score}

    def preview(self, ctx: ActionContext) -> dict:
        """The score this step would leave (clamped to the model's range); no writes."""
        from scoring.models import ContactScore
        from scoring.rules import clamp

        model = scoring_model_get(org=ctx.org, slug=ctx.config.get("model"))
        if model is None:
            return {"would": self.name, "error": "no such scoring model"}
        current = ContactScore.objects.filter(org=ctx.org, contact=ctx.contact, model=model).values_list(
            "score", flat=True
        )
        before = current.first()
        before = model.base if before is None else before
        return {
            "would": self.name,
            "model": model.slug,
            "points": ctx.config.get("points"),
            "score_before": before,
            "score_after": clamp(model, before + int(ctx.config.get("points") or 0)),
        }


@action
class HandoffToSales(Action):
    """Hands the run's contact to sales (``handoff_create``, reason "workflow"), e.g.
    {"note": "asked for pricing twice"}. In the engine's transaction, so the handoff commits with
    the step run; a retried step, or a contact already in the queue, gets the open handoff back."""

    name = "handoff_to_sales"
    label = "Hand off to sales"
    description = "Puts the contact in the sales queue for a rep to follow up."
    config_schema = {
        "type": "object",
        "properties": {
            "note": {"type": "string", "maxLength": 300, "title": "Note", "description": "What the rep should know."}
        },
        "additionalProperties": False,
    }

    def run(self, ctx: ActionContext) -> dict:
        from scoring.handoffs import LIVE, handoff_create
        from scoring.models import Handoff

        note = ctx.config.get("note") or f"workflow {getattr(ctx.instance, 'workflow_id', '?')}, step {ctx.step_id}"
        handoff = handoff_create(
            org=ctx.org,
            contact=ctx.contact,
            reason=Handoff.Reason.WORKFLOW,
            model=scoring_model_get(org=ctx.org, slug=None),
            detail=note,
            now=ctx.now,
        )
        created = handoff is not None
        if handoff is None:  # already in the queue (or this step ran before): that one stands
            handoff = Handoff.objects.filter(org=ctx.org, contact=ctx.contact, status__in=LIVE).first()
        if handoff is None:
            raise PermanentError("handoff: the contact could not be handed off.")
        return {
            "handoff": handoff.pk,
            "created": created,
            "assignee": handoff.assignee_id,
            "status": handoff.status,
        }

    def preview(self, ctx: ActionContext) -> dict:
        """Whether a handoff would be made (or the open one kept); no writes."""
        from scoring.handoffs import LIVE
        from scoring.models import Handoff

        open_one = Handoff.objects.filter(org=ctx.org, contact=ctx.contact, status__in=LIVE).first()
        return {"would": self.name, "existing_handoff": open_one.pk if open_one else None}
