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
    same = all(default.get(key) == system.get(key) for key in ("ENGINE", "NAME", "USER", "HOST", "PORT"))
    return "default" if same else SYSTEM


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def roles_sql(
    *, owner: str, app: str, system: str, app_password: str | None, system_password: str | None, database: str
) -> list[str]:
    """The statements that create (or update) the app and system roles and their grants.

    Idempotent: a role that exists gets its attributes and password set again. The app role
    gets reads and writes on the owner's tables and sequences in ``public``, now and for tables
    the owner creates later (default privileges); the system role the same plus BYPASSRLS.
    Run by a superuser (BYPASSRLS needs one), after ``migrate`` or before: the default
    privileges cover what migrations create later.
    """
    statements = []
    for role, password, bypass in ((app, app_password, False), (system, system_password, True)):
        attributes = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE " + ("BYPASSRLS" if bypass else "NOBYPASSRLS")
        if password:
            attributes += f" PASSWORD {_literal(password)}"
        statements += [
            f"DO $$ BEGIN CREATE ROLE {_identifier(role)}; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
            f"ALTER ROLE {_identifier(role)} {attributes}",
            f"GRANT CONNECT, TEMPORARY ON DATABASE {_identifier(database)} TO {_identifier(role)}",
            f"GRANT USAGE ON SCHEMA public TO {_identifier(role)}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {_identifier(role)}",
            f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {_identifier(role)}",
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {_identifier(owner)} IN SCHEMA public "
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {_identifier(role)}",
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {_identifier(owner)} IN SCHEMA public "
            f"GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {_identifier(role)}",
        ]
    # The engine claims as system, then runs each org's group as app (SET LOCAL ROLE).
    statements.append(f"GRANT {_identifier(app)} TO {_identifier(system)}")
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
