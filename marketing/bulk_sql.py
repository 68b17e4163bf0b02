"""Set-based SQL for batches, with one parameter per statement instead of one per value.

Django writes ``IN (%s, %s, …)`` and multi-row ``VALUES`` with a placeholder per value, and its
psycopg cursor quotes each into the SQL text: for a 1,000-event batch that is ~15 ms of Python
per statement. On PostgreSQL these helpers send one parameter instead: an array literal for
``= ANY(%s::type[])`` and a JSON document for ``INSERT … SELECT … FROM jsonb_to_recordset(%s)``,
written in microseconds and read as fast.
Other databases get the plain forms.
"""

import json
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection, models
from django.db.models import F, Field, ForeignObject, Func, Lookup, Value
from django.utils import timezone

from marketing.field_encryption import bulk_prepare, encrypted_fields, with_indexes

INLINE_MAX = 100


class AnyOf(Lookup):
    """``field__any_of=[…]``: ``field = ANY(array)`` on PostgreSQL, ``IN (…)`` elsewhere."""

    lookup_name = "any_of"
    prepare_rhs = False

    def get_prep_lookup(self):
        return [self.lhs.output_field.get_prep_value(v) for v in self.rhs]

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = list(self.rhs)
        if not values:
            raise EmptyResultSet  # as Django's own __in=[] does: no query at all
        placeholders = ", ".join(["%s"] * len(values))
        return f"{lhs} IN ({placeholders})", [*lhs_params, *values]

    def as_postgresql(self, compiler, connection):
        if not self.rhs:
            raise EmptyResultSet
        if len(self.rhs) <= INLINE_MAX:  # the planner sees short lists' values (and picks the index)
            return self.as_sql(compiler, connection)
        lhs, lhs_params = self.process_lhs(compiler, connection)
        array_type = self.lhs.output_field.cast_db_type(connection)
        # One text parameter in PostgreSQL's array syntax, cast in the query: psycopg quotes one
        # string instead of a thousand, and the cast of a literal folds into a constant array,
        # which PostgreSQL hashes when it filters (a subquery's array would be compared
        # element by element against every row when the planner, on stale statistics, scans).
        return f"{lhs} = ANY(%s::{array_type}[])", [*lhs_params, array_literal(self.rhs)]


def array_literal(values) -> str:
    """PostgreSQL's text form of an array: {"a","b\\"c"}; NULL elements as NULL."""

    def element(value) -> str:
        if value is None:
            return "NULL"
        text = str(value)
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return "{" + ",".join(element(v) for v in values) + "}"


Field.register_lookup(AnyOf)
ForeignObject.register_lookup(AnyOf)  # foreign keys keep their own lookup table


