"""The scoring model's thresholds as rows of a form (a name, a minimum score and what crossing it
does) instead of JSON: ``ThresholdsField`` reads the rows back into the list the model stores.

A threshold's keys and actions the rows cannot show (added through the API, say) ride along in a
hidden input per row, so saving the form never drops them. A post without the rows (the API's
shape: ``thresholds`` as JSON text) is still read as JSON.
"""

import json
import re

from django import forms

ROWS_SUFFIX = "-rows"
BLANK_ROWS = 2  # empty rows offered under the saved ones; saving shows two more
SHOWN_ACTIONS = {"handoff", "enrol", "notify"}
ERROR = re.compile(r"^thresholds\[(\d+)\](?:\.(\w+))?(?:\[(\d+)\]\.(\w+))?: (.*)$")
PART_LABELS = {
    "name": "name",
    "score": "minimum score",
    "type": "action",
    "workflow": "workflow to enrol in",
    "template": "notification template",
    "destination": "notification destination",
}


def _row_of(threshold) -> dict:
    """What one row shows of a threshold, and what it keeps aside (``extra``)."""
    if not isinstance(threshold, dict):
        blank = dict.fromkeys(("name", "score", "workflow", "template", "destination", "extra"), "")
        return {**blank, "handoff": False}
    actions = threshold.get("actions") if isinstance(threshold.get("actions"), list) else []
    shown, hidden = {}, []
    for spec in actions:
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind in SHOWN_ACTIONS and kind not in shown:
            shown[kind] = spec
        else:
            hidden.append(spec)
    extra = {k: v for k, v in threshold.items() if k not in ("name", "score", "actions")}
    if hidden:
        extra["actions"] = hidden
    notify = shown.get("notify", {})
    return {
        "name": threshold.get("name", ""),
        "score": threshold.get("score", ""),
        "handoff": "handoff" in shown,
        "workflow": shown.get("enrol", {}).get("workflow", ""),
        "template": notify.get("template", ""),
        "destination": notify.get("destination", ""),
        "extra": json.dumps(extra, ensure_ascii=False) if extra else "",
    }


def _score(text: str):
    """A whole number from the row, or the text itself (the check then names the row)."""
    try:
        return int(text)
    except ValueError:
        return text


class ThresholdsWidget(forms.Widget):
    template_name = "scoring/thresholds_widget.html"

    def __init__(self, attrs=None, choices=None):
        super().__init__(attrs)
        self.choices = choices or {}  # {"workflow"|"template"|"destination": [(slug, label)]}

    def format_value(self, value):
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                value = []
        return value if isinstance(value, list) else []

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        rows = [_row_of(item) for item in context["widget"]["value"]]
        rows += [_row_of(None) for _ in range(BLANK_ROWS)]
        for row in rows:
            row["options"] = {key: self._options(key, row[key]) for key in ("workflow", "template", "destination")}
        context["widget"].update(rows=rows, rows_name=name + ROWS_SUFFIX)
        return context

    def _options(self, key: str, current: str) -> list[tuple[str, str]]:
        options = list(self.choices.get(key, []))
        if current and current not in {slug for slug, _ in options}:
            options.append((current, f"{current} (not found)"))  # a saved value stays as it was
        return options

    def value_from_datadict(self, data, files, name):
        if name + ROWS_SUFFIX not in data:
            return data.get(name)  # the JSON text of a post without the rows
        try:
            count = min(int(data[name + ROWS_SUFFIX]), 200)
        except ValueError:
            count = 0
        thresholds = []
        for index in range(count):
            prefix = f"{name}-{index}-"
            text = {key: (data.get(prefix + key) or "").strip() for key in ("name", "score", "workflow", "template")}
            text["destination"] = (data.get(prefix + "destination") or "").strip()
            handoff = data.get(prefix + "handoff") in ("on", "true", "1")
            try:
                extra = json.loads(data.get(prefix + "extra") or "{}")
            except ValueError:
                extra = {}
            extra = extra if isinstance(extra, dict) else {}
            if not any(text.values()) and not handoff and not extra:
                continue  # an empty row
            actions = []
            if handoff:
                actions.append({"type": "handoff"})
            if text["workflow"]:
                actions.append({"type": "enrol", "workflow": text["workflow"]})
            if text["template"] or text["destination"]:
                actions.append({"type": "notify", "template": text["template"], "destination": text["destination"]})
            actions += extra.pop("actions", []) if isinstance(extra.get("actions"), list) else []
            threshold = {"name": text["name"], "score": _score(text["score"]) if text["score"] else None, **extra}
            if actions:
                threshold["actions"] = actions
            thresholds.append(threshold)
        # Rows may be typed in any order; a row without a whole number goes last (its error names
        # the row as the page shows it again: in this order).
        thresholds.sort(key=lambda t: (0, t["score"]) if isinstance(t["score"], int) else (1, 0))
        return thresholds

    def value_omitted_from_data(self, data, files, name):
        return name + ROWS_SUFFIX not in data and name not in data


class ThresholdsField(forms.JSONField):
    """A list of thresholds, from the rows (a list already) or from JSON text."""

    def bound_data(self, data, initial):
        return data if isinstance(data, list) else super().bound_data(data, initial)

    def prepare_value(self, value):
        return value if isinstance(value, list) else super().prepare_value(value)


def threshold_messages(errors: list[str]) -> list[str]:
    """The checks' messages (``thresholds[1].score: …``) in the rows' words (``Row 2, minimum score: …``)."""
    readable = []
    for message in errors:
        match = ERROR.match(message)
        if not match:
            readable.append(message)
            continue
        index, part, _action_index, action_part, reason = match.groups()
        where = f"Row {int(index) + 1}"
        label = PART_LABELS.get(action_part or part or "", action_part or part)
        readable.append(f"{where}, {label}: {reason}" if label else f"{where}: {reason}")
    return readable
