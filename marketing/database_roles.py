"""The database roles the project runs as, and the alias of the one that bypasses row-level security.

On PostgreSQL three roles share the work (docs/tenancy.md, "Row-level security"):

- **owner** owns the tables: it runs migrations and creates the test database. Policies do not
  apply to it (they are not FORCEd).
- **app** is what requests, tasks and commands connect as (``DATABASE_URL``): neither the owner
  nor BYPASSRLS, so every tenant table shows it only the rows of the org ``org_context`` named
  in ``app.org_id``, and none without one.
- **system** has BYPASSRLS (``SYSTEM_DATABASE_URL``, the ``system`` alias). Only the resolvers
  that must look before the org is known or across orgs use it: an API key by its prefix, a
  user's memberships, a signed link's row, SMS STOP by the phone's index, ESP and workflow
  webhooks, live status's membership check, and the claimers of due work across orgs.

``roles_sql`` is what ``manage.py db_roles`` runs to create them.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections

SYSTEM = "system"


def system_alias() -> str:
    """The database alias for cross-org resolvers: ``system`` when it connects as a role of its
    own, else ``default`` (one role for both: the embedded mode, or ``SYSTEM_DATABASE_URL``
    unset). A second connection as the same role would only lose sight of the default
    connection's open transaction."""
    if SYSTEM not in connections.settings:
        return "default"
    default, system = connections.settings["default"], connections.settings[SYSTEM]
    same = all(default.get(key) == system.get(key) for key in ("ENGINE", "NAME", "USER", "HOST", "PORT", "OPTIONS"))
    return "default" if same else SYSTEM


def org_of(model, pk):
    """The organisation of one tenant row of ``model``, found through the system alias: for a
    task or a socket that names only the row, before its org is known. The row is then read
    again, and its work done, as the app role in that org's ``org_context``. None when there is
    no such row (deleted since)."""
    from marketing.models import Organization

    org_id = model._base_manager.using(system_alias()).filter(pk=pk).values_list("org_id", flat=True).first()
    return None if org_id is None else Organization.objects.filter(pk=org_id).first()


@contextmanager
def system_role(using: str = "default") -> Iterator[None]:
    """Runs the block as the session's login role when the connection acts as another one.

    A worker that claims work across orgs logs in as the system role and acts as the app role
    (``?options=-c role=marketing_app`` in its ``DATABASE_URL``): the claim runs inside this
    block (``SET LOCAL ROLE NONE``: the login, BYPASSRLS), the work of each org after it as app,
    in its ``org_context``, in the same transaction. Does nothing outside a transaction, on
    SQLite, or when the login is the role acting (one role for everything).
    """
    connection = connections[using]
    if connection.vendor != "postgresql" or not connection.in_atomic_block:
        yield
        return
    connection.ensure_connection()
    session = connection.connection  # the driver's: these are not the app's queries
    current, login = session.execute("SELECT current_user, session_user").fetchone()
    if current == login:
        yield
        return
    session.execute("SET LOCAL ROLE NONE")
    try:
        yield
    finally:
        from psycopg import sql
        from psycopg.pq import TransactionStatus

        if session.info.transaction_status != TransactionStatus.INERROR:
            session.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(current)))


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def roles_sql(
    *, owner: str, app: str, system: str, app_password: str | None, system_password: str | None, database: str
) -> list[str]:
    """The statements that create (or update) the app and system roles and their grants.

    Idempotent: a role that exists gets its attributes and password set again. Run by a
    superuser (BYPASSRLS needs one), after ``migrate`` or before: the default privileges cover
    what migrations create later.
    """
    statements = []
    for role, password, bypass in ((app, app_password, False), (system, system_password, True)):
        attributes = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE " + ("BYPASSRLS" if bypass else "NOBYPASSRLS")
        if password:
            attributes += f" PASSWORD {_literal(password)}"
        statements += [
            f"DO $$ BEGIN CREATE ROLE {_identifier(role)}; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
            f"ALTER ROLE {_identifier(role)} {attributes}",
        ]
    # The system role may act as app (SET ROLE): what the engine does for each org's group.
    statements.append(f"GRANT {_identifier(app)} TO {_identifier(system)}")
    return statements + grants_sql(owner=owner, roles=[app, system], database=database)


def grants_sql(*, owner: str, roles: list[str], database: str) -> list[str]:
    """Reads and writes for ``roles`` on the owner's tables and sequences in ``public``, now
    and for those the owner creates later (default privileges are per database). Not TRUNCATE:
    it ignores row-level security, so only the owner empties tables."""
    statements = []
    for role in map(_identifier, roles):
        statements += [
            f"GRANT CONNECT, TEMPORARY ON DATABASE {_identifier(database)} TO {role}",
            f"GRANT USAGE ON SCHEMA public TO {role}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
            f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role}",
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {_identifier(owner)} IN SCHEMA public "
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}",
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {_identifier(owner)} IN SCHEMA public "
            f"GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {role}",
        ]
    return statements


class SystemAliasRouter:
    """Lets rows read through the ``system`` alias take part in the app's own work: relations
    between the two aliases are allowed (they are the same database), writes go to ``default``
    unless a query names the alias, and only ``default`` is migrated."""

    def db_for_write(self, model, **hints):
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        if {obj1._state.db, obj2._state.db} <= {"default", SYSTEM}:
            return True
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return False if db == SYSTEM else None
