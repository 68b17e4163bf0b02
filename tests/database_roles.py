"""Running the suite with the roles production uses (docs/tenancy.md, "Row-level security").

Off unless ``OWNER_DATABASE_URL`` is set. Then the owner (a role that may create databases)
creates and migrates the test database and grants the app and system roles what
``manage.py db_roles`` grants; tests run with ``default`` as the app role (``DATABASE_URL``'s
user: row-level security applies) and ``system`` as the BYPASSRLS role
(``SYSTEM_DATABASE_URL``'s), both on one session (tests/shared_session_backend), and the
flushes of transactional tests run on the owner's connection (the app role may not TRUNCATE).

    OWNER_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \\
    DATABASE_URL=postgres://marketing_app@127.0.0.1:5432/test \\
    SYSTEM_DATABASE_URL=postgres://marketing_system@127.0.0.1:5432/test .venv/bin/pytest
"""

import os

import environ
import pytest
from django.db import connection

ENABLED = bool(os.environ.get("OWNER_DATABASE_URL"))
DB_FIXTURES = {"db", "transactional_db", "django_db_reset_sequences", "django_db_serialized_rollback", "live_server"}


def _credentials(variable: str) -> dict:
    url = environ.Env.db_url_config(os.environ[variable])
    return {"USER": url["USER"], "PASSWORD": url["PASSWORD"]}


def settings_modify() -> None:
    """Before the test database exists: the default alias connects as the owner (who creates
    and migrates it); the system and owner aliases mirror it."""
    from django.conf import settings
    from django.db import connections

    default = connections.settings["default"]
    app_role = _credentials("DATABASE_URL")["USER"]
    default.update(_credentials("OWNER_DATABASE_URL"))
    connections.settings["system"] = {
        **default,
        **_credentials("SYSTEM_DATABASE_URL"),
        "ENGINE": "tests.shared_session_backend",
        "APP_ROLE": app_role,
        "TEST": {**default.get("TEST", {}), "MIRROR": "default"},
    }
    connections.settings["owner"] = {**default, "TEST": {**default.get("TEST", {}), "MIRROR": "default"}}
    default["APP_ROLE"] = app_role
    settings.DATABASES.update({alias: connections.settings[alias] for alias in ("default", "system", "owner")})


def after_setup() -> None:
    """After migrating: grants for the app and system roles, then the default alias logs in as
    the system role and acts as the app role."""
    from django.db import connections

    from marketing.database_roles import grants_sql

    default = connections["default"]
    owner = default.settings_dict["USER"]
    system = _credentials("SYSTEM_DATABASE_URL")
    with default.cursor() as cursor:
        _roles_ensure(
            cursor, owner=owner, app=_credentials("DATABASE_URL"), system=system, database=default.settings_dict["NAME"]
        )
        for statement in grants_sql(
            owner=owner,
            roles=[default.settings_dict["APP_ROLE"], system["USER"]],
            database=default.settings_dict["NAME"],
        ):
            cursor.execute(statement)
    connections.close_all()
    default.settings_dict.update(system)
    for alias in ("default", "system"):
        # The wrappers were made with the owner's credentials: new ones read the new settings.
        del connections[alias]
    # Subprocesses (workers, servers, commands) inherit the environment: their system alias is
    # the test database's, not the one the URL named before the test database existed.
    os.environ["SYSTEM_DATABASE_URL"] = _url(system)


def _url(credentials: dict, *, acting_as: str = "") -> str:
    """A URL of the test database with ``credentials``, acting as ``acting_as`` when given
    (``?options=-c role=…``)."""
    from urllib.parse import quote

    from django.db import connections

    db = connections.settings["default"]
    login = quote(credentials["USER"]) + (f":{quote(credentials['PASSWORD'])}" if credentials["PASSWORD"] else "")
    url = f"postgres://{login}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return f"{url}?options={quote(f'-c role={acting_as}')}" if acting_as else url


