"""Message templates: checked, rendered in a sandbox, sanitised, and (for email) made trackable.

Templates are written by users, so they are Liquid (python-liquid), never Django or Jinja
templates, and they run in an environment with resource limits (``SandboxEnvironment``):

- Liquid only reads keys of mappings and items of lists; it has no attribute access, no calls
  and no imports. What a template sees is plain JSON (``render`` round-trips the data through
  ``json``), so no Python object — a model, a manager, a function — is reachable from it.
- ``include`` and ``render`` are removed (there is no file system or template loader).
- Loop iterations (10,000 in all), ranges and loops (10,000 items), output (512 KB), assigned
  variables (256 KB), nesting, every intermediate string, list and number a filter makes, the
  memory one render builds (16 MB) and its wall-clock time (1 s, checked before every filter,
  loop iteration and field) are bounded; a template that hits a limit fails with a
  ``RenderError`` naming the variant, field and limit.
- Memory is a budget per ``render`` call (all fields of a variant): every filter's result is
  charged at its deep size (a list counts each item it refers to, once per reference: that is
  what joining or printing it builds), and so are captures, loops and ``cycle`` keys. Filters that
  can build far more than they are given (``join``, ``concat``, ``append``, ``prepend``, the
  ``replace`` family, ``split``, ``slice``, any string filter given a list) have their result's
  size predicted from their arguments and are refused before they build it; so is printing a
  list. ``sys.getsizeof`` of the namespace, Liquid's own measure, counts a list of 8,192
  references to one 150 KB string as 64 KB.
- Missing values render as nothing (strict undefined is off), so ``{{ first_name | default:
  "there" }}`` is how a fallback is written.

What a template sees (``template_data``)::

    {
      # the contact's facts (docs/conditions.md) at the top level, because people write
      # {{ first_name }}:
      "id": 42, "email": "ana@example.com", "first_name": "Ana", "last_name": "Lima",
      "phone": …, "job_title": …, "country": …, "time_zone": …, "locale": …,
      "lifecycle_stage": …, "lead_status": …, "owner": …, "created_at": …,
      "last_activity_at": …, "score": …, "tags": [...], "lists": [...],
      "properties": {"plan": "pro", …},            # custom properties
      # and the same again under names of their own:
      "contact": {…the same facts…},
      "company": {"name", "domain", "industry", "size", "revenue", "properties"},  # {} if none
      "org": {"name": "Acme", "postal_address": "1 Main Street…"},
      "message": {"id": 7, "channel": "email", "purpose": "marketing"},   # what is known
      # inside a workflow run (when the caller's facts carry them, docs/conditions.md):
      "event": {"type", "occurred_at", "properties"}, "workflow": {"trigger", "vars", "steps"},
    }

So ``{{ first_name }}``, ``{{ contact.first_name }}``, ``{{ properties.plan }}``,
``{{ company.name | default: "your team" }}`` and ``{% if properties.seats > 10 %}`` all work.

HTML (the email ``html`` field) is rendered with auto-escaping (a contact's name cannot inject
markup), then sanitised with nh3: common email tags, ``href``/``src`` limited to http(s) and
mailto, ``style`` attributes kept but filtered to a list of harmless CSS properties, ``<script>``
and ``<style>`` dropped with their content, every ``on*`` handler dropped. A ``text`` part is
derived from the HTML when the template has none.
"""

import functools
import hashlib
import html as html_lib
import json
import re
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import nh3
from django.core.serializers.json import DjangoJSONEncoder
from liquid import Environment
from liquid.builtin.expressions import LoopExpression
from liquid.builtin.expressions.primitive import RangeLiteral
from liquid.builtin.output import Output, OutputNode
from liquid.builtin.tags.capture_tag import CaptureNode, CaptureTag
from liquid.builtin.tags.cycle_tag import CycleNode, CycleTag
from liquid.builtin.tags.echo_tag import EchoNode, EchoTag
from liquid.builtin.tags.for_tag import ForTag
from liquid.builtin.tags.tablerow_tag import TablerowTag
from liquid.exceptions import FilterError, LiquidError, ResourceLimitError
from liquid.stringify import to_liquid_string
from liquid.undefined import is_undefined

from channels_app import signed_links
from compliance.preference_links import preference_url, preference_url_prefix

# --- the sandbox ----------------------------------------------------------------------------------

