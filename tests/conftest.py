"""Fixtures shared by every test: two orgs, members with roles, console and API clients.

Tests run inside ``org_context(org)`` (the ``org`` fixture), as requests and tasks do, so a
query that forgets the org behaves here as it would in production.
"""

import pytest
from django.test import Client
from django_scopes import scopes_disabled

from marketing.models import Role
from marketing.services import api_key_create
from marketing.tenancy import org_context
from tests import database_roles
from tests.factories import MembershipFactory, OrganizationFactory


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """No persistent connections in tests: the live server answers each request in a new thread,
    whose kept-open connection would outlive the test and block dropping the test database."""
    from django.conf import settings

    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0
    if database_roles.ENABLED:
        database_roles.settings_modify()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """With OWNER_DATABASE_URL set, tests run as the production roles (tests/database_roles.py)."""
    if not database_roles.ENABLED:
        yield
        return
    from django.db.backends.signals import connection_created

    with django_db_blocker.unblock():
        database_roles.after_setup()
    connection_created.connect(database_roles.on_connect, dispatch_uid="test_app_role")
    database_roles.flush_as_owner()
    yield
    connection_created.disconnect(dispatch_uid="test_app_role")
    with django_db_blocker.unblock():
        database_roles.before_teardown()


def pytest_collection_modifyitems(items):
    if database_roles.ENABLED:
        database_roles.items_mark(items)


@pytest.fixture
def org(db):
    organization = OrganizationFactory(slug="org-a", name="Org A")
    with org_context(organization):
        yield organization


@pytest.fixture
def other_org(db):
    return OrganizationFactory(slug="org-b", name="Org B")


@pytest.fixture
def member_factory(db):
    """Makes a user with ``role`` in ``org`` (and returns the user)."""

    def make(org, role=Role.MARKETER, **user_fields):
        with org_context(org), scopes_disabled():
            return MembershipFactory(org=org, role=role, **({"user__" + k: v for k, v in user_fields.items()})).user

    return make


@pytest.fixture
def marketer(org, member_factory):
    return member_factory(org, Role.MARKETER, username="mara")


@pytest.fixture
def console(marketer):
    """A browser session of a marketer of ``org`` in the console."""
    client = Client()
    client.force_login(marketer)
    return client


@pytest.fixture
def api_key(org):
    """A raw server key of ``org``."""
    return api_key_create(org=org, name="tests")[1]


@pytest.fixture
def api(api_key):
    """An API client authenticated with a server key of ``org``."""
    return Client(headers={"Authorization": f"Bearer {api_key}"})


@pytest.fixture
def sent(django_capture_on_commit_callbacks, eager_tasks):
    """``sent(action)`` runs ``action`` and then its after-commit callbacks, as a real commit
    would (the outbox sends inline), and returns what ``action`` returned."""
    from django.db import connection

    def run(action):
        start = len(connection.run_on_commit)
        with django_capture_on_commit_callbacks(execute=True):
            result = action()
        # Those ran, as after a real commit: the next block's sends start a batch of their own
        # (the outbox adds to a batch whose flush is still registered on the connection).
        del connection.run_on_commit[start:]
        return result

    return run


@pytest.fixture
def eager_tasks():
    """Celery tasks run inline (as in embedded mode), whatever REDIS_URL says."""
    from marketing.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture
def write_key(org):
    """A raw write (public) key of ``org``."""
    return api_key_create(org=org, name="site", scope="write")[1]


@pytest.fixture
def owner_database_url(shared_database_url):
    """A DATABASE_URL of this test's database as the tables' owner: what ``migrate`` and the
    owner-only commands (``audit_purge``) run with in production."""
    return database_roles.owner_database_url() if database_roles.ENABLED else shared_database_url


@pytest.fixture
def shared_database_url():
    """A DATABASE_URL with which a subprocess (a worker, a command) reaches this test's database.

    PostgreSQL only: the SQLite test database lives in this process's memory. With the
    production roles, the URL a production worker has: the system role's login acting as app.
    """
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("a subprocess cannot reach the in-memory SQLite test database")
    if database_roles.ENABLED:
        return database_roles.worker_database_url()
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
