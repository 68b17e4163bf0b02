"""``validate``: a rule is checked when it is saved, never found wrong when it runs.

Unknown operators, unknown fields, computed ``var`` paths, malformed operations and rules that
are too deep or too big are errors that name the operator or the path (and where it is).
"""

import json
from typing import Any

from django.core.exceptions import ValidationError

from marketing.conditions.fields import SUBJECTS, field_info
from marketing.conditions.operators import operators
from marketing.field_encryption import is_phone

STANDARD = {
    "var",
    "missing",
    "missing_some",
    "if",
    "?:",
    "==",
    "===",
    "!=",
    "!==",
    "!",
    "!!",
    "or",
    "and",
    ">",
    ">=",
    "<",
    "<=",
    "max",
    "min",
    "+",
    "-",
    "*",
    "/",
    "%",
    "map",
    "reduce",
    "filter",
    "all",
    "none",
    "some",
    "merge",
    "in",
    "cat",
    "substr",
}
ITERATORS = {"map", "reduce", "filter", "all", "none", "some"}
# What may be asked of an encrypted field (a phone, a sensitive property): is set and is empty
# (its truth, or equality with "" or null) and equals (through its blind index).
ENCRYPTED_TRUTH = {"!", "!!", "and", "or"}
ENCRYPTED_EQUALITY = {"==", "!=", "===", "!=="}
MAX_DEPTH = 32
MAX_NODES = 2000
_namespaces: dict[str, set[str]] = {"event": {"contact"}}


def register_namespace(name: str, *, subjects: tuple[str, ...] = ("contact",)) -> None:
    """Allows paths under ``name.`` (e.g. ``workflow.vars.x``) in rules over ``subjects``;
    their contents are known only where the rule runs."""
    _namespaces.setdefault(name, set()).update(subjects)


def validate(rule: Any, subject: str, *, org=None) -> None:
    """Raises ValidationError listing every problem in ``rule`` for ``subject`` (contact, event,
    company); custom properties are looked up in ``org`` (default: the current org)."""
    errors = rule_errors(rule, subject, org=org)
    if errors:
        raise ValidationError(errors)


def rule_errors(rule: Any, subject: str, *, org=None) -> list[str]:
    """The problems of ``rule`` for ``subject``, as readable sentences (empty when it is fine)."""
    from marketing.tenancy import current_org

    if subject not in SUBJECTS:
        return [f"Unknown subject “{subject}”: use one of {', '.join(SUBJECTS)}."]
    try:
        size = len(json.dumps(rule))
    except (TypeError, ValueError):
        return ["A rule is JSON: objects, lists, strings, numbers, booleans and null."]
    if size > 64 * 1024:
        return ["The rule is larger than 64 KB."]
    walker = _Walker(subject, org or current_org())
    walker.walk(rule, "", depth=0, in_iterator=False)
    return walker.errors


class _Walker:
    def __init__(self, subject: str, org):
        self.subject, self.org, self.errors, self.nodes = subject, org, [], 0

    def walk(self, node: Any, at: str, *, depth: int, in_iterator: bool) -> None:
        self.nodes += 1
        if depth > MAX_DEPTH or self.nodes > MAX_NODES:
            if not any("too deep" in e for e in self.errors):
                self.errors.append(f"The rule is too deep or too big (at most {MAX_DEPTH} levels, {MAX_NODES} parts).")
            return
        if isinstance(node, list):
            for index, item in enumerate(node):
                self.walk(item, f"{at}/{index}", depth=depth + 1, in_iterator=in_iterator)
            return
        if not isinstance(node, dict):
            return
        if len(node) != 1:
            self.errors.append(f"At {at or '/'}: an operation is an object with exactly one key, got {sorted(node)}.")
            return
        ((op, args),) = node.items()
        where = f"{at}/{op}"
        custom = operators().get(op)
        if custom is not None:
            self.errors += [
                f"At {where}: {e}" for e in custom.check(args if isinstance(args, list) else [args], self.subject)
            ]
            return
        if op not in STANDARD:
            self.errors.append(f"Unknown operator “{op}” at {at or '/'}.")
            return
        if op == "var":
            self._var(args, where, in_iterator=in_iterator)
            return
        if op in ("missing", "missing_some"):
            paths = args if isinstance(args, list) else [args]
            if op == "missing_some" and len(paths) == 2 and isinstance(paths[1], list):
                paths = paths[1]
            for path in paths:
                if isinstance(path, str) and not in_iterator:
                    self._path(path, where)
            return
        items = args if isinstance(args, list) else [args]
        if not in_iterator:
            self._encrypted_uses(op, items, where)
        if op in ("!", "!!") and not items:
            self.errors.append(f"At {where}: “{op}” needs an argument.")
        for index, item in enumerate(items):
            scoped = in_iterator or (op in ITERATORS and index > 0)
            self.walk(item, f"{where}/{index}", depth=depth + 1, in_iterator=scoped)

    def _var(self, args: Any, where: str, *, in_iterator: bool) -> None:
        path = args[0] if isinstance(args, list) and args else args
        if isinstance(args, list) and len(args) > 1 and isinstance(args[1], dict):
            self.errors.append(f"At {where}: a var's default must be a plain value.")
        if isinstance(path, dict | list):
            self.errors.append(f"At {where}: stored rules may not compute var paths; write the path out.")
            return
        if in_iterator:
            return  # the path names a field of the list item, which is not known here
        if path in (None, "") or isinstance(path, int | float):
            self.errors.append(f'At {where}: name a field, e.g. {{"var": "country"}}.')
            return
        self._path(str(path), where)

    def _encrypted_uses(self, op: str, items: list, where: str) -> None:
        """An encrypted field may only be tested for being set or empty, or for equality with a
        value (compared through its blind index); anything else is an error naming the field."""
        for index, item in enumerate(items):
            path = _var_path(item)
            if path is None:
                continue
            info = field_info(self.subject, path, org=self.org)
            if info is None or not info.encrypted:
                continue
            if op in ENCRYPTED_TRUTH:
                continue
            if op in ENCRYPTED_EQUALITY and len(items) == 2:
                other = items[1 - index]
                if other is None or other == "":
                    continue
                if info.index == "phone_bidx" and not isinstance(other, dict | list) and not is_phone(str(other)):
                    self.errors.append(
                        f"At {where}: “{path}” is compared as stored, in E.164: write the number as +4915112345678."
                    )
                    continue
                if info.json_key is not None and not isinstance(other, str | dict | list):
                    self.errors.append(f"At {where}: “{path}” is text: compare it with a text value.")
                    continue
                if not isinstance(other, dict | list):
                    continue
            self.errors.append(
                f"At {where}: “{path}” is encrypted: a rule may only ask whether it is set, whether it is "
                f"empty, or whether it equals a value (==, !=), not “{op}”."
            )

    def _path(self, path: str, where: str) -> None:
        namespace = path.split(".", 1)[0]
        if self.subject in _namespaces.get(namespace, set()):
            return
        if field_info(self.subject, path, org=self.org) is not None:
            return
        if path.startswith(("properties.", "company.properties.")):
            self.errors.append(f"Unknown property “{path}” at {where}: define it first (Property definitions).")
        else:
            self.errors.append(f"Unknown field “{path}” at {where} for a {self.subject}.")


def _var_path(node: Any) -> str | None:
    """The path a ``{"var": …}`` node reads (a default allowed), else None."""
    if not isinstance(node, dict) or set(node) != {"var"}:
        return None
    path = node["var"]
    if isinstance(path, list):
        path = path[0] if path else None
    return path if isinstance(path, str) and path else None