MAX_SOURCE = 200_000  # characters of one field's template
# Outputs and tags ({{ }} and {% %}) in one field. Parsing happens before the render's time and
# memory budgets start, and costs about 0.1 ms and 0.6 KB kept per tag: 40,000 of them took 12 s.
MAX_TAGS = 2_000
MAX_VALUE = 256_000  # characters of any one intermediate string a filter makes
MAX_ITEMS = 10_000  # items of a list or range a filter may take
MAX_INT_BITS = 4096  # a number larger than this is a template computing, not a message
RENDER_SECONDS = 1.0  # wall-clock budget of one ``render`` call (all fields of a variant)
LOOP_ITERATIONS = 10_000
OUTPUT_BYTES = 512_000
NAMESPACE_BYTES = 256_000
MEMORY_BYTES = 16_000_000  # what one ``render`` call may build, all fields together
LOOP_ITEM_BYTES = 64  # what a loop keeps per item it goes over (a reversed copy, a mapping's pairs)

LIMIT_HINTS = {
    "loop iteration limit reached": f"at most {LOOP_ITERATIONS} loop iterations in all",
    "output stream limit reached": f"at most {OUTPUT_BYTES // 1000} KB of output",
    "local namespace limit reached": f"at most {NAMESPACE_BYTES // 1000} KB of assigned variables",
}

VALUE_LIMIT = f"value size limit reached (at most {MAX_VALUE // 1000} K characters in one value)"
ITEMS_LIMIT = f"sequence size limit reached (at most {MAX_ITEMS} items for a filter)"
MEMORY_LIMIT = f"memory limit reached (at most {MEMORY_BYTES // 1_000_000} MB built by one render)"
OUTPUT_LIMIT = "output stream limit reached"

_deadline: ContextVar[float | None] = ContextVar("render_deadline", default=None)
_budget: ContextVar["_Budget | None"] = ContextVar("render_budget", default=None)


class RenderError(Exception):
    """A template that cannot be rendered: the message names the field and the reason."""


class TemplateLimitError(ResourceLimitError):
    """A filter made a value too large, or the render ran out of time."""


class BoundedLoopExpression(LoopExpression):
    """A loop's ``in …`` part that refuses to go over more than ``MAX_ITEMS`` items.

    Liquid's iteration limit counts the iterations run, but ``offset:`` skips items one by one
    and ``reversed`` copies them all before the first iteration; the length is known up front.
    (Range literals are bounded on their own, ``BoundedRangeLiteral``; this covers lists.)
    What the loop keeps per item is charged to the render's memory budget before it starts, and
    the time limit is checked before every iteration: a loop whose body has no filter (a
    ``capture`` of a big value, say) would otherwise never look at the clock.
    """

    __slots__ = ()

    def _to_iter(self, obj, context):
        iterator, length = super()._to_iter(obj, context)
        if length > MAX_ITEMS:
            raise TemplateLimitError(f"loop size limit reached (at most {MAX_ITEMS} items in a loop)", token=None)
        _charge(length * LOOP_ITEM_BYTES)
        return _timed(iterator), length


def _timed(iterator):
    for item in iterator:
        _check_time()
        yield item


class BoundedRangeLiteral(RangeLiteral):
    """``(a..b)`` with at most ``MAX_ITEMS`` items. A range is lazy, so nothing else bounds it:
    ``(1..1000000000) contains "x"`` would walk a billion numbers in one comparison."""

    __slots__ = ()

    def _make_range(self, start, stop) -> range:
        made = super()._make_range(start, stop)
        if len(made) > MAX_ITEMS:
            raise TemplateLimitError(f"range size limit reached (at most {MAX_ITEMS} items in a range)", token=None)
        return made


def _bound_ranges(obj, seen: set[int]) -> None:
    """Swaps every ``RangeLiteral`` in a parsed template for ``BoundedRangeLiteral``.

    The parser builds range literals deep inside expressions (loops, conditions, filters'
    arguments, ``when`` lists) and offers no hook for its own class, so the tree is walked once
    per parse: every liquid object's slots and attributes, and the lists and dicts they hold.
    """
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, list | tuple | set | frozenset):
        for item in obj:
            _bound_ranges(item, seen)
        return
    if isinstance(obj, dict):
        for item in obj.values():
            _bound_ranges(item, seen)
        return
    if not any(cls.__module__.startswith("liquid.") for cls in type(obj).__mro__):
        return
    if type(obj) is RangeLiteral:
        obj.__class__ = BoundedRangeLiteral
    names = {name for cls in type(obj).__mro__ for name in getattr(cls, "__slots__", ())}
    names.update(getattr(obj, "__dict__", {}))
    for name in names:
        if name != "token":
            _bound_ranges(getattr(obj, name, None), seen)


class BoundedForTag(ForTag):
    def parse(self, stream):
        node = super().parse(stream)
        node.expression.__class__ = BoundedLoopExpression
        return node


class BoundedTablerowTag(TablerowTag):
    def parse(self, stream):
        node = super().parse(stream)
        node.expression.__class__ = BoundedLoopExpression
        return node


