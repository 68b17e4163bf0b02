"""Key rotation: every encrypted value re-encrypted under the first of ``FIELD_ENCRYPTION_KEYS``.

The procedure (docs/encryption.md): put a new key first in ``FIELD_ENCRYPTION_KEYS`` and keep the
old ones after it (every process then writes with the new key and still reads the old values),
run ``manage.py rotate_field_keys``, and once it reports nothing left under other keys, remove
the old ones. The walk goes table by table in primary-key order, in batches of its own
transaction, and skips what is already under the current key, so an interrupted run resumes where
it stopped when run again. Values written in clear before encryption (or by raw SQL) are
encrypted on the way, and blind indexes recomputed.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from django.apps import apps
from django.db import connections, models, transaction

from marketing.database_roles import system_alias
from marketing.field_encryption import (
    PREFIX,
    BlindIndexField,
    EncryptedNetworkAddressesJSONField,
    EncryptedTextField,
    current_key_id,
    decrypt,
    keys_check,
    reencrypt,
)
from marketing.tenancy import org_context


@dataclass
class EncryptedColumn:
    """One column holding encrypted values (and the blind index derived from it, if any)."""

    model: type[models.Model]
    field: models.Field
    index: BlindIndexField | None = None

    @property
    def label(self) -> str:
        return f"{self.model._meta.label}.{self.field.name}"


@dataclass
class RotationCounts:
    """What a run did, per column: rows rewritten; and how many values the current key did not write."""

    rewritten: dict[str, int] = field(default_factory=dict)
    left: dict[str, int] = field(default_factory=dict)


def encrypted_columns() -> list[EncryptedColumn]:
    """Every column of every installed model that ``marketing.field_encryption`` encrypts."""
    columns = []
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        indexes = {f.source: f for f in model._meta.concrete_fields if isinstance(f, BlindIndexField)}
        for f in model._meta.concrete_fields:
            if getattr(f, "encrypted", False):
                columns.append(EncryptedColumn(model, f, indexes.get(f.name)))
    return columns


def _alias() -> str:
    """The connection that sees every org's rows: the ``system`` alias where it has a role of its
    own (row-level security would show the app role no rows outside an org), else ``default``."""
    return system_alias()


def _stale_sql(column: EncryptedColumn, vendor: str) -> tuple[str, list]:
    """The WHERE clause of the rows that may need rewriting: a value under another key, or one
    the field would encrypt that is still in clear."""
    name = connections[_alias()].ops.quote_name(column.field.column)
    current = f"{PREFIX}{current_key_id()}:%"
    if isinstance(column.field, EncryptedTextField):
        plain = f"{name} LIKE '+%%'" if column.field.only_phones else f"({name} <> '' AND {name} NOT LIKE 'enc1:%%')"
        return f"(({name} LIKE 'enc1:%%' AND {name} NOT LIKE %s) OR {plain})", [current]
    text = f"CAST({name} AS TEXT)" if vendor == "postgresql" else name
    keys = sorted(getattr(column.field, "KEYS", ()))
    clauses = " OR ".join([f"{text} LIKE %s"] * (len(keys) + 1))
    return f"({clauses})", ['%"enc1:%', *[f'%"{key}"%' for key in keys]]


def _rewritten(column: EncryptedColumn, stored):
    """The stored value under the current key (``None``: nothing to change)."""
    if isinstance(column.field, EncryptedTextField):
        if not stored or (column.field.only_phones and not stored.startswith(("enc1:", "+"))):
            return None
        new = reencrypt(stored) if stored.startswith(PREFIX) else column.field.get_prep_value(stored)
        return None if new == stored else new
    document = json.loads(stored) if isinstance(stored, str) else stored
    # Each encrypted string re-encrypted where it is not under the current key (a sensitive
    # property's blind index beside it stays: the index key is never rotated) …
    new = _each_string(document, lambda text: reencrypt(text) if text.startswith(PREFIX) else text)
    if isinstance(column.field, EncryptedNetworkAddressesJSONField):
        new = column.field.get_prep_value(new)  # … and an address still in clear encrypted
    return None if new == document else json.dumps(new)


def _each_string(value, change):
    if isinstance(value, dict):
        return {k: _each_string(v, change) for k, v in value.items()}
    if isinstance(value, list):
        return [_each_string(v, change) for v in value]
    return change(value) if isinstance(value, str) else value


def field_keys_rotate(
    *, batch: int = 1000, on_batch: Callable[[EncryptedColumn, int, int], None] | None = None
) -> RotationCounts:
    """Re-encrypts every encrypted value under the current key, ``batch`` rows a transaction;
    ``on_batch(column, rows seen, rows rewritten)`` after each. Raises ImproperlyConfigured for
    a bad key setting before touching anything."""
    keys_check()
    counts = RotationCounts()
    alias = _alias()
    connection = connections[alias]
    for column in encrypted_columns():
        meta = column.model._meta
        table, pk = connection.ops.quote_name(meta.db_table), connection.ops.quote_name(meta.pk.column)
        name = connection.ops.quote_name(column.field.column)
        where, params = _stale_sql(column, connection.vendor)
        sets = f"{name} = %s" + (f", {connection.ops.quote_name(column.index.column)} = %s" if column.index else "")
        last, rewritten = None, 0
        while True:
            after = f"{pk} > %s AND " if last is not None else ""
            with transaction.atomic(using=alias), connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT {pk}, {name} FROM {table} WHERE {after}{where} ORDER BY {pk} LIMIT %s",  # noqa: S608  identifiers from the models
                    [*([last] if last is not None else []), *params, batch],
                )
                rows = cursor.fetchall()
                if not rows:
                    break
                updates = []
                for row_pk, stored in rows:
                    new = _rewritten(column, stored)
                    if new is None:
                        continue
                    values = [new]
                    if column.index:
                        values.append(column.index.value_for(decrypt(new)))
                    updates.append([*values, row_pk])
                if updates:
                    cursor.executemany(f"UPDATE {table} SET {sets} WHERE {pk} = %s", updates)  # noqa: S608
            last, rewritten = rows[-1][0], rewritten + len(updates)
            if on_batch:
                on_batch(column, len(rows), len(updates))
        counts.rewritten[column.label] = rewritten
        counts.left[column.label] = values_left(column)
    return counts


def values_left(column: EncryptedColumn) -> int:
    """How many rows of the column still hold a value the current key did not write."""
    connection = connections[_alias()]
    table = connection.ops.quote_name(column.model._meta.db_table)
    where, params = _stale_sql(column, connection.vendor)
    if not isinstance(column.field, EncryptedTextField):  # JSON: count the rows with a stale value in them
        name = connection.ops.quote_name(column.field.column)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {name} FROM {table} WHERE {where}", params)  # noqa: S608
            return sum(1 for (stored,) in cursor.fetchall() if _rewritten(column, stored) is not None)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table} WHERE {where}", params)  # noqa: S608
        return cursor.fetchone()[0]


def rows_to_rotate() -> dict[str, int]:
    """Per column, the rows the walk will look at (for a progress bar's total)."""
    connection = connections[_alias()]
    totals = {}
    for column in encrypted_columns():
        table = connection.ops.quote_name(column.model._meta.db_table)
        where, params = _stale_sql(column, connection.vendor)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {table} WHERE {where}", params)  # noqa: S608
            totals[column.label] = cursor.fetchone()[0]
    return totals


def contacts_phones_encrypt(*, org, batch: int = 5000) -> int:
    """Encrypts and indexes the org's phones stored in clear (rows written by raw SQL, such as
    the benches' generated contacts), as saving them through the ORM would have; returns how many.
    Runs in the org's context: row-level security shows the app role only the current org's rows."""
    from marketing.bulk_sql import update_rows
    from marketing.models import Contact

    done, last = 0, 0
    with org_context(org):
        while True:
            rows = list(
                Contact.objects.filter(org=org, pk__gt=last, phone_bidx="")
                .exclude(phone="")
                .order_by("pk")
                .values_list("pk", "phone")[:batch]
            )
            if not rows:
                return done
            update_rows([Contact(pk=pk, phone=phone) for pk, phone in rows], ["phone"])
            done, last = done + len(rows), rows[-1][0]
