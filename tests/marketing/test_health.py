"""Health probes and the ASGI entry point."""

from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator
from django.test import Client

from marketing.asgi import application


def test_healthz_answers(db):
    assert Client().get("/healthz").json() == {"status": "ok"}


def test_readyz_checks_database_and_redis(db, settings):
    body = Client().get("/readyz").json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == "ok"
    if not settings.EMBEDDED:
        assert body["checks"]["redis"] == "ok" and body["checks"]["broker"] == "ok"


def test_readyz_is_503_naming_what_failed(db, settings):
    settings.EMBEDDED = False
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"] == "failed"


def test_asgi_application_serves_http():
    communicator = HttpCommunicator(application, "GET", "/healthz", headers=[(b"host", b"localhost")])
    response = async_to_sync(communicator.get_response)()
    assert response["status"] == 200
    assert b'"ok"' in response["body"]
