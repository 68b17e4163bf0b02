"""The ``system`` alias of a test run with the production roles (tests/database_roles.py).

Each test runs inside one transaction on the default alias's session; a second session (the
system role's own) would not see the rows the test made. So in tests the system alias shares the
default alias's session: the session logs in as the system role, the default alias acts as the
app role (``SET ROLE`` when it connects), and each query of the system alias runs as the login
role again (``RESET ROLE``) and hands the session back to the app role after. Transactions stay
the default alias's: the system alias neither commits nor rolls back.
"""

from django.db import connections
from django.db.backends.postgresql.base import DatabaseWrapper as PostgresWrapper
from psycopg import sql
from psycopg.pq import TransactionStatus


class DatabaseWrapper(PostgresWrapper):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.execute_wrappers.append(self._as_login_role)

    def ensure_connection(self):
        default = connections["default"]
        default.ensure_connection()
        if self.connection is None:
            self.connect()
        self.connection = default.connection  # the default alias may have reconnected

    def get_new_connection(self, conn_params):
        return connections["default"].connection

    def init_connection_state(self):
        pass  # the default alias's connection is set up already

    def _set_autocommit(self, autocommit):
        pass

    def _commit(self):
        pass

    def _rollback(self):
        pass

    def _close(self):
        pass

    def is_usable(self):
        return True

    def check_constraints(self, table_names=None):
        pass  # the default alias checks them, on the same session

    def _as_login_role(self, execute, sql_text, params, many, context):
        session = self.connection
        if session.info.transaction_status != TransactionStatus.INERROR:  # else the query fails as it should
            session.execute("RESET ROLE")
        try:
            return execute(sql_text, params, many, context)
        finally:
            if session.info.transaction_status != TransactionStatus.INERROR:
                session.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(self.settings_dict["APP_ROLE"])))
