"""``to_q``: the same rule as SQL, so a segment is one query over all contacts.

The compiler follows the evaluator's semantics exactly (a property test holds them together):

- a rule selects the contacts for which its value is *truthy*;
- in ``==``/``!=`` a null acts as the other side's empty value (null == "" and null == 0 hold);
  in ``<``/``>`` a null number acts as 0, and a null never orders against a string;
- strings order by code point (``COLLATE "C"``), datetimes as their ISO-8601 text to the second;
- custom properties are read with their ``PropertyDefinition`` type (a stored value of another
  JSON type counts as null).

What SQL cannot express the same way (``if``, arithmetic, ``map``/``filter``, comparing two
fields, comparing across types) raises ``NotCompilable`` naming the part.
"""

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import BooleanField, CharField, F, FloatField, Func, Q, Value
from django.db.models.functions import Coalesce, Collate
from django.db.models.lookups import Contains, Exact, GreaterThan, GreaterThanOrEqual, IsNull, LessThan, LessThanOrEqual
from django.utils import timezone

from marketing.conditions.fields import BOOLEAN, DATETIME, JSON_LIST, NAMES, NUMBER, STRING, FieldInfo, field_info
from marketing.conditions.operators import ALL, NONE, compare_numbers, operators
from marketing.field_encryption import BIDX, blind_index, property_index

COMPARISONS = {"==", "!=", "===", "!==", "<", "<=", ">", ">="}
MIRROR = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!=", "===": "===", "!==": "!=="}
_EMPTY_OUTPUT = {"number": FloatField, "boolean": BooleanField, "string": CharField, "datetime": CharField}
ORDER = {"<": LessThan, "<=": LessThanOrEqual, ">": GreaterThan, ">=": GreaterThanOrEqual}


class NotCompilable(Exception):  # noqa: N818  the name the condition API documents
    """The rule (or the named part of it) has no SQL equivalent here."""


def to_q(rule: Any, subject: str, *, org, now: datetime | None = None, within: list[int] | None = None) -> Q:
    """A Q selecting the ``subject`` rows (contacts, events, companies) for which ``rule`` is truthy.

    ``within`` (contact ids) is a hint for a query over only those contacts: operators that read
    other tables (event counts) then restrict their subqueries to them.
    """
    return _without_empty_in(_Compiler(subject, org, now or timezone.now(), within).truthy(rule))


# Matches no row, like ``pk__in=[]``, but compiles to SQL: Django raises EmptyResultSet for an
# empty IN, which a queryset turns into "no rows" but ``query.sql_with_params()`` (a segment's
# INSERT … SELECT) lets through, so a rule like ``false`` or ``{"in": [{"var": "country"}, []]}``
# was a 500. A primary key is never NULL, so this is false for every row.
NOTHING = Q(pk__isnull=True)


def _without_empty_in(q: Q) -> Q:
    """``q`` with every ``…__in=[]`` (``NONE``, an ``in`` over an empty list) replaced by ``NOTHING``."""
    rewritten = Q()
    rewritten.connector, rewritten.negated = q.connector, q.negated
    for child in q.children:
        if isinstance(child, Q):
            child = _without_empty_in(child)
        elif isinstance(child, tuple) and child[0].endswith("__in") and isinstance(child[1], list | tuple | set):
            child = NOTHING if not child[1] else child
        rewritten.children.append(child)
    return rewritten


class JsonValue(Func):
    """A custom property read as one JSON type, else NULL: ``CASE WHEN jsonb_typeof(f->k) = …``."""

    PG = {
        NUMBER: ("number", "(({f} ->> %s))::double precision"),
        STRING: ("string", "({f} ->> %s)"),
        BOOLEAN: ("boolean", "(({f} ->> %s))::boolean"),
    }
    SQLITE = {
        NUMBER: ("'integer', 'real'", FloatField),
        STRING: ("'text'", CharField),
        BOOLEAN: ("'true', 'false'", BooleanField),
    }

    def __init__(self, field: str, key: str, json_type: str):
        output = {NUMBER: FloatField(), STRING: CharField(), BOOLEAN: BooleanField()}[json_type]
        super().__init__(F(field), output_field=output)
        self.key, self.json_type = key, json_type

    def as_postgresql(self, compiler, connection):
        inner, params = compiler.compile(self.source_expressions[0])
        type_name, read = self.PG[self.json_type]
        sql = f"CASE WHEN jsonb_typeof({inner} -> %s) = '{type_name}' THEN {read.format(f=inner)} END"
        return sql, [*params, self.key, *params, self.key]

    def as_sqlite(self, compiler, connection):
        inner, params = compiler.compile(self.source_expressions[0])
        types = self.SQLITE[self.json_type][0]
        path = f"$.{self.key}"
        return (
            f"CASE WHEN json_type({inner}, %s) IN ({types}) THEN json_extract({inner}, %s) END",
            [*params, path, *params, path],
        )