def insert_returning(
    model: type[models.Model], *, columns: dict[str, list[Any]], fixed: dict[str, Any], returning: list[str]
) -> list[tuple]:
    """Inserts one row per position of the ``columns`` lists (field name → values), with ``fixed``
    values for every row and model defaults for the other fields. Rows that would break a unique
    constraint are skipped (``ON CONFLICT DO NOTHING``); returns ``returning`` of the rows stored."""
    count = len(next(iter(columns.values())))
    if count == 0:
        return []
    columns = bulk_prepare(model, columns)  # encrypted fields encrypted, blind indexes computed
    meta, now = model._meta, timezone.now()
    varying = {name: meta.get_field(name) for name in columns}
    constants: dict[str, Any] = {}
    for field in meta.concrete_fields:
        if field.primary_key or field.name in columns or field.attname in columns:
            continue
        if field.name in fixed or field.attname in fixed:
            value = fixed.get(field.name, fixed.get(field.attname))
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            value = now
        else:
            value = field.get_default()
        constants[field.column] = field.get_db_prep_save(value, connection)
    quote = connection.ops.quote_name  # columns such as "to" are reserved words
    names = ", ".join(quote(column) for column in [*(f.column for f in varying.values()), *constants])
    returning_sql = ", ".join(quote(meta.get_field(name).column) for name in returning)
    if connection.vendor == "postgresql":
        keys = [f"c{i}" for i in range(len(varying))]
        types = ", ".join(
            f"{key} {field.cast_db_type(connection)}" for key, field in zip(keys, varying.values(), strict=True)
        )
        # Raw values: json.dumps writes them as PostgreSQL reads them back through the column types
        # (aware datetimes as ISO-8601, dicts as JSON), skipping Django's per-value preparation.
        records = [dict(zip(keys, values, strict=True)) for values in zip(*columns.values(), strict=True)]
        sql = (
            f"INSERT INTO {meta.db_table} ({names}) "  # noqa: S608  identifiers come from the model
            f"SELECT {', '.join(keys + ['%s'] * len(constants))} FROM jsonb_to_recordset(%s::jsonb) AS u({types}) "
            f"ON CONFLICT DO NOTHING RETURNING {returning_sql}"
        )
        params = [*constants.values(), json.dumps(records, default=_json_value)]
    else:
        # SQLite allows 32,766 parameters a statement: insert in chunks that stay under it.
        prepared = {name: [f.get_db_prep_save(v, connection) for v in columns[name]] for name, f in varying.items()}
        per_row = len(varying) + len(constants)
        chunk = max(1, 30000 // per_row)
        stored = []
        for first in range(0, count, chunk):
            rows = range(first, min(count, first + chunk))
            row_sql = "(" + ", ".join(["%s"] * per_row) + ")"
            sql = (
                f"INSERT INTO {meta.db_table} ({names}) VALUES {', '.join([row_sql] * len(rows))} "  # noqa: S608
                f"ON CONFLICT DO NOTHING RETURNING {returning_sql}"
            )
            params = []
            for position in rows:
                params += [values[position] for values in prepared.values()]
                params += constants.values()
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                stored += cursor.fetchall()
        return stored
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _json_value(value: Any) -> Any:
    """JSON for what json.dumps does not know: datetimes as ISO-8601, rows as their key."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, models.Model):
        return value.pk
    return str(value)  # Decimal, UUID


def update_rows(objs: list[models.Model], fields: list[str]) -> None:
    """Writes ``fields`` of many loaded rows in one statement (PostgreSQL: ``UPDATE … FROM
    jsonb_to_recordset``); Django's ``bulk_update`` builds a CASE per field and row instead."""
    if not objs:
        return
    model = type(objs[0])
    fields = with_indexes(model, fields)
    if connection.vendor != "postgresql":
        for field in encrypted_fields(model):
            if field.name in fields and hasattr(field, "source"):  # a blind index: recomputed
                for obj in objs:
                    field.pre_save(obj, False)
        model._base_manager.bulk_update(objs, fields, batch_size=500)
        return
    meta = model._meta
    targets = [meta.get_field(name) for name in fields]
    keys = [f"c{i}" for i in range(len(targets))]
    types = ", ".join(f"{k} {f.cast_db_type(connection)}" for k, f in zip(keys, targets, strict=True))
    sets = ", ".join(f"{connection.ops.quote_name(f.column)} = u.{k}" for k, f in zip(keys, targets, strict=True))
    values = bulk_prepare(model, {f.attname: [getattr(obj, f.attname) for obj in objs] for f in targets})
    records = [
        {"pk": obj.pk, **{k: values[f.attname][i] for k, f in zip(keys, targets, strict=True)}}
        for i, obj in enumerate(objs)
    ]
    pk = meta.pk
    # PostgreSQL guesses 100 rows for any jsonb_to_recordset, and against a small table it then
    # hashes a scan of every row (2 ms for 5,000 rows, to update one). The LIMIT tells it how
    # many rows there are, so it probes the primary key instead.
    sql = (
        f"UPDATE {meta.db_table} SET {sets} FROM (SELECT * FROM jsonb_to_recordset(%s::jsonb) "  # noqa: S608  identifiers from the model
        f"AS r(pk {pk.cast_db_type(connection)}, {types}) LIMIT %s) AS u WHERE {meta.db_table}.{pk.column} = u.pk"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [json.dumps(records, default=_json_value), len(records)])


def insert_rows(model: type[models.Model], rows: list[dict[str, Any]]) -> None:
    """Inserts many rows, given as dicts of field attnames (``org_id``, not ``org``; fields left
    out take their defaults), in one statement (PostgreSQL: ``INSERT … SELECT … FROM
    jsonb_to_recordset``): no model instances, no per-value preparation, ~20× faster than
    ``bulk_create``. Constraint violations raise, as with ``bulk_create``."""
    if not rows:
        return
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    if encrypted_fields(model):  # encrypted on the way in, as bulk_create would
        prepared = bulk_prepare(model, {name: [row.get(name) for row in rows] for name in rows[0]})
        rows = [{name: prepared[name][i] for name in prepared} for i in range(len(rows))]
    defaults = {f.attname: f.get_default() for f in fields if f.attname not in rows[0]}
    if connection.vendor != "postgresql":
        model._base_manager.bulk_create([model(**defaults, **row) for row in rows], batch_size=1000)
        return
    keys = [f"c{i}" for i in range(len(fields))]
    types = ", ".join(f"{k} {f.cast_db_type(connection)}" for k, f in zip(keys, fields, strict=True))
    names = [f.attname for f in fields]
    records = [{k: row[n] if n in row else defaults[n] for k, n in zip(keys, names, strict=True)} for row in rows]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    sql = (
        f"INSERT INTO {meta.db_table} ({columns}) "  # noqa: S608  identifiers from the model
        f"SELECT {', '.join(keys)} FROM jsonb_to_recordset(%s::jsonb) AS u({types})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [json.dumps(records, default=_json_value)])


class JSONAppend(Func):
    """``field`` with ``value`` (a JSON-serialisable item) appended, computed by the database, so
    concurrent appends to a JSON list column (a status history) never overwrite each other:
    ``UPDATE … SET history = JSONAppend("history", entry)``."""

    output_field = models.JSONField()

    def __init__(self, field: str, value: Any):
        super().__init__(F(field), Value(json.dumps(value, default=_json_value)))

    def _compiled(self, compiler):
        column, params = compiler.compile(self.source_expressions[0])
        value, value_params = compiler.compile(self.source_expressions[1])
        return column, value, [*params, *value_params]

    def as_postgresql(self, compiler, connection, **extra):
        column, value, params = self._compiled(compiler)
        return f"({column} || jsonb_build_array({value}::jsonb))", params

    def as_sql(self, compiler, connection, **extra):  # SQLite's JSON1: insert at the end of the array
        column, value, params = self._compiled(compiler)
        return f"json_insert({column}, '$[#]', json({value}))", params