class BoundedOutputNode(OutputNode):
    """``{{ … }}`` that refuses to print a list or object whose text would pass the output limit
    before making that text: Liquid joins all of a list's items into one string first, and only
    the output stream counts what is written."""

    __slots__ = ()

    def render_to_output(self, context, buffer):
        value = self.expression.evaluate(context)
        _check_printable(value)
        return buffer.write(to_liquid_string(value, context.autoescape))


class BoundedOutput(Output):
    node_class = BoundedOutputNode


class BoundedEchoNode(EchoNode):
    __slots__ = ()
    render_to_output = BoundedOutputNode.render_to_output


class BoundedEchoTag(EchoTag):
    node_class = BoundedEchoNode


class BoundedCaptureNode(CaptureNode):
    """``capture`` that charges the string it keeps to the render's memory budget: a capture in a
    loop makes a new string every time, and no filter sees it."""

    __slots__ = ()

    def _assign(self, context, buf) -> None:
        # The buffer counts UTF-8 bytes, never fewer than the string's own.
        _charge(sys.getsizeof("") + getattr(buf, "size", 0))
        super()._assign(context, buf)


class BoundedCaptureTag(CaptureTag):
    node_class = BoundedCaptureNode


class BoundedCycleNode(CycleNode):
    """``cycle`` with its key and what it prints bounded. Without a group name the key is the text
    of the arguments (``str(args)``), kept for the rest of the render: a cycle in a loop over
    changing big values would keep one big key per iteration."""

    __slots__ = ()

    def render_to_output(self, context, buffer):
        if self.group:
            group = self.group.evaluate(context)
            key = "__UNDEFINED" if is_undefined(group) else _bounded_str(group)
            args = [arg.evaluate(context) for arg in self.args]
        else:
            args = [arg.evaluate(context) for arg in self.args]
            key = _bounded_str(args)
        if key not in context.tag_namespace["cycles"]:
            _charge(sys.getsizeof(key))
        index = context.cycle(key, len(args))
        if index >= len(args):
            return 0
        _check_printable(args[index])
        return buffer.write(to_liquid_string(args[index], autoescape=context.autoescape))


class BoundedCycleTag(CycleTag):
    node_class = BoundedCycleNode


class SandboxEnvironment(Environment):
    """Liquid with resource limits, for templates users write (see the module docstring)."""

    context_depth_limit = 10
    loop_iteration_limit = LOOP_ITERATIONS
    output_stream_limit = OUTPUT_BYTES
    local_namespace_limit = NAMESPACE_BYTES

    def setup_tags_and_filters(self, *, extra: bool = False) -> None:
        super().setup_tags_and_filters(extra=False)
        for name in ("include", "render"):  # they read other templates: there are none to read
            self.tags.pop(name, None)
        for tag in (
            BoundedForTag,
            BoundedTablerowTag,
            BoundedOutput,
            BoundedEchoTag,
            BoundedCaptureTag,
            BoundedCycleTag,
        ):
            self.add_tag(tag)
        self.filters = {name: _bounded(name, func) for name, func in self.filters.items()}


def _check_time() -> None:
    deadline = _deadline.get()
    if deadline is not None and time.monotonic() > deadline:
        raise TemplateLimitError(f"time limit reached (at most {RENDER_SECONDS:g} s per render)", token=None)


