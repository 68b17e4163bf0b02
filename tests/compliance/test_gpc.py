"""Global Privacy Control (``Sec-GPC: 1``): an opt-out of tracking and of sale or sharing,
recorded for a contact we know; for an anonymous visitor nothing at all is stored. The answer is
still Segment's 200, so an SDK does not retry."""

import base64
import json
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from django.test import Client

from channels_app.outbox import send_guards
from compliance.models import ConsentRecord, ConsentState
from marketing.models import AnonymousId, Contact, Event
from marketing.services import api_key_create
from tests.factories import ContactFactory

GPC = {"Sec-GPC": "1"}


@pytest.fixture
def write_key(org):
    return api_key_create(org=org, name="site", scope="write")[1]


def segment(path, body, key, **headers):
    auth = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
    return Client(REMOTE_ADDR="203.0.113.9").post(
        path, json.dumps(body), content_type="text/plain", headers={**auth, **headers}
    )


def test_gpc_from_an_identified_contact_records_opt_outs_once_and_stores_no_event(org, write_key):
    ana = ContactFactory(org=org, external_id="u-ana")
    for message_id in ("m1", "m2"):
        response = segment(
            "/v1/track", {"userId": "u-ana", "event": "Viewed", "messageId": message_id}, write_key, **GPC
        )
        assert response.status_code == 200
        body = response.json()
        assert body["success"] is True and body["status"] == "dropped" and "Global Privacy Control" in body["reason"]
    records = ConsentRecord.objects.filter(contact=ana).order_by("purpose")
    assert [(r.purpose, r.granted, r.source) for r in records] == [
        ("sale_sharing", False, "gpc"),
        ("tracking", False, "gpc"),
    ]
    assert records[0].proof["ip"] == "203.0.113.9" and records[0].proof["call"] == "track"
    assert not Event.objects.exists()
    # The opt-out of sharing then stops what goes to third parties about her.
    verdict = send_guards(org=org, contact=ana, channel="webhook", purpose="marketing", to="crm", now=datetime.now(UTC))
    assert (verdict.verdict, verdict.reason) == ("block", "no consent: sale_sharing was withdrawn")


def test_gpc_on_anonymous_tracking_stores_nothing_at_all(org, write_key):
    page = segment("/v1/page", {"anonymousId": "visitor-1", "messageId": "p1"}, write_key, **GPC)
    identify = segment("/v1/identify", {"anonymousId": "visitor-1", "traits": {"plan": "free"}}, write_key, **GPC)
    batch = segment(
        "/v1/batch",
        {"batch": [{"type": "track", "anonymousId": "visitor-2", "event": "Clicked", "messageId": "b1"}]},
        write_key,
        **GPC,
    )
    assert [r.status_code for r in (page, identify, batch)] == [200, 200, 200]
    assert page.json()["status"] == identify.json()["status"] == "dropped"
    assert batch.json()["results"][0]["status"] == "dropped"
    assert not Event.objects.exists() and not Contact.objects.exists() and not AnonymousId.objects.exists()
    assert not ConsentRecord.objects.exists()


def test_gpc_on_identify_with_an_email_records_the_opt_out_for_that_contact(org, write_key):
    body = {"userId": "u-bo", "traits": {"email": "bo@example.com", "firstName": "Bo"}}
    response = segment("/v1/identify", body, write_key, **GPC)
    assert response.status_code == 200 and response.json()["status"] == "identified"
    bo = Contact.objects.get(email="bo@example.com")
    assert dict(ConsentState.objects.filter(contact=bo).values_list("purpose", "granted")) == {
        "tracking": False,
        "sale_sharing": False,
    }


def test_without_gpc_the_same_calls_are_stored(org, write_key):
    ContactFactory(org=org, external_id="u-ana")
    assert (
        segment("/v1/track", {"userId": "u-ana", "event": "Viewed", "messageId": "m1"}, write_key).json()["status"]
        == "stored"
    )
    assert segment("/v1/page", {"anonymousId": "v", "messageId": "p1"}, write_key).json()["status"] == "stored"
    assert Event.objects.count() == 2 and not ConsentRecord.objects.exists()


def test_the_pixel_with_gpc_stores_nothing_and_records_a_known_visitors_opt_out(org, write_key):
    ana = ContactFactory(org=org, email="ana@example.com")
    AnonymousId.objects.create(org=org, value="ana-browser", contact=ana)

    def pixel(aid):
        query = urlencode({"k": write_key, "aid": aid, "url": "https://acme.example/pricing"})
        response = Client().get(f"/t/p.gif?{query}", headers=GPC)
        assert response.status_code == 200 and response["Content-Type"] == "image/gif"

    pixel("stranger")
    pixel("ana-browser")
    assert not Event.objects.exists()
    assert not Contact.objects.exclude(pk=ana.pk).exists()
    assert set(ConsentRecord.objects.values_list("contact_id", "purpose", "source")) == {
        (ana.pk, "tracking", "gpc"),
        (ana.pk, "sale_sharing", "gpc"),
    }


def test_a_form_sent_with_gpc_keeps_the_submission_and_records_the_opt_outs(org, write_key):
    org.allowed_origins = ["https://www.acme.example"]
    org.save(update_fields=["allowed_origins"])
    response = Client(REMOTE_ADDR="203.0.113.9").post(
        "/t/forms/newsletter/",
        {"_k": write_key, "email": "cy@example.com", "first_name": "Cy"},
        HTTP_ORIGIN="https://www.acme.example",
        HTTP_ACCEPT="application/json",
        headers=GPC,
    )
    assert response.status_code == 200
    cy = Contact.objects.get(email="cy@example.com")
    assert Event.objects.filter(contact=cy, type="form_submitted").count() == 1  # what the person sent
    records = ConsentRecord.objects.filter(contact=cy).order_by("purpose")
    assert [(r.purpose, r.granted, r.source, r.proof["call"]) for r in records] == [
        ("sale_sharing", False, "gpc", "form"),
        ("tracking", False, "gpc", "form"),
    ]
    # Without the header the next person's form records nothing of the kind.
    Client().post(
        "/t/forms/newsletter/",
        {"_k": write_key, "email": "di@example.com"},
        HTTP_ORIGIN="https://www.acme.example",
        HTTP_ACCEPT="application/json",
    )
    assert not ConsentRecord.objects.filter(contact__email="di@example.com").exists()
