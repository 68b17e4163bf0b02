"""A template's problems as the console shows them: on the variant and field they concern.

``template_errors`` and ``RenderError`` speak in sentences that name their place
(``variants[A].html: unexpected tag 'endfor' at line 3, column 5.``), which is what the publish
action and the JSON box show. The variant editor puts each one under its field instead, so the
sentence is split here into the variant, the field, the line and column, and what to change.
"""

import re
from typing import Any

LINE = re.compile(r"\bat line (\d+), column (\d+)")


def template_problems(messages: list[str], variants: Any) -> list[dict]:
    """``{"variant", "index", "field", "path", "line", "column", "message"}`` per message, for
    ``variants`` (the list the messages were made from): ``variant`` is the name or position the
    message gives, ``index`` the variant's position in the list (None when no variant matches),
    ``field`` the variant's field (``subject``, ``html``, … or ``name``, ``weight``; empty for a
    problem of the whole list), ``path`` the rest of a payload's path, and ``line`` and
    ``column`` the place in the field's text when the message gives one."""
    names = [v.get("name") if isinstance(v, dict) else None for v in variants] if isinstance(variants, list) else []
    return [_problem(message, names) for message in messages]


def _problem(message: str, names: list) -> dict:
    problem = {"variant": None, "index": None, "field": "", "path": "", "line": None, "column": None}
    rest = message
    # The message's own prefix uses the variant's name when it has one, else its position.
    candidates = [(i, n) for i, n in enumerate(names) if isinstance(n, str) and n] + list(enumerate(map(str, names)))
    for index, label in candidates:
        prefix = f"variants[{label}]"
        if message.startswith(prefix + ".") or message.startswith(prefix + ":"):
            problem.update(variant=label, index=index)
            rest = message[len(prefix) :]
            break
    place, separator, reason = rest.partition(": ")
    if separator and problem["index"] is not None:
        field, _, path = place.lstrip(".").partition(".")
        field, bracket, index_path = field.partition("[")
        problem.update(field=field, path=(path or (bracket + index_path)))
        rest = reason
    elif separator and place in ("variants", "channel"):
        rest = reason
    found = LINE.search(rest)
    if found:
        problem.update(line=int(found.group(1)), column=int(found.group(2)))
    problem["message"] = rest[:1].upper() + rest[1:]
    return problem
