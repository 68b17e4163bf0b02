"""Migration operations that only PostgreSQL runs (trigram indexes now, row-level security later).

The embedded default runs on SQLite, where these are skipped: they make PostgreSQL faster or
safer and change no behaviour the tests of both databases rely on.
"""

from django.db import migrations


class PostgresOnlySQL(migrations.RunSQL):
    """``RunSQL`` that runs on PostgreSQL and does nothing on other databases."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


def trigram_index(table: str, column: str) -> PostgresOnlySQL:
    """A GIN trigram index on UPPER(column): what the admin's case-insensitive search filters on."""
    name = f"{table}_{column}_trgm"
    return PostgresOnlySQL(
        f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin ((UPPER({column}::text)) gin_trgm_ops)",
        f"DROP INDEX IF EXISTS {name}",
    )


def fillfactor(table: str, percent: int) -> PostgresOnlySQL:
    """Leaves ``100 - percent`` % of each new page of ``table`` free, so an update that changes no
    indexed column writes the row's new version on its own page without touching any index (a
    HOT update). Rows written before keep their pages until the table is rewritten
    (``VACUUM FULL`` or pg_repack)."""
    return PostgresOnlySQL(
        f"ALTER TABLE {table} SET (fillfactor = {percent})",
        f"ALTER TABLE {table} RESET (fillfactor)",
    )
