"""What changed between two workflow definitions: steps added, removed and changed, the trigger,
the settings and the first step, each named in the words the canvas uses (docs/api.md,
"Versions and what changed").

A step is matched by its id. Its canvas position is not a change, and neither is a field that
is missing on one side and empty (``null``) on the other. Fields are named by their form titles
(the step type's, or for an action's settings the action's), exits by their canvas labels.
"""

from typing import Any

from workflows.actions import actions
from workflows.steps import step_types
from workflows.triggers import triggers

NOT_CHANGES = {"id", "position"}  # the id matches the steps; the position is the canvas's layout
SETTING_WORDS = {
    "reenrollment": "who may start again",
    "max_active_per_contact": "runs at once per contact",
    "goal": "the goal",
    "exit": "the exit rule",
}


def definition_diff(old: dict | None, new: dict | None) -> dict:
    """The changes from ``old`` to ``new`` (either may be None: no definition yet).

    ``{"added": [step ids], "removed": [step ids], "changed": [{"step", "fields": [words],
    "paths": [field paths]}], "trigger_changed": bool, "trigger_fields": [words],
    "settings_changed": [words], "first_step": {"from", "to"} | None,
    "steps": {id: {"name", "type", "kind"}}, "summary": [sentences]}``. ``steps`` describes
    every step the lists name (a removed one as it was); ``summary`` says it all in sentences."""
    old, new = old or {}, new or {}
    before, after = _steps(old), _steps(new)
    added = [step_id for step_id in after if step_id not in before]
    removed = [step_id for step_id in before if step_id not in after]
    changed = []
    for step_id, step in after.items():
        if step_id in before:
            paths = _step_changes(before[step_id], step)
            if paths:
                words = _unique(_step_words(step, before[step_id], path) for path in paths)
                changed.append({"step": step_id, "fields": words, "paths": paths})
    trigger_paths = _dict_changes(old.get("trigger") or {}, new.get("trigger") or {})
    settings_paths = _dict_changes(old.get("settings") or {}, new.get("settings") or {})
    first_before, first_after = next(iter(before), None), next(iter(after), None)
    first_moved = first_before != first_after and first_before in after and first_after in before
    diff = {
        "added": added,
        "removed": removed,
        "changed": changed,
        "trigger_changed": bool(trigger_paths),
        "trigger_fields": _unique(_trigger_word(new.get("trigger") or {}, p) for p in trigger_paths),
        "settings_changed": _unique(SETTING_WORDS.get(p.split(".")[0], _human(p)) for p in settings_paths),
        "first_step": {"from": first_before, "to": first_after} if first_moved else None,
        "steps": {
            step_id: _described(after.get(step_id) or before[step_id])
            for step_id in [*added, *removed, *(c["step"] for c in changed)]
            + ([first_before, first_after] if first_moved else [])
        },
    }
    diff["summary"] = diff_sentences(diff)
    return diff


def diff_sentences(diff: dict) -> list[str]:
    """The changes of ``definition_diff`` as sentences, for the canvas and the publish page."""
    steps = diff["steps"]

    def named(step_id: str) -> str:
        step = steps[step_id]
        return f"“{step['name'] or step_id}” ({step['kind']})"

    lines = [f"Added {named(s)}." for s in diff["added"]]
    lines += [f"Removed {named(s)}." for s in diff["removed"]]
    lines += [f"Changed {named(c['step'])}: {', '.join(c['fields'])}." for c in diff["changed"]]
    if diff["first_step"]:
        moved = diff["first_step"]
        lines.append(f"Runs now start at {named(moved['to'])} instead of {named(moved['from'])}.")
    if diff["trigger_changed"]:
        lines.append(f"Changed what starts it: {', '.join(diff['trigger_fields'])}.")
    if diff["settings_changed"]:
        lines.append(f"Changed the settings: {', '.join(diff['settings_changed'])}.")
    return lines or ["No changes."]


def _steps(definition: dict) -> dict[str, dict]:
    steps = definition.get("steps") or []
    return {s["id"]: s for s in steps if isinstance(s, dict) and isinstance(s.get("id"), str)}


def _described(step: dict) -> dict:
    return {"name": step.get("name") or "", "type": step.get("type") or "", "kind": _kind(step)}


