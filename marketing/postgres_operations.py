"""Migration operations that only PostgreSQL runs (trigram indexes, fill factors, row-level security).

The embedded default runs on SQLite, where these are skipped: they make PostgreSQL faster or
safer and change no behaviour the tests of both databases rely on.

Row-level security (docs/tenancy.md, "Row-level security"): every tenant table carries
``org_id``, and ``row_security`` gives it a policy that shows and accepts only the rows of the
org named by the session setting ``app.org_id`` (which ``marketing.tenancy.org_context``
writes). With no setting, or an empty one (what a reused connection reports instead of NULL),
the comparison is NULL and no row passes. A table without an org of its own (a many-to-many
table, a row hanging off a tenant row) first gets one with ``org_column_from_parent``.
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


ROW_POLICY = "org_isolation"
ORG_SETTING = "NULLIF(current_setting('app.org_id', true), '')::bigint"


def row_security(*tables: str) -> PostgresOnlySQL:
    """Enables row-level security on ``tables`` with the org policy on ``app.org_id``.

    Not FORCEd: the tables' owner (migrations, the test database's setup) is not subject to it;
    the app role is, and the system role bypasses it. Safe to run again (the policy is
    dropped and created).
    """
    forwards, backwards = [], []
    for table in tables:
        forwards += [
            f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY',
            f'DROP POLICY IF EXISTS {ROW_POLICY} ON "{table}"',
            f'CREATE POLICY {ROW_POLICY} ON "{table}" '
            f"USING (org_id = {ORG_SETTING}) WITH CHECK (org_id = {ORG_SETTING})",
        ]
        backwards += [
            f'DROP POLICY IF EXISTS {ROW_POLICY} ON "{table}"',
            f'ALTER TABLE "{table}" DISABLE ROW LEVEL SECURITY',
        ]
    return PostgresOnlySQL(forwards, backwards)


def org_column_from_parent(table: str, *, parent_column: str, parent_table: str) -> PostgresOnlySQL:
    """Gives ``table`` an ``org_id`` copied from ``parent_table`` (joined on ``parent_column``).

    Backfills the rows there are, then a BEFORE INSERT OR UPDATE trigger sets it from the parent
    on every write, so the code that writes these rows (the ORM's many-to-many ``add``,
    ``bulk_create``) need not know: the column is not in the Django model. A parent of another
    org than the session's ``app.org_id`` gives NULL, so linking to another org's row fails on
    the NOT NULL (``org_from_parent_function``).
    """
    function = f"{table}_org_id"
    forwards = [
        f'ALTER TABLE "{table}" ADD COLUMN IF NOT EXISTS org_id bigint',
        # Table and column names come from the migration, not from input.
        f'UPDATE "{table}" t SET org_id = p.org_id FROM "{parent_table}" p WHERE p.id = t."{parent_column}"',  # noqa: S608
        f'ALTER TABLE "{table}" ALTER COLUMN org_id SET NOT NULL',
        org_from_parent_function(table, parent_column=parent_column, parent_table=parent_table),
        f'DROP TRIGGER IF EXISTS "{function}" ON "{table}"',
        f'CREATE TRIGGER "{function}" BEFORE INSERT OR UPDATE OF "{parent_column}" ON "{table}" '
        f'FOR EACH ROW EXECUTE FUNCTION "{function}"()',
    ]
    backwards = [
        f'DROP TRIGGER IF EXISTS "{function}" ON "{table}"',
        f'DROP FUNCTION IF EXISTS "{function}"()',
        f'ALTER TABLE "{table}" DROP COLUMN IF EXISTS org_id',
    ]
    return PostgresOnlySQL(forwards, backwards)


def org_from_parent_function(table: str, *, parent_column: str, parent_table: str, definer: bool = True) -> str:
    """The trigger function that sets ``table``'s ``org_id`` from its parent row.

    It reads the parent by its primary key as the function's owner (``SECURITY DEFINER``), then
    keeps the parent's org only when the session acts for that org (``app.org_id``) or for none
    (the owner and the system role, which row-level security does not restrict; the app role
    with no org is refused by the table's own policy). Read as the caller instead
    (``definer=False``, the first version), the policy's ``org_id`` condition made the planner
    walk the org's whole index for each row on a table without statistics yet (a new org's first
    import: 100,000 rows took 18 times as long as without row-level security)."""
    function = f"{table}_org_id"
    lookup = f'SELECT p.org_id INTO NEW.org_id FROM "{parent_table}" p WHERE p.id = NEW."{parent_column}"; '  # noqa: S608
    if not definer:
        return (
            f'CREATE OR REPLACE FUNCTION "{function}"() RETURNS trigger LANGUAGE plpgsql SECURITY INVOKER '
            f"AS $$ BEGIN {lookup}RETURN NEW; END $$"
        )
    return (
        f'CREATE OR REPLACE FUNCTION "{function}"() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER '
        "SET search_path = public, pg_temp AS $$ "
        "DECLARE acting bigint := NULLIF(current_setting('app.org_id', true), '')::bigint; BEGIN "
        f"{lookup}"
        "IF acting IS NOT NULL AND NEW.org_id IS DISTINCT FROM acting THEN NEW.org_id := NULL; END IF; "
        "RETURN NEW; END $$"
    )


def org_from_parent_definer(table: str, *, parent_column: str, parent_table: str) -> PostgresOnlySQL:
    """Replaces the trigger function ``org_column_from_parent`` made with the one that reads the
    parent as its owner (``org_from_parent_function``); backwards, the first version again."""
    names = {"parent_column": parent_column, "parent_table": parent_table}
    return PostgresOnlySQL(
        org_from_parent_function(table, **names), org_from_parent_function(table, definer=False, **names)
    )
