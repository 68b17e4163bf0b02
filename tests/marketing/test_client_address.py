"""The client's address is counted from the right of X-Forwarded-For (``TRUSTED_PROXY_COUNT``
proxies we run; none by default): a forged header neither escapes the form limits nor lands in a
consent proof. Forms are limited per address and form, and per address and organisation."""

import uuid
from pathlib import Path

import pytest
from django.test import Client
from django_ratelimit import core as ratelimit_core

from compliance.models import PendingConsent
from marketing.dispatch import dispatch_batch_run
from marketing.models import ApiKey, Contact, DispatchBatch, Event
from marketing.services import api_key_create
from marketing.web_tracking import FORM_ORG_RATE, FORM_RATE

SITE = "https://www.acme.io"
PEER = "198.51.100.7"  # the socket's peer: the proxy in front of us, or the client itself


@pytest.fixture(autouse=True)
def fresh_rate_limits(settings, monkeypatch):
    """Each test counts from zero in one fixed window (it cannot straddle the edge of a minute)."""
    settings.RATELIMIT_CACHE_PREFIX = f"rl-test-{uuid.uuid4().hex}:"
    monkeypatch.setattr(ratelimit_core, "_get_window", lambda value, period: 1_800_000_000)


@pytest.fixture
def site_key(org):
    org.allowed_origins = [SITE]
    org.save(update_fields=["allowed_origins"])
    return api_key_create(org=org, name="website", scope=ApiKey.Scope.WRITE)[1]


def post(key, *, slug="newsletter", forwarded=None, peer=PEER, **fields):
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    body = {"_k": key, "email": f"p{uuid.uuid4().hex[:8]}@example.com", **fields}
    return Client(REMOTE_ADDR=peer, headers=headers).post(f"/t/forms/{slug}/", body)


FORM_LIMIT = int(FORM_RATE.split("/")[0])
ORG_LIMIT = int(FORM_ORG_RATE.split("/")[0])


def test_forged_forwarded_addresses_do_not_escape_the_form_limit(site_key):
    statuses = [post(site_key, forwarded=f"203.0.113.{i}").status_code for i in range(30)]

    assert statuses == [200] * FORM_LIMIT + [429] * (30 - FORM_LIMIT)


def test_behind_one_trusted_proxy_the_rightmost_entry_is_the_client(site_key, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    # The client forges the left part; our proxy appends the address it saw (the rightmost).
    same_client = [post(site_key, forwarded=f"10.9.9.{i}, 203.0.113.5").status_code for i in range(FORM_LIMIT + 1)]
    another_client = post(site_key, forwarded="10.9.9.1, 203.0.113.6")
    no_header = post(site_key)  # did not pass the proxy: the peer is the address

    assert same_client == [200] * FORM_LIMIT + [429]
    assert another_client.status_code == 200
    assert no_header.status_code == 200


def test_many_forms_from_one_address_are_limited_per_organisation(site_key):
    statuses = [post(site_key, slug=f"form-{i}").status_code for i in range(40)]

    assert statuses == [200] * ORG_LIMIT + [429] * (40 - ORG_LIMIT)
    assert Contact.objects.count() == ORG_LIMIT


def test_the_org_limit_is_per_address(site_key):
    for i in range(ORG_LIMIT):
        post(site_key, slug=f"form-{i}")

    assert post(site_key, slug="one-more").status_code == 429
    assert post(site_key, slug="one-more", peer="198.51.100.8").status_code == 200


@pytest.mark.parametrize(
    ("trusted", "forwarded", "expected"), [(0, "6.6.6.6", PEER), (1, "6.6.6.6, 203.0.113.5", "203.0.113.5")]
)
def test_the_consent_proof_stores_the_real_address(site_key, settings, trusted, forwarded, expected):
    settings.TRUSTED_PROXY_COUNT = trusted

    response = post(
        site_key, forwarded=forwarded, email="ana@example.com", consent_email_marketing="on", consent_text="Yes"
    )

    assert response.status_code == 200
    event = Event.objects.get(type="form_submitted")
    assert event.properties["consent"]["ip"] == expected
    dispatch_batch_run(batch_id=DispatchBatch.objects.get().pk)  # as the worker would, after commit
    # Consent from a form awaits its confirmation by email (double opt-in), with the form's proof.
    pending = PendingConsent.objects.get(purposes="email_marketing")
    assert pending.proof["ip"] == expected


def test_the_workflow_webhook_limit_uses_the_client_address(org, settings, monkeypatch):
    monkeypatch.setattr("workflows.webhooks.WEBHOOK_RATE", "3/m")

    statuses = [
        Client(REMOTE_ADDR=PEER, headers={"X-Forwarded-For": f"203.0.113.{i}"}).post("/hooks/workflows/999999/")
        for i in range(5)
    ]

    assert [response.status_code for response in statuses] == [404, 404, 404, 429, 429]


def test_the_documented_run_command_does_not_let_daphne_trust_the_clients_header():
    """daphne's --proxy-headers takes the leftmost X-Forwarded-For entry (the client's own) as
    the peer, which made every limit and consent proof forgeable whatever TRUSTED_PROXY_COUNT said."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    run_lines = [line for line in readme.splitlines() if "bin/daphne" in line]

    assert run_lines and not any("--proxy-headers" in line for line in run_lines)
    assert "`TRUSTED_PROXY_COUNT`" in readme