def _check_value(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_VALUE:
        raise TemplateLimitError(VALUE_LIMIT, token=None)
    if isinstance(value, list | tuple | dict) and len(value) > MAX_ITEMS:
        raise TemplateLimitError(ITEMS_LIMIT, token=None)
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise TemplateLimitError(f"number size limit reached (at most {MAX_INT_BITS} bits)", token=None)
    return value


# --- the memory budget ----------------------------------------------------------------------------


class _Budget:
    """The bytes a render may still build; one per ``render`` call, in ``_budget``."""

    __slots__ = ("left",)

    def __init__(self, left: int):
        self.left = left


def _reserve(size: int) -> None:
    """Refuses to build ``size`` bytes the render has no budget left for."""
    budget = _budget.get()
    if budget is not None and size > budget.left:
        raise TemplateLimitError(MEMORY_LIMIT, token=None)


def _charge(size: int) -> None:
    """Takes ``size`` bytes, built, from the render's budget."""
    _reserve(size)
    budget = _budget.get()
    if budget is not None:
        budget.left -= size


def _deep_size(value: Any, seen: dict[int, int] | None = None) -> int:
    """Bytes of ``value`` with everything it holds, counting an item once per reference: a list
    of 8,192 references to one 150 KB string counts 1.2 GB, what joining or printing it builds."""
    if not isinstance(value, list | tuple | dict | range):
        return sys.getsizeof(value)
    seen = {} if seen is None else seen
    if id(value) in seen:
        return seen[id(value)]
    seen[id(value)] = 0  # JSON has no cycles, but a cycle must not recurse forever
    if isinstance(value, range):
        size = sys.getsizeof(value) + len(value) * (sys.getsizeof(MAX_ITEMS) + 8)
    elif isinstance(value, dict):
        size = sys.getsizeof(value) + sum(_deep_size(k, seen) + _deep_size(v, seen) for k, v in value.items())
    else:
        size = sys.getsizeof(value) + sum(_deep_size(item, seen) for item in value)
    seen[id(value)] = size
    return size


def _repr_length(value: Any, seen: dict[int, int]) -> int:
    """At least the characters of ``str(value)`` for a list or object (what a string filter makes
    of one): strings inside it are quoted and escaped, up to 10 characters for one."""
    if isinstance(value, bool) or value is None:
        return 5
    if isinstance(value, int):
        return value.bit_length() // 3 + 4  # decimal digits, a sign and the separator
    if isinstance(value, float):
        return 32
    if not isinstance(value, str | list | tuple | dict):
        return 64 + (len(str(value)) if isinstance(value, Decimal) else 0)
    if id(value) in seen:
        return seen[id(value)]
    seen[id(value)] = 0
    if isinstance(value, str):
        per_character = (2 if value.isprintable() else 4) if value.isascii() else 10
        length = per_character * len(value) + 4
    elif isinstance(value, dict):
        length = 4 + sum(_repr_length(k, seen) + _repr_length(v, seen) for k, v in value.items())
    else:
        length = 4 + sum(_repr_length(item, seen) for item in value)
    seen[id(value)] = length
    return length


def _text_length(value: Any, seen: dict[int, int] | None = None) -> int:
    """At least the characters of ``value`` as Liquid prints it (or ``join`` or ``append`` takes
    it): a string as it is, a list as its items' text, anything else as ``str(value)``."""
    seen = {} if seen is None else seen
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list | tuple):
        return sum(len(item) if isinstance(item, str) else _repr_length(item, seen) for item in value)
    return _repr_length(value, seen)


def _leaves(value: Any, level: int = 5):
    """The items of a list as Liquid's array filters flatten it (five levels deep)."""
    for item in value:
        if level and isinstance(item, list | tuple):
            yield from _leaves(item, level - 1)
        else:
            yield item


def _flat_items(value: Any) -> list:
    """What an array filter walks: the flattened list (refused past ``MAX_ITEMS`` items, before it
    is all made), or the value alone."""
    if not isinstance(value, list | tuple):
        return [value]
    items = []
    for item in _leaves(value):
        items.append(item)
        if len(items) > MAX_ITEMS:
            raise TemplateLimitError(ITEMS_LIMIT, token=None)
    return items


def _bounded_str(value: Any) -> str:
    """``str(value)``, refused before it is made when it would pass ``MAX_VALUE`` characters."""
    if isinstance(value, list | tuple | dict) and _repr_length(value, {}) > MAX_VALUE:
        raise TemplateLimitError(VALUE_LIMIT, token=None)
    return str(value)


def _check_printable(value: Any) -> None:
    if isinstance(value, list | tuple | dict) and _text_length(value) > OUTPUT_BYTES:
        raise TemplateLimitError(OUTPUT_LIMIT, token=None)


# Filters that take a list as their left value (the others make it text); the first group walks
# a flattened copy of it.
SEQUENCE_FILTERS = frozenset(
    {"join", "concat", "map", "reverse", "sort", "sort_natural", "where", "reject", "find", "find_index", "has"}
    | {"uniq", "compact", "sum"}
)
LIST_FILTERS = SEQUENCE_FILTERS | {"first", "last", "size", "default", "slice"}
# Filters whose arguments are values to compare or return, never made text.
VALUE_ARGUMENTS = frozenset({"default", "where", "reject", "find", "find_index", "has"})
# Filters that return (a part of) what they were given: nothing new is built.
PASS_THROUGH = frozenset({"default", "first", "last", "find"})