def _kind(step: dict) -> str:
    if step.get("type") == "action":
        action = actions().get(step.get("action"))
        return action.label if action else _human(step.get("action") or "action")
    kind = step_types().get(step.get("type"))
    return kind.label if kind else _human(step.get("type") or "step")


def _present(value: Any) -> bool:
    return value is not None


def _dict_changes(old: dict, new: dict, *, skip: frozenset | set = frozenset()) -> list[str]:
    """The top-level keys whose values differ (a missing key equals null)."""
    keys = [k for k in {**old, **new} if k not in skip]
    return [k for k in keys if old.get(k) != new.get(k) and (_present(old.get(k)) or _present(new.get(k)))]


def _step_changes(old: dict, new: dict) -> list[str]:
    """Field paths that differ: ``config`` and other objects one level down (``config.subject``),
    and a list of paths or branches split into the paths themselves and where they lead."""
    paths = []
    for key in _dict_changes(old, new, skip=NOT_CHANGES):
        before, after = old.get(key), new.get(key)
        if isinstance(before, dict) and isinstance(after, dict) and key == "config":
            paths += [f"{key}.{sub}" for sub in _dict_changes(before, after)]
        elif isinstance(before, list) and isinstance(after, list) and _linked_items(before, after):
            if [_without_next(i) for i in before] != [_without_next(i) for i in after]:
                paths.append(key)
            if [i.get("next") for i in before] != [i.get("next") for i in after]:
                paths.append(f"{key}[].next")
        else:
            paths.append(key)
    return paths


def _linked_items(before: list, after: list) -> bool:
    """Whether both lists hold items that carry their own ``next`` (switch cases, split paths)."""
    items = [*before, *after]
    return bool(items) and all(isinstance(i, dict) for i in items) and any("next" in i for i in items)


def _without_next(item: dict) -> dict:
    return {k: v for k, v in item.items() if k != "next"}


def _step_words(step: dict, old: dict, path: str) -> str:
    """A field path of a step in plain words, by its form title or its exit's label."""
    kind = step_types().get(step.get("type")) or step_types().get(old.get("type"))
    if path == "type":
        return f"its type (was {_kind(old)})"
    if path == "name":
        return "its name"
    if path == "action":
        return f"what it does (was {_kind(old)})"
    exits = kind.exits if kind else []
    if path.endswith("[].next"):
        return f"where its {_plural(_title(kind, path.removesuffix('[].next')))} lead"
    for exit in exits:
        if "array" in exit and exit["array"] == path and exit.get("field") is None:
            return f"its {_plural(exit['label'].lower())}"  # parallel branches: the targets themselves
        if "array" not in exit and exit["field"] == path:
            return f"where “{exit['label']}” leads"
    if path.startswith("config.") and step.get("type") == "action":
        action = actions().get(step.get("action"))
        field = (action.config_schema.get("properties", {}) if action else {}).get(path.split(".", 1)[1], {})
        return _quoted(field.get("title") or _human(path.split(".", 1)[1]))
    if "." in path:
        top, sub = path.split(".", 1)
        parent = (kind.schema if kind else {}).get(top) or {}
        title = parent.get("properties", {}).get(sub, {}).get("title") or _human(sub)
        # "Wait" and "For" say it together: "Wait for".
        return _quoted(f"{parent['title']} {title[:1].lower()}{title[1:]}" if parent.get("title") else title)
    return _quoted(_title(kind, path))


def _title(kind, key: str) -> str:
    return ((kind.schema if kind else {}).get(key) or {}).get("title") or _human(key)


def _plural(word: str) -> str:
    word = word.lower()
    return word if word.endswith("s") else word + "s"


def _trigger_word(trigger: dict, key: str) -> str:
    if key == "type":
        return "the kind of start"
    kind = triggers().get(trigger.get("type"))
    field = (kind.config_schema.get("properties", {}) if kind else {}).get(key, {})
    return _quoted(field.get("title") or _human(key))


def _quoted(title: str) -> str:
    return f"“{title}”"


def _human(key: str) -> str:
    return key.replace("_", " ").strip() or key


def _unique(words) -> list[str]:
    return list(dict.fromkeys(words))
