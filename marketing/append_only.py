"""A database trigger that makes a table append-only: no UPDATE, and DELETE or TRUNCATE only by
the role that owns the table.

The app connects as a role that is not the owner of its tables (row-level security needs that),
so the app itself, or anyone who gets it to run SQL, can add rows but never rewrite or remove
one; retention runs as the owner (``manage.py audit_purge``). The trigger is declared with
django-pgtrigger, so migrations install it and ``manage.py pgtrigger ls`` lists it, but it runs
``append_only_refuse()`` (created by ``marketing/migrations/0013_audit_history.py``) instead of
pgtrigger's generated function: that one returns early when the session lists the trigger in
the ``pgtrigger.ignore`` setting, which any role may set. Only PostgreSQL gets the trigger; the
embedded SQLite mode has one user and no roles.
"""

import pgtrigger

FUNCTION = "append_only_refuse"

# Statement-level: a purge of a million rows checks the role once, not a million times.
CREATE_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'TRUNCATE')
       AND pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'USAGE') THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION '% is append-only: % refused (only its owner deletes old rows)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
"""  # noqa: S608  (constants only)
DROP_FUNCTION = f"DROP FUNCTION IF EXISTS {FUNCTION}()"


class AppendOnly(pgtrigger.Trigger):
    """Refuses UPDATE always, and DELETE and TRUNCATE unless the current role owns the table."""

    when = pgtrigger.Before
    level = pgtrigger.Statement
    operation = pgtrigger.Update | pgtrigger.Delete | pgtrigger.Truncate
    func = "RETURN NULL;"  # pgtrigger's function, created but never run: see render_execute

    def render_execute(self, model) -> str:
        return f"{FUNCTION}()"
