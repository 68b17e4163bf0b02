"""``python manage.py db_roles``: creates the app and system database roles and their grants.

Run once per database by a superuser, with ``DATABASE_URL`` naming the owner (the role that
runs ``migrate``); safe to run again (it updates the roles and grants). Then the processes
connect as the app role (``DATABASE_URL``) and the system role (``SYSTEM_DATABASE_URL``);
docs/tenancy.md, "Row-level security", says why.
"""

import os

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from marketing.database_roles import roles_sql


class Command(BaseCommand):
    help = "Creates (or updates) the app role and the row-level-security-bypassing system role, with their grants."

    def add_arguments(self, parser):
        parser.add_argument("--app", default="marketing_app", help="The app role's name (default marketing_app).")
        parser.add_argument(
            "--system", default="marketing_system", help="The system role's name (default marketing_system)."
        )
        parser.add_argument(
            "--owner",
            default="",
            help="The tables' owner, whose future tables are granted too (default: who runs this).",
        )
        parser.add_argument(
            "--app-password",
            default=os.environ.get("APP_DB_PASSWORD", ""),
            help="The app role's password (default $APP_DB_PASSWORD; none: the role's password is left as it is).",
        )
        parser.add_argument(
            "--system-password",
            default=os.environ.get("SYSTEM_DB_PASSWORD", ""),
            help="The system role's password (default $SYSTEM_DB_PASSWORD; none: left as it is).",
        )
        parser.add_argument("--print", action="store_true", help="Print the SQL instead of running it.")

    def handle(self, *args, app: str, system: str, owner: str, app_password: str, system_password: str, **options):
        if connection.vendor != "postgresql":
            raise CommandError("db_roles needs PostgreSQL: DATABASE_URL names another database.")
        if not app or not system or app == system:
            raise CommandError("--app and --system must be two different role names.")
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_user, current_database(), rolsuper FROM pg_roles WHERE rolname = current_user"
            )
            current, database, superuser = cursor.fetchone()
        owner = owner or current
        if owner in (app, system):
            raise CommandError(f"--owner {owner} must not be the app or system role: they must not own the tables.")
        statements = roles_sql(
            owner=owner,
            app=app,
            system=system,
            app_password=app_password or None,
            system_password=system_password or None,
            database=database,
        )
        if options["print"]:
            for sql in statements:
                self.stdout.write(sql + ";")
            return
        if not superuser:
            raise CommandError(f"db_roles must run as a superuser (BYPASSRLS needs one); {current} is not.")
        with connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)
        self.stdout.write(
            self.style.SUCCESS(
                f"Roles {app} (row-level security applies) and {system} (bypasses it) ready on {database}."
            )
        )
