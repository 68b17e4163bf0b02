"""The scoring trigger of workflows (registered in ``workflows.triggers``): ``score_threshold``
starts a run when a contact's score crosses a threshold of a scoring model, e.g.
{"type": "score_threshold", "model": "lead-score", "threshold": "high", "direction": "up"}.

It listens for the ``score_threshold_crossed`` events that scoring records (one per crossing,
recorded once), so enrolment dedupes on the event like any event trigger."""

from scoring.models import ScoringModel
from scoring.rules import THRESHOLD_EVENT
from scoring.selectors import scoring_model_get
from workflows.triggers import Trigger, trigger


@trigger
class ScoreThreshold(Trigger):
    """A contact's score crosses a named threshold (``direction`` up, down or either; ``model``
    defaults to the default model)."""

    name = "score_threshold"
    label = "A score crosses a threshold"
    description = "Starts when a contact's score rises above (or falls below) one of the scoring model's thresholds."
    config_schema = {
        "type": "object",
        "required": ["type", "threshold"],
        "properties": {
            "type": {"type": "string", "title": "Trigger"},
            "model": {
                "type": "string",
                "minLength": 1,
                "maxLength": 100,
                "title": "Scoring model",
                "description": "Which score (the default one if left empty).",
            },
            "threshold": {
                "type": "string",
                "minLength": 1,
                "maxLength": 100,
                "title": "Threshold",
                "description": "The name of one of the model's thresholds, e.g. MQL.",
            },
            "direction": {
                "title": "Direction",
                "type": "string",
                "oneOf": [
                    {"const": "up", "title": "Rises above it"},
                    {"const": "down", "title": "Falls below it"},
                    {"const": "either", "title": "Either way"},
                ],
            },
        },
        "additionalProperties": False,
    }

    def _model(self, config: dict, org) -> ScoringModel | None:
        return scoring_model_get(org=org, slug=config.get("model"))

    def check(self, config, *, org):
        if org is None:
            return []
        model = self._model(config, org)
        if model is None:
            return [f"model: there is no scoring model “{config.get('model') or 'default'}”."]
        names = [str(t.get("name")) for t in model.thresholds or [] if isinstance(t, dict)]
        if config.get("threshold") not in names:
            return [
                f"threshold: “{model.name}” has no threshold “{config.get('threshold')}” (it has {', '.join(names)})."
            ]
        return []

    def event_type(self, config):
        return THRESHOLD_EVENT

    def matches(self, event, config, contact):
        properties = event.properties or {}
        if properties.get("threshold") != config["threshold"]:
            return False
        direction = config.get("direction", "up")
        if direction != "either" and properties.get("direction") != direction:
            return False
        if config.get("model"):
            return properties.get("model") == config["model"]
        return properties.get("default_model") is True