class _Compiler:
    def __init__(self, subject: str, org, now: datetime, within: list[int] | None = None):
        self.subject, self.org, self.now, self.within = subject, org, now, within
        self._fields: dict[str, FieldInfo | None] = {}

    # -- truthiness ---------------------------------------------------------------------------

    def truthy(self, node: Any) -> Q:
        if not isinstance(node, dict):
            return ALL if _truthy_literal(node) else NONE
        if len(node) != 1:
            raise NotCompilable("an operation is an object with exactly one key")
        ((op, args),) = node.items()
        args_list = args if isinstance(args, list) else [args]
        if op == "and":
            return self._combine(args_list, lambda a, b: a & b, op)
        if op == "or":
            return self._combine(args_list, lambda a, b: a | b, op)
        if op in ("!", "!!"):
            if not args_list:
                raise NotCompilable(f"“{op}” with no argument")
            return ~self.truthy(args_list[0]) if op == "!" else self.truthy(args_list[0])
        if op in COMPARISONS:
            return self._comparison(op, args_list)
        if op == "in":
            return self._in(args_list)
        if op == "var":
            return self._field_truthy(self._field(node))
        custom = operators().get(op)
        if custom is not None:
            return custom.q(args_list, org=self.org, now=self.now, within=self.within)
        raise NotCompilable(f"“{op}” has no SQL form; use it only where rules run in Python")

    def _combine(self, args: list, join, op: str) -> Q:
        if not args:
            raise NotCompilable(f"“{op}” with no arguments")
        result = self.truthy(args[0])
        for arg in args[1:]:
            result = join(result, self.truthy(arg))
        return result

    # -- operands --------------------------------------------------------------------------------

    def _field(self, node: dict) -> FieldInfo:
        path = node["var"]
        if isinstance(path, list):
            if len(path) > 1 and path[1] is not None:
                raise NotCompilable("a var with a default value")
            path = path[0] if path else ""
        if not isinstance(path, str) or not path:
            raise NotCompilable("a var whose path is not a field name")
        if path not in self._fields:  # a definition lookup per path, not per use
            self._fields[path] = field_info(self.subject, path, org=self.org)
        info = self._fields[path]
        if info is None:
            raise NotCompilable(f"the path “{path}” is not a field of a {self.subject}")
        return info

    def _expression(self, info: FieldInfo):
        if info.json_key is not None:
            if info.type in (NUMBER, STRING, BOOLEAN):
                return JsonValue(info.lookup, info.json_key, info.type)
            if info.type == DATETIME:
                return JsonValue(info.lookup, info.json_key, STRING)
            raise NotCompilable(f"comparing the list property “{info.path}”")
        return F(info.lookup)

    def _field_truthy(self, info: FieldInfo) -> Q:
        if info.encrypted and info.json_key is not None:  # a sensitive property: set and not empty
            return Q(**{f"{info.lookup}__{info.json_key}__{BIDX}__isnull": False})
        if info.type == NAMES:  # a non-empty list: at least one (a subquery, so no duplicate rows)
            return Q(pk__in=self._with_any(info))
        if info.type == JSON_LIST:
            raise NotCompilable(f"the truthiness of the list property “{info.path}”")
        if info.type == DATETIME and info.json_key is None:
            return Q(**{f"{info.lookup}__isnull": False})
        expression = self._expression(info)
        if info.type == NUMBER:
            return ~Q(Exact(Coalesce(expression, Value(0.0), output_field=FloatField()), 0))
        if info.type == BOOLEAN:
            return Q(Exact(Coalesce(expression, Value(False), output_field=BooleanField()), True))
        return ~Q(Exact(Coalesce(expression, Value(""), output_field=CharField()), ""))  # strings and datetimes

    def _with_any(self, info: FieldInfo):
        from marketing.models import Contact

        return Contact.objects.filter(org=self.org, **{f"{info.lookup}__isnull": False}).values("pk")

    # -- comparisons ---------------------------------------------------------------------------

    def _comparison(self, op: str, args: list) -> Q:
        if len(args) == 3 and op in ("<", "<="):  # between: a < b < c
            return self._comparison(op, args[:2]) & self._comparison(op, args[1:])
        if len(args) != 2:
            raise NotCompilable(f"“{op}” with {len(args)} arguments")
        left, right = args
        if _is_literal(left) and not _is_literal(right):
            left, right, op = right, left, MIRROR[op]
        if not _is_literal(right):
            raise NotCompilable(f"“{op}” between two computed values; compare a field with a value")
        if isinstance(left, dict) and len(left) == 1:
            ((name, custom_args),) = left.items()
            custom = operators().get(name)
            if custom is not None and custom.returns == "number":
                if op in ("===", "!==") or isinstance(right, bool) or not isinstance(right, int | float):
                    raise NotCompilable(f"{name} {op} {right!r}: compare its count with a number")
                custom_args = custom_args if isinstance(custom_args, list) else [custom_args]
                q = custom.q_compare(
                    "==" if op == "!=" else op, right, custom_args, org=self.org, now=self.now, within=self.within
                )
                return ~q if op == "!=" else q
            if name == "var":
                return self._field_comparison(op, self._field(left), right)
        raise NotCompilable(f"“{op}” over {json_text(left)}")

    def _field_comparison(self, op: str, info: FieldInfo, literal: Any) -> Q:
        if info.type in (NAMES, JSON_LIST):
            raise NotCompilable(f"comparing the list “{info.path}”; use in")
        if op in ("!=", "!=="):
            return ~self._field_comparison("==" if op == "!=" else "===", info, literal)
        if info.encrypted and (op not in ("==", "===") or literal not in (None, "")):
            if op not in ("==", "===") or not isinstance(literal, str):
                raise NotCompilable(f"“{info.path}” is encrypted: only is set, is empty and equals")
            # The ciphertext differs every time: equality is asked of the keyed hash instead.
            if info.json_key is not None:  # "set" first, so that its negation is never unknown
                return self._field_truthy(info) & Q(**{info.index: property_index(info.json_key, literal)})
            return Q(**{info.index: blind_index(literal, purpose=info.purpose)})
        if info.encrypted and info.json_key is not None and op == "==":
            return ~self._field_truthy(info)  # null == "": not set, or set empty
        expression = self._expression(info)
        if literal is None:
            return self._null_comparison(op, info, expression)
        if info.type == NUMBER:
            if isinstance(literal, bool) or not isinstance(literal, int | float):
                raise NotCompilable(f"the number “{info.path}” compared with {literal!r}")
            if op == "===":
                return Q(_never_null(Exact(expression, literal)))
            lookup = Exact if op == "==" else ORDER[op]
            return Q(lookup(Coalesce(expression, Value(0.0), output_field=FloatField()), literal))
        if info.type == BOOLEAN:
            if not isinstance(literal, bool) or op not in ("==", "==="):
                raise NotCompilable(f"the yes/no “{info.path}” {op} {literal!r}")
            if op == "===":
                return Q(_never_null(Exact(expression, literal)))
            return Q(Exact(Coalesce(expression, Value(False), output_field=BooleanField()), literal))
        if not isinstance(literal, str):
            raise NotCompilable(f"the text “{info.path}” compared with {literal!r}")
        if info.type == DATETIME and info.json_key is None:
            return self._datetime_comparison(op, info, literal)
        if op == "===":
            return Q(_never_null(Exact(expression, literal)))
        if op == "==":
            return Q(Exact(Coalesce(expression, Value(""), output_field=CharField()), literal))
        # Text orders by code point. A null orders against text only when the text reads as a
        # number (null as 0, "5" as 5); otherwise the comparison is false, never unknown.
        # SQLite's BINARY collation is byte order, which for UTF-8 is code point order too.
        collation = "C" if connection.vendor == "postgresql" else "BINARY"
        ordered = Q(_never_null(ORDER[op](Collate(expression, collation), literal)))
        number = _numeric_text(literal)
        if number is not None and compare_numbers(op, 0, number):
            ordered |= Q(IsNull(expression, True))
        return ordered

    def _null_comparison(self, op: str, info: FieldInfo, expression) -> Q:
        if op == "===":
            return Q(**{f"{info.lookup}__isnull": True}) if info.json_key is None else _null_json(info)
        if op == "==" and info.type == DATETIME and info.json_key is None:
            return Q(**{f"{info.lookup}__isnull": True})  # a set datetime is never the empty text
        if op == "==":  # null == the empty value of the field's type
            empty = {NUMBER: 0.0, BOOLEAN: False}.get(info.type, "")
            return Q(Exact(Coalesce(expression, Value(empty), output_field=_EMPTY_OUTPUT[info.type]()), empty))
        if info.type == NUMBER:  # null orders as 0
            return Q(ORDER[op](Coalesce(expression, Value(0.0), output_field=FloatField()), 0))
        raise NotCompilable(f"ordering “{info.path}” against null")

    def _datetime_comparison(self, op: str, info: FieldInfo, literal: str) -> Q:
        """Datetime columns are seen as their UTC text to the second: compare on that grid."""
        try:
            moment = datetime.strptime(literal, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError as exc:
            raise NotCompilable(f"“{info.path}” compared with {literal!r}: write it as 2026-11-29T09:00:00Z") from exc
        field, second = info.lookup, timedelta(seconds=1)
        if op in ("==", "==="):
            return Q(**{f"{field}__gte": moment, f"{field}__lt": moment + second})
        bounds = {
            "<": (f"{field}__lt", moment),
            "<=": (f"{field}__lt", moment + second),
            ">": (f"{field}__gte", moment + second),
            ">=": (f"{field}__gte", moment),
        }
        lookup, value = bounds[op]
        return Q(**{lookup: value})

    # -- in --------------------------------------------------------------------------------------

    def _in(self, args: list) -> Q:
        if len(args) != 2:
            raise NotCompilable("“in” takes [needle, haystack]")
        needle, haystack = args
        if _is_literal(needle) and _is_var(haystack):
            info = self._field(haystack)
            if info.encrypted:
                raise NotCompilable(f"“{info.path}” is encrypted: only is set, is empty and equals")
            if info.type == NAMES and isinstance(needle, str):
                from marketing.models import Contact

                holders = Contact.objects.filter(org=self.org, **{info.lookup: needle}).values("pk")
                return Q(pk__in=holders)
            if info.type == STRING and isinstance(needle, str) and needle:
                return Q(_never_null(Contains(self._expression(info), needle)))
        if _is_var(needle) and isinstance(haystack, list) and all(_is_literal(v) for v in haystack):
            info = self._field(needle)
            if info.encrypted:
                raise NotCompilable(f"“{info.path}” is encrypted: only is set, is empty and equals")
            if info.type in (NAMES, JSON_LIST):
                raise NotCompilable(f"the list “{info.path}” in a list")
            values = [v for v in haystack if v is not None]
            if not all(isinstance(v, str) for v in values) and not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in values
            ):
                raise NotCompilable("“in” over a list of mixed types")
            if info.type == DATETIME and info.json_key is None:
                raise NotCompilable(f"the datetime “{info.path}” in a list")
            if not values:
                q = NOTHING  # "in []": nothing is in an empty list (and "IN ()" is not SQL)
            elif info.json_key is None:
                q = Q(**{f"{info.lookup}__in": values})
            else:
                q = Q(_never_null(JsonIn(self._expression(info), values)))
            if None in haystack:
                q |= Q(**{f"{info.lookup}__isnull": True}) if info.json_key is None else _null_json(info)
            return q
        raise NotCompilable(f"“in” over {json_text(needle)} and {json_text(haystack)}")


