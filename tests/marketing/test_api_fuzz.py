"""The REST API fuzzed from its own OpenAPI schema (schemathesis), inside the test suite.

Every operation of ``/api/schema/`` gets generated requests — valid ones and ones that break the
schema — authenticated with a server key of a seeded org, through the WSGI app in this process.
What must hold for every answer: no 5xx; a status code the schema documents for the operation
(the error answers 400, 401, 403, 404, 413, 415 and 429 are documented everywhere); a documented
content type; a body that matches the documented schema; and endpoints that need a key refuse a
request without one.

Two of schemathesis' checks are left out on purpose, because the schema cannot say what they ask:
``positive_data_acceptance`` (a request valid by the schema must succeed: but "a dynamic segment
needs a rule" or "a workflow definition needs a trigger and steps" are rules of the services, and
an id the schema allows may simply not exist) and ``negative_data_rejection`` (a request that
breaks the schema must fail: but query parameters fall back to their defaults, ``?page_size=null``
pages by 50, as DRF does).

Runs are reproducible: hypothesis is derandomised, keeps no example database, and tries a bounded
number of examples per operation. Celery tasks run inline, so nothing a fuzzed call enqueues
reaches the broker other tests use.
"""

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from marketing.services import api_key_create
from marketing.wsgi import application
from tests.factories import CompanyFactory, ContactFactory

EXAMPLES_PER_OPERATION = 25

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture
def server_key(org, eager_tasks):
    """A server key of an org with a few rows, so that some generated ids exist."""
    company = CompanyFactory(org=org)
    for _ in range(3):
        ContactFactory(org=org, company=company)
    # As Django's test client does: a request must not close the test's database connection.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield api_key_create(org=org, name="fuzz")[1]
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(case, server_key):
    case.call_and_validate(
        headers={"Authorization": f"Bearer {server_key}"},
        excluded_checks=[positive_data_acceptance, negative_data_rejection],
    )