def _predict(name: str, value: Any, args: tuple) -> None:
    """Refuses a filter call whose result would pass a limit, before the filter builds it."""
    # A list or object where text is wanted becomes its ``str()``, up to ten times its length.
    texts = [] if name in LIST_FILTERS else [value]
    if name == "concat":
        texts += args[1:]
    elif name not in VALUE_ARGUMENTS:
        texts += args
    for text in texts:
        if isinstance(text, list | tuple | dict):
            _bounded_str(text)
    if name in SEQUENCE_FILTERS:
        items = _flat_items(value)
    if name == "join":
        separator = _text_length(args[0]) if args else 1
        seen: dict[int, int] = {}
        length = sum(_text_length(item, seen) for item in items) + max(len(items) - 1, 0) * separator
        if length > MAX_VALUE:
            raise TemplateLimitError(VALUE_LIMIT, token=None)
    elif name in ("append", "prepend"):
        if _text_length(value) + (_text_length(args[0]) if args else 0) > MAX_VALUE:
            raise TemplateLimitError(VALUE_LIMIT, token=None)
    elif name in ("replace", "replace_first", "replace_last") and args:
        # Replacing "" inserts the replacement between every character, so a few chained calls
        # would otherwise build gigabytes in one step.
        text, old = str(value), str(args[0])
        new = str(args[1]) if len(args) > 1 and not is_undefined(args[1]) else ""
        count = 1 if name != "replace" else len(text) + 1 if old == "" else text.count(old)
        if len(text) + count * max(len(new) - len(old), 0) > MAX_VALUE:
            raise TemplateLimitError(VALUE_LIMIT, token=None)
    elif name == "split":
        text = value if isinstance(value, str) else str(value)
        separator = args[0] if args else None
        if separator is None or is_undefined(separator) or separator == "":
            pieces = len(text)
        elif separator == " ":
            pieces = sum(1 for _ in re.finditer(r"\s+", text)) + 1
        else:
            pieces = text.count(str(separator)) + 1
        if pieces > MAX_ITEMS:
            raise TemplateLimitError(ITEMS_LIMIT, token=None)
    elif name == "concat":
        other = args[0] if args else []
        if isinstance(other, list | tuple):
            if len(items) + len(other) > MAX_ITEMS:
                raise TemplateLimitError(ITEMS_LIMIT, token=None)
            _reserve(_deep_size(items) + _deep_size(other))
    elif name == "slice":
        _reserve(_deep_size(value))  # a slice is never more than what it is cut from


def _bounded(name: str, func: Callable) -> Callable:
    """``func`` with the render's time budget and its arguments' sizes checked before, its
    result's size predicted before for the filters that can build more than they are given
    (``_predict``), and its result's size checked and charged to the memory budget after."""

    @functools.wraps(func)
    def bounded(value, *args, **kwargs):
        _check_time()
        for argument in (value, *args, *kwargs.values()):
            # A range literal is lazy until a filter walks it: (1..100000000) | join would
            # build the whole string before its size could be checked.
            if isinstance(argument, range | list | tuple | dict) and len(argument) > MAX_ITEMS:
                raise TemplateLimitError(ITEMS_LIMIT, token=None)
        _predict(name, value, args)
        try:
            result = func(value, *args, **kwargs)
        except (ArithmeticError, ValueError) as exc:
            # math.floor(float("inf")), a decimal out of range, a date out of range: the
            # template's mistake, not ours
            raise FilterError(f"{name}: {exc}", token=None) from exc
        _check_value(result)
        if name not in PASS_THROUGH and result is not value and not any(result is a for a in args):
            _charge(_deep_size(result))
        return result

    return bounded


# Two environments: HTML output escapes what it inserts, plain-text output does not.
text_env = SandboxEnvironment(autoescape=False)
html_env = SandboxEnvironment(autoescape=True)


def _liquid_reason(exc: LiquidError) -> str:
    message = str(exc.message)
    reason = f"{message} ({LIMIT_HINTS[message]})" if message in LIMIT_HINTS else message
    where = exc.context()
    return f"{reason} at line {where[0]}, column {where[1]}" if where else reason


@functools.lru_cache(maxsize=128)  # at most ~1.2 MB a template (MAX_TAGS): ~150 MB per process
def _parse(source: str, *, html: bool):
    template = (html_env if html else text_env).from_string(source)
    _bound_ranges(template.nodes, set())
    return template


def _parsed(source: str, *, field: str, html: bool):
    """The parsed template; raises ``RenderError`` naming ``field`` when it does not parse."""
    if len(source) > MAX_SOURCE:
        raise RenderError(f"{field}: longer than {MAX_SOURCE // 1000} K characters.")
    if source.count("{{") + source.count("{%") > MAX_TAGS:
        raise RenderError(f"{field}: more than {MAX_TAGS} outputs and tags ({{{{ … }}}} and {{% … %}}).")
    try:
        template = _parse(source, html=html)
    except LiquidError as exc:
        raise RenderError(f"{field}: {_liquid_reason(exc)}.") from exc
    except RecursionError as exc:
        raise RenderError(f"{field}: nested too deeply.") from exc
    return template


def _unknown_filters(source: str, *, field: str, html: bool) -> list[str]:
    """Unknown filters are found only when rendered; publishing checks for them up front."""
    template = _parsed(source, field=field, html=html)
    errors = []
    for name, spans in template.analyze().filters.items():
        if name not in text_env.filters:
            line, column = spans[0].line_col(source) if spans else (0, 0)
            errors.append(f"{field}: unknown filter '{name}' at line {line}, column {column}.")
    return errors


# --- what a channel's variant holds ---------------------------------------------------------------

