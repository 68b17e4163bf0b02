"""JSON from outside: parsed with a depth bound and checked for values we cannot store.

Python's parser recurses once per nesting level, so ``[[[[…` ten thousand deep raises
``RecursionError`` (a 500 if nobody catches it); and it accepts what PostgreSQL's ``jsonb`` and
``text`` refuse (NUL characters, lone UTF-16 surrogates) and what JSON itself has no way to say
(``NaN``, ``Infinity``). Every endpoint that reads a JSON body goes through ``json_parse``; those
that store items one by one (batches) parse leniently and ask ``json_problem`` per item, so one bad
item is that item's error and the others are stored.

Errors name where the problem is, as a path from the body's top: ``batch[3].properties.plan``.
"""

import json
import math
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 64  # nesting levels of objects and arrays; real payloads use a handful


class JsonInputError(ValueError):
    """A body or value that is not acceptable JSON; ``str()`` is a sentence naming the path."""

    def __init__(self, message: str, *, path: str = ""):
        self.path, self.reason = path, message
        super().__init__(f"{path}: {message}" if path else message)


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _string_problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which cannot be stored"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone UTF-16 surrogate (\\ud800-\\udfff), which is not valid Unicode"
    return None


def json_problem(value: Any, *, path: str = "", depth: int = 0) -> JsonInputError | None:
    """The first thing in ``value`` (already parsed) that cannot be stored, or None: nesting past
    ``MAX_DEPTH``, NUL characters or lone surrogates in strings or keys, non-finite numbers."""
    stack = [(value, path, depth)]
    while stack:
        item, where, level = stack.pop()
        if isinstance(item, str):
            problem = _string_problem(item)
            if problem:
                return JsonInputError(problem, path=where)
        elif isinstance(item, float):
            if not math.isfinite(item):
                return JsonInputError("must be a finite number (NaN and Infinity are not JSON)", path=where)
        elif isinstance(item, dict | list):
            if level >= MAX_DEPTH:
                return JsonInputError(f"nested deeper than {MAX_DEPTH} levels", path=where)
            if isinstance(item, dict):
                for key, child in item.items():
                    problem = _string_problem(str(key))
                    if problem:
                        return JsonInputError(f"a key {problem}", path=where or "body")
                    stack.append((child, _join(where, str(key)), level + 1))
            else:
                stack.extend((child, _join(where, index), level + 1) for index, child in enumerate(item))
    return None


def json_parse(raw: bytes | str, *, check: bool = True) -> Any:
    """Parses a JSON body. Raises ``JsonInputError`` when it is not JSON, nests too deeply, or
    (with ``check``) holds a value ``json_problem`` refuses. ``check=False`` leaves the per-value
    checks to the caller (a batch checks each item on its own)."""
    try:
        data = json.loads(raw)
    except RecursionError:
        raise JsonInputError(f"nested deeper than {MAX_DEPTH} levels") from None
    except UnicodeDecodeError as exc:
        raise JsonInputError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except ValueError as exc:
        raise JsonInputError(f"not valid JSON ({exc})") from None
    problem = json_problem(data) if check else _depth_problem(data)
    if problem:
        raise problem
    return data


def _depth_problem(value: Any) -> JsonInputError | None:
    stack = [(value, "", 0)]
    while stack:
        item, where, level = stack.pop()
        if isinstance(item, dict | list):
            if level >= MAX_DEPTH:
                return JsonInputError(f"nested deeper than {MAX_DEPTH} levels", path=where)
            children = item.items() if isinstance(item, dict) else enumerate(item)
            stack.extend((child, _join(where, key), level + 1) for key, child in children)
    return None


class StrictJSONParser(JSONParser):
    """DRF's JSON parser through ``json_parse``: a 400 naming the field instead of a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        try:
            return json_parse(raw or b"null")
        except JsonInputError as exc:
            raise ParseError(f"JSON parse error: {exc}.") from None
