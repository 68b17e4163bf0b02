"""The Segment-compatible API, driven by Segment's own Python library and by raw requests."""

import base64
import gzip
import json
import uuid

import pytest
from django.test import Client
from django_scopes import scopes_disabled

from marketing.models import Contact, Event

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def segment(live_server, write_key):
    """Segment's library, configured with our host and a write key, sending synchronously."""
    from segment.analytics.client import Client as SegmentClient

    errors = []
    client = SegmentClient(
        write_key=write_key, host=live_server.url, sync_mode=True, on_error=lambda e, b: errors.append(e)
    )
    yield client
    client.flush()
    assert errors == []


def test_events_from_the_official_library_arrive_once_each_on_the_right_contact(org, segment):
    ids = [str(uuid.uuid4()) for _ in range(3)]
    segment.page(
        anonymous_id="anon-1",
        name="Pricing",
        properties={"path": "/pricing"},
        message_id=ids[0],
        context={"campaign": {"source": "newsletter", "medium": "email"}},
    )
    segment.identify(
        user_id="user-1", anonymous_id="anon-1", traits={"email": "Ana@Example.com", "firstName": "Ana", "plan": "pro"}
    )
    segment.track(user_id="user-1", event="Order Completed", properties={"revenue": 42.5}, message_id=ids[1])
    segment.track(anonymous_id="anon-1", event="Video Played", message_id=ids[2])
    for message_id in ids:  # the same messageIds again: nothing new
        segment.track(user_id="user-1", event="Order Completed", properties={"revenue": 42.5}, message_id=message_id)
    segment.flush()

    with scopes_disabled():
        contact = Contact.objects.get(org=org, external_id="user-1")
        assert (contact.email, contact.first_name, contact.properties) == ("ana@example.com", "Ana", {"plan": "pro"})
        events = {e.message_id: e for e in Event.objects.filter(org=org)}
    assert set(events) == set(ids)
    assert {e.contact_id for e in events.values()} == {contact.pk}
    page = events[ids[0]]
    assert page.type == "page_view" and page.source == "segment"
    assert page.properties == {"path": "/pricing", "name": "Pricing", "utm_source": "newsletter", "utm_medium": "email"}
    assert events[ids[1]].type == "Order Completed" and events[ids[1]].properties == {"revenue": 42.5}


def raw(client, path, body, *, key=None, headers=None, encoding=None):
    data = json.dumps(body).encode()
    extra = dict(headers or {})
    if key:
        extra["Authorization"] = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    if encoding == "gzip":
        data = gzip.compress(data)
        extra["Content-Encoding"] = "gzip"
    return client.post(path, data, content_type="text/plain", headers=extra)


def test_text_plain_gzip_and_write_key_in_the_body(org, write_key):
    client = Client()
    body = {
        "writeKey": write_key,
        "batch": [
            {
                "type": "track",
                "event": "Signed Up",
                "userId": "u-9",
                "messageId": "m-1",
                "timestamp": "2026-11-28T09:00:00.000Z",
            },
            {"type": "track", "userId": "u-9", "messageId": "m-2"},  # no event name
            {"type": "group", "userId": "u-9", "groupId": "g-1"},
        ],
    }
    response = raw(client, "/v1/batch", body, encoding="gzip")
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["stored", "error", "ignored"]
    assert "event" in results[1]["errors"]
    with scopes_disabled():
        event = Event.objects.get(org=org, message_id="m-1")
    assert event.occurred_at.isoformat() == "2026-11-28T09:00:00+00:00"


def test_limits_and_authentication(org, write_key):
    client = Client()
    assert raw(client, "/v1/track", {"event": "x", "userId": "u"}).status_code == 401
    assert raw(client, "/v1/track", {"event": "x", "userId": "u"}, key="mk_nope_nope").status_code == 401
    big = {"batch": [{"type": "track", "event": "x", "userId": "u", "properties": {"pad": "x" * 1000}}] * 600}
    assert raw(client, "/v1/batch", big, key=write_key).status_code == 413
    huge_message = {"batch": [{"type": "track", "event": "x", "userId": "u", "properties": {"pad": "y" * 40000}}]}
    result = raw(client, "/v1/batch", huge_message, key=write_key).json()["results"][0]
    assert result["status"] == "error" and "KB" in result["errors"]["message"]
    bad = client.post(
        "/v1/batch",
        b"{not json",
        content_type="text/plain",
        headers={"Authorization": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()},
    )
    assert bad.status_code == 400


def test_single_calls_and_short_paths(org, write_key):
    client = Client()
    ok = raw(client, "/v1/t", {"event": "Clicked", "anonymousId": "a-1", "messageId": "s-1"}, key=write_key)
    assert ok.status_code == 200 and ok.json()["status"] == "stored"
    bad = raw(client, "/v1/identify", {"userId": "u-1", "traits": {"email": "nope"}}, key=write_key)
    assert bad.status_code == 400 and "traits.email" in bad.json()["errors"]


def test_alias_merges_the_previous_identity(org, write_key):
    client = Client()
    raw(client, "/v1/track", {"event": "Viewed", "anonymousId": "anon-5", "messageId": "a-1"}, key=write_key)
    raw(client, "/v1/track", {"event": "Bought", "userId": "new-id", "messageId": "a-2"}, key=write_key)
    result = raw(client, "/v1/alias", {"previousId": "anon-5", "userId": "new-id"}, key=write_key).json()
    with scopes_disabled():
        contact = Contact.objects.get(org=org, external_id="new-id")
        assert result["contact_id"] == contact.pk
        assert Event.objects.filter(org=org, contact=contact).count() == 2
        assert Contact.objects.filter(org=org).count() == 1


def test_browser_calls_need_an_allowed_origin(org, write_key):
    client = Client()
    message = {"event": "x", "anonymousId": "a", "messageId": "o-1"}
    refused = raw(client, "/v1/track", message, key=write_key, headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403
    org.allowed_origins = ["https://www.acme.io"]
    org.save()
    allowed = raw(client, "/v1/track", message, key=write_key, headers={"Origin": "https://www.acme.io"})
    assert allowed.status_code == 200
    assert allowed["Access-Control-Allow-Origin"] == "https://www.acme.io"
    preflight = client.options("/v1/track", headers={"Origin": "https://www.acme.io"})
    assert preflight.status_code == 204 and "Content-Type" in preflight["Access-Control-Allow-Headers"]