FIELDS = {
    "email": ("subject", "preheader", "html", "text"),
    "sms": ("text",),
    "push": ("title", "body", "url"),
    "slack": ("text", "payload"),
    "webhook": ("text", "payload"),
    "social": ("text", "payload"),
}
SMS_SEGMENT = 160  # GSM-7 characters in one SMS; longer texts are sent (and billed) as several
MAX_NAME = 50  # Message.variant


def _required_errors(channel: str, variant: dict, prefix: str) -> list[str]:
    def given(name):
        value = variant.get(name)
        return value not in (None, "", {}, [])

    if channel == "email":
        errors = [] if given("subject") else [f"{prefix}.subject: required."]
        if not (given("html") or given("text")):
            errors.append(f"{prefix}.html: write an HTML or a text body (or both).")
        return errors
    if channel == "sms":
        return [] if given("text") else [f"{prefix}.text: required."]
    if channel == "push":
        return [f"{prefix}.{name}: required." for name in ("title", "body") if not given(name)]
    return [] if given("text") or given("payload") else [f"{prefix}.text: write a text or a payload."]


def _string_leaves(value: Any, path: str):
    """(path, string) for every string inside a JSON payload."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _string_leaves(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _string_leaves(item, f"{path}[{index}]")


def template_errors(channel: str, variants: Any) -> list[str]:
    """Everything wrong with a template's variants, each naming the variant and field
    (``variants[A].subject: …``): names, weights, required fields, unknown fields, and every
    field's Liquid syntax. An empty list means it can be published."""
    if channel not in FIELDS:
        return [f"channel: unknown channel {channel!r}."]
    if not isinstance(variants, list) or not variants:
        return ["variants: add at least one variant."]
    errors: list[str] = []
    seen: set[str] = set()
    for index, variant in enumerate(variants):
        if not isinstance(variant, dict):
            errors.append(f"variants[{index}]: must be an object.")
            continue
        name = variant.get("name")
        prefix = f"variants[{name}]" if isinstance(name, str) and name else f"variants[{index}]"
        if not isinstance(name, str) or not name.strip():
            errors.append(f"{prefix}.name: required.")
        elif len(name) > MAX_NAME:
            errors.append(f"{prefix}.name: at most {MAX_NAME} characters.")
        elif name in seen:
            errors.append(f"{prefix}.name: another variant has this name; names must differ.")
        else:
            seen.add(name)
        weight = variant.get("weight")
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight > 0:
            errors.append(f"{prefix}.weight: must be a number greater than 0.")
        errors += _required_errors(channel, variant, prefix)
        for field, value in variant.items():
            if field in ("name", "weight"):
                continue
            if field not in FIELDS[channel]:
                errors.append(f"{prefix}.{field}: not a field of {channel} ({', '.join(FIELDS[channel])}).")
                continue
            if value is None:
                continue
            if field == "payload" and isinstance(value, dict | list):
                leaves = list(_string_leaves(value, f"{prefix}.payload"))
            elif isinstance(value, str):
                leaves = [(f"{prefix}.{field}", value)]
            else:
                errors.append(f"{prefix}.{field}: must be text.")
                continue
            for path, source in leaves:
                try:
                    errors += _unknown_filters(source, field=path, html=channel == "email" and field == "html")
                except RenderError as exc:
                    errors.append(str(exc))
    return errors


def template_warnings(channel: str, variants: Any) -> list[str]:
    """Things that publish but may surprise: an SMS longer than one segment."""
    warnings = []
    if channel == "sms" and isinstance(variants, list):
        for variant in variants:
            text = variant.get("text") if isinstance(variant, dict) else None
            if isinstance(text, str) and len(text) > SMS_SEGMENT:
                warnings.append(
                    f"variants[{variant.get('name')}].text: over {SMS_SEGMENT} characters before "
                    "merging fields; it will be sent as several SMS segments."
                )
    return warnings