class JsonIn(Func):
    """``expression IN (values)`` for a JSON property read as one type."""

    def __init__(self, expression, values: list):
        super().__init__(expression, output_field=BooleanField())
        self.values = values

    def as_sql(self, compiler, connection, **extra):
        inner, params = compiler.compile(self.source_expressions[0])
        if not self.values:
            return "1 = 0", []
        return f"{inner} IN ({', '.join(['%s'] * len(self.values))})", [*params, *self.values]


NUMERIC_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _numeric_text(text: str) -> float | None:
    """The number a text reads as in a comparison with null ("" as 0), or None."""
    if text == "":
        return 0.0
    if not NUMERIC_TEXT.match(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def _never_null(condition) -> Coalesce:
    """A condition that is false where SQL would say unknown, so that negating it stays exact."""
    return Coalesce(condition, Value(False), output_field=BooleanField())


def _null_json(info: FieldInfo) -> Q:
    """The property is absent or JSON null."""
    return ~Q(**{f"{info.lookup}__has_key": info.json_key}) | Q(**{f"{info.lookup}__{info.json_key}__isnull": True})


def _is_var(node: Any) -> bool:
    return isinstance(node, dict) and set(node) == {"var"}


def _is_literal(node: Any) -> bool:
    if isinstance(node, dict):
        return False
    if isinstance(node, list):
        return all(_is_literal(item) for item in node)
    return True


def _truthy_literal(value: Any) -> bool:
    return value not in (None, False, 0, "", []) or value is True


def json_text(node: Any) -> str:
    import json

    text = json.dumps(node)
    return text if len(text) <= 80 else text[:77] + "…"