def owner_database_url() -> str:
    """The test database as the owner (``OWNER_DATABASE_URL``'s login)."""
    return _url(_credentials("OWNER_DATABASE_URL"))


def worker_database_url() -> str:
    """The ``DATABASE_URL`` of a subprocess: what production gives a worker (docs/tenancy.md,
    "Workers"), the system role's login acting as the app role."""
    from django.db import connections

    return _url(_credentials("SYSTEM_DATABASE_URL"), acting_as=connections.settings["default"]["APP_ROLE"])


def _roles_ensure(cursor, *, owner: str, app: dict, system: dict, database: str) -> None:
    """Creates the app and system roles when the server lacks one (what ``manage.py db_roles``
    does; the owner must be a superuser then), so the README's test command is enough on a new
    server. Roles are the server's, shared by the test processes: one at a time."""
    from marketing.database_roles import roles_sql

    cursor.execute("SELECT count(*) FROM pg_roles WHERE rolname IN (%s, %s)", [app["USER"], system["USER"]])
    if cursor.fetchone()[0] == 2:
        return
    cursor.execute("SELECT pg_advisory_lock(hashtext('tests.database_roles'))")
    try:
        for statement in roles_sql(
            owner=owner,
            app=app["USER"],
            system=system["USER"],
            app_password=app["PASSWORD"] or None,
            system_password=system["PASSWORD"] or None,
            database=database,
        ):
            cursor.execute(statement)
    finally:
        cursor.execute("SELECT pg_advisory_unlock(hashtext('tests.database_roles'))")


def before_teardown() -> None:
    """The owner drops the test database."""
    from django.db import connections

    connections.close_all()
    connections["default"].settings_dict.update(_credentials("OWNER_DATABASE_URL"))
    for alias in ("default", "system"):
        del connections[alias]


def on_connect(sender, connection, **kwargs) -> None:
    """``connection_created``: the default alias acts as the app role."""
    if connection.alias == "default":
        from psycopg import sql

        connection.connection.execute(
            sql.SQL("SET ROLE {}").format(sql.Identifier(connection.settings_dict["APP_ROLE"]))
        )


def flush_as_owner() -> None:
    """The flushes of transactional tests run on the owner's connection."""
    from django.db import connections
    from django.db.backends.postgresql.operations import DatabaseOperations

    original = DatabaseOperations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        if self.connection.alias == "default":
            return original(connections["owner"].ops, sql_list)
        return original(self, sql_list)

    DatabaseOperations.execute_sql_flush = execute_sql_flush


def items_mark(items) -> None:
    """Every test that uses the database may use all aliases (system and owner too)."""
    for item in items:
        marker = item.get_closest_marker("django_db")
        if marker is None and not DB_FIXTURES & set(getattr(item, "fixturenames", ())):
            continue
        kwargs = dict(marker.kwargs) if marker else {}
        kwargs["databases"] = "__all__"
        item.add_marker(pytest.mark.django_db(*(marker.args if marker else ()), **kwargs), append=False)


def become_unprivileged() -> None:
    """Switches this transaction to a fresh role with reads and writes on every table but no
    privilege over row-level security (not superuser, not owner, not BYPASSRLS), unless the
    suite already runs as such a role (the app role, with OWNER_DATABASE_URL set)."""
    role = f"rls_probe_{connection.settings_dict['NAME']}"[:63]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolsuper OR rolbypassrls OR EXISTS (SELECT 1 FROM pg_tables WHERE tableowner = current_user) "
            "FROM pg_roles WHERE rolname = current_user"
        )
        if not cursor.fetchone()[0]:
            return
        cursor.execute(f'CREATE ROLE "{role}" NOLOGIN NOSUPERUSER NOBYPASSRLS')
        cursor.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"')
        cursor.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"')
        cursor.execute(f'GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO "{role}"')
        cursor.execute(f'SET LOCAL ROLE "{role}"')
        cursor.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        assert cursor.fetchone() == (False, False)