def choose_variant(variants: list[dict], *, contact_id: int, template_id: int) -> dict:
    """The variant a contact gets: a weighted choice, the same every time for one contact and
    template (the hash, like the workflow split step), so a resend never changes the arm."""
    if len(variants) == 1:
        return variants[0]
    digest = hashlib.sha256(f"template:{template_id}:{contact_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64 * sum(v["weight"] for v in variants)
    for variant in variants:
        point -= variant["weight"]
        if point < 0:
            return variant
    return variants[-1]


# --- rendering ----------------------------------------------------------------------------------------


def template_data(*, facts: dict, org, message: dict | None = None) -> dict:
    """The document a template sees (the shape is in the module docstring), from the contact's
    facts (``marketing.conditions.facts.contact_facts``), the org, and what is known of the
    message."""
    data = dict(facts)
    data.update(
        contact=facts,
        company=facts.get("company") or {},
        org={"name": org.name, "postal_address": org.postal_address},
        message=message or {},
        preferences_url=_preferences_url(facts=facts, org=org, message=message or {}),
    )
    return data


def _preferences_url(*, facts: dict, org, message: dict) -> str:
    """The contact's preference-centre link for a marketing message (a preview's when the
    message has no id yet: the console's preview, a dry run); "" for transactional ones."""
    org_id = getattr(org, "pk", None)
    if message.get("purpose", "marketing") != "marketing" or not isinstance(facts.get("id"), int) or not org_id:
        return ""
    message_id = message.get("id") or None
    return preference_url(org_id=org_id, contact_id=facts["id"], message_id=message_id, preview=message_id is None)


def _plain_json(data: dict) -> dict:
    """A deep copy that is JSON and nothing else: the sandbox's only view of the world.
    Datetimes, decimals and UUIDs become strings; any other object is refused."""
    try:
        return json.loads(json.dumps(data, allow_nan=False, cls=DjangoJSONEncoder))
    except (TypeError, ValueError) as exc:
        raise RenderError(f"The template data is not plain JSON: {exc}.") from exc


def _render_one(source: str, data: dict, *, field: str, html: bool) -> str:
    template = _parsed(source, field=field, html=html)
    try:
        return template.render(data)
    except LiquidError as exc:
        raise RenderError(f"{field}: {_liquid_reason(exc)}.") from exc
    except RecursionError as exc:
        raise RenderError(f"{field}: nested too deeply.") from exc


def _render_payload(value: Any, data: dict, *, field: str) -> Any:
    if isinstance(value, str):
        return _render_one(value, data, field=field, html=False)
    if isinstance(value, dict):
        return {k: _render_payload(v, data, field=f"{field}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_render_payload(v, data, field=f"{field}[{i}]") for i, v in enumerate(value)]
    return value


def render(variant: dict, data: dict, *, channel: str) -> dict:
    """The variant's fields rendered with ``data`` (see ``template_data``): ``{"subject": …,
    "html": …, "text": …}`` for email and so on. Email HTML is sanitised and a missing text part
    is derived from it. Raises ``RenderError`` naming the field on a syntax error or a limit."""
    data = _plain_json(data)
    prefix = f"variants[{variant.get('name', '?')}]"
    token = _deadline.set(time.monotonic() + RENDER_SECONDS)
    budget_token = _budget.set(_Budget(MEMORY_BYTES))
    try:
        content: dict[str, Any] = {}
        for field in FIELDS[channel]:
            value = variant.get(field)
            if value in (None, ""):
                continue
            if field == "payload":
                content[field] = _render_payload(value, data, field=f"{prefix}.payload")
            else:
                is_html = channel == "email" and field == "html"
                content[field] = _render_one(value, data, field=f"{prefix}.{field}", html=is_html)
            _check_time_as_render_error(f"{prefix}.{field}")
    finally:
        _deadline.reset(token)
        _budget.reset(budget_token)
    if channel == "email":
        if content.get("subject"):
            content["subject"] = " ".join(content["subject"].split())  # no header injection
        if content.get("html"):
            content["html"] = html_sanitise(content["html"])
            if not content.get("text"):
                content["text"] = html_to_text(content["html"])
            if content.get("preheader"):
                # The inbox shows the body's first text next to the subject; this puts the
                # preheader there without showing it in the message itself.
                content["html"] = (
                    '<div style="display: none; max-height: 0; overflow: hidden;">'
                    f"{html_lib.escape(content['preheader'])}</div>\n{content['html']}"
                )
    return content


def _check_time_as_render_error(field: str) -> None:
    try:
        _check_time()
    except TemplateLimitError as exc:
        raise RenderError(f"{field}: {exc.message}.") from exc


# --- HTML ---------------------------------------------------------------------------------------------

EMAIL_TAGS = (nh3.ALLOWED_TAGS | {"font", "tfoot", "th", "center"}) - {"map", "area"}
EMAIL_ATTRIBUTES = {tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()}
for _tag, _attrs in {
    "*": {"style", "align", "dir", "lang", "title", "class"},
    "a": {"href", "title", "target", "name"},
    "img": {"src", "alt", "width", "height", "border"},
    "table": {"width", "cellpadding", "cellspacing", "border", "bgcolor", "role"},
    "td": {"width", "height", "valign", "bgcolor"},
    "th": {"width", "height", "valign", "bgcolor"},
    "tr": {"valign", "bgcolor"},
    "font": {"color", "face", "size"},
}.items():
    EMAIL_ATTRIBUTES.setdefault(_tag, set()).update(_attrs)
# CSS properties a ``style`` attribute may keep: layout and typography, nothing that loads a URL
# (no background-image, no behavior, no expression()).
STYLE_PROPERTIES = {
    "color", "background-color", "font", "font-family", "font-size", "font-style", "font-weight",
    "line-height", "letter-spacing", "text-align", "text-decoration", "text-transform",
    "vertical-align", "white-space", "width", "max-width", "min-width", "height", "max-height",
    "display", "border", "border-top", "border-right", "border-bottom", "border-left",
    "border-color", "border-style", "border-width", "border-radius", "border-collapse",
    "padding", "padding-top", "padding-right", "padding-bottom", "padding-left",
    "margin", "margin-top", "margin-right", "margin-bottom", "margin-left",
}  # fmt: skip


def html_sanitise(html: str) -> str:
    """``html`` with only safe email markup left (see the module docstring)."""
    return nh3.clean(
        html,
        tags=EMAIL_TAGS,
        clean_content_tags={"script", "style", "title", "head"},
        attributes=EMAIL_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        filter_style_properties=STYLE_PROPERTIES,
        link_rel=None,
        strip_comments=True,
    )


class _TextExtractor(HTMLParser):
    BLOCKS = {"p", "div", "br", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "li", "table", "hr", "blockquote"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.href: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag in self.BLOCKS:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")
        if tag == "a":
            self.href = dict(attrs).get("href")

    def handle_endtag(self, tag):
        if tag == "a" and self.href:
            self.parts.append(f" ({self.href})")
            self.href = None
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data):
        self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """A plain-text version of (sanitised) HTML: blocks on their own lines, links as
    "text (url)"."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = (line.strip() for line in "".join(parser.parts).splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# --- email: tracking, unsubscribe, postal address -------------------------------------------------

HREF = re.compile(r'(<a\b[^>]*?\bhref=")(https?://[^"]*)(")', re.IGNORECASE)
# Parentheses end a URL in text: "text (url)" is how html_to_text writes links.
TEXT_URL = re.compile(r"https?://[^\s<>\"'()]+[^\s<>\"'().,;:!?\]]")


def _tracked(url: str, message_id: int, preview: bool = False) -> str:
    if url.startswith(f"{signed_links.absolute('/m/')}") or url.startswith(preference_url_prefix()):
        return url  # already one of ours (an unsubscribe or preferences link the author placed)
    return signed_links.click_url(message_id, url, preview=preview)


def email_finalize(
    content: dict, *, message_id: int, org, purpose: str, preview: bool = False, preferences_url: str = ""
) -> dict:
    """The email as sent: every http(s) link (in the HTML and the text) becomes a signed click
    redirect holding the original URL (query and UTM parameters included), the open pixel is
    appended, and a marketing email gets a footer with its preference-centre link
    (``preferences_url``, the template's ``{{ preferences_url }}``), its unsubscribe link and the
    org's postal address (the RFC 8058 ``List-Unsubscribe`` headers are the email provider's).
    Transactional mail gets neither footer nor unsubscribe (it needs no consent, so there is
    nothing to withdraw). ``preview``: the links are a preview's, which record and unsubscribe
    nothing (``signed_links``, ``compliance.preference_links``)."""
    content = dict(content)
    marketing = purpose == "marketing"
    unsubscribe = signed_links.unsubscribe_url(message_id, preview=preview) if marketing else None
    preferences = preferences_url if marketing else ""
    address = (org.postal_address or "").strip()
    html = content.get("html")
    if html:
        html = HREF.sub(
            lambda m: (
                m.group(1)
                + html_lib.escape(_tracked(html_lib.unescape(m.group(2)), message_id, preview), quote=True)
                + m.group(3)
            ),
            html,
        )
        if marketing:
            html += (
                '\n<div style="font-size: 12px; color: #666666; margin-top: 24px;">'
                f'<p><a href="{html_lib.escape(unsubscribe)}">Unsubscribe</a> from these emails'
                + (
                    f' or <a href="{html_lib.escape(preferences)}">manage your preferences</a> '
                    "(topics, channels, your data)"
                    if preferences
                    else ""
                )
                + ".</p>"
                + (f"<p>{html_lib.escape(org.name)}<br>{_address_html(address)}</p>" if address else "")
                + "</div>"
            )
        pixel = signed_links.open_url(message_id, preview=preview)
        html += f'\n<img src="{html_lib.escape(pixel)}" width="1" height="1" alt="">'
        content["html"] = html
    text = content.get("text")
    if text is not None:
        text = TEXT_URL.sub(lambda m: _tracked(m.group(0), message_id, preview), text)
        if marketing:
            text += "\n\n--\n" + (f"Manage your preferences: {preferences}\n" if preferences else "")
            text += f"Unsubscribe: {unsubscribe}"
            if address:
                text += f"\n{org.name}\n{address}"
        content["text"] = text
    return content


def _address_html(address: str) -> str:
    return "<br>".join(html_lib.escape(line.strip()) for line in address.splitlines() if line.strip())
