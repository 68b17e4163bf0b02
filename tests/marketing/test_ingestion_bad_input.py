"""Bad input on the ingestion endpoints (the Segment-compatible ``/v1/*`` and ``POST /api/v1/events/``):
every malformed field is a 4xx, or in a batch that item's error, naming the field; never a 500, and
never a good item of the same batch lost."""

import base64
import gzip
import json

import pytest
from django.test import Client

from marketing.models import Contact, Event

EVENTS = "/api/v1/events/"
DEEP = "[" * 10_000 + "]" * 10_000
NAN, INF = float("nan"), float("inf")
LONG = "x" * 1000
HUGE_KEY = "k" * 5000

# (call, message, the field an error must name). json.dumps writes NaN/Infinity as such and lone
# surrogates as \ud800 escapes, which is how they arrive from a hostile client.
TRACKING_CASES = {
    "context-string": ("track", {"event": "E", "userId": "u", "context": "web"}, "context"),
    "context-list": ("track", {"event": "E", "userId": "u", "context": ["web"]}, "context"),
    "context-number": ("page", {"userId": "u", "context": 7}, "context"),
    "campaign-string": ("page", {"userId": "u", "context": {"campaign": "spring"}}, "context.campaign"),
    "campaign-list": ("page", {"userId": "u", "context": {"campaign": ["spring"]}}, "context.campaign"),
    "campaign-source-object": (
        "page",
        {"userId": "u", "context": {"campaign": {"source": {"a": 1}}}},
        "context.campaign.source",
    ),
    "properties-string": ("track", {"event": "E", "userId": "u", "properties": "x"}, "properties"),
    "properties-list": ("track", {"event": "E", "userId": "u", "properties": [1]}, "properties"),
    "properties-nan": ("track", {"event": "E", "userId": "u", "properties": {"v": NAN}}, "properties.v"),
    "properties-infinity": ("track", {"event": "E", "userId": "u", "properties": {"v": -INF}}, "properties.v"),
    "properties-surrogate": ("track", {"event": "E", "userId": "u", "properties": {"v": "\ud800"}}, "properties.v"),
    "properties-nul": ("track", {"event": "E", "userId": "u", "properties": {"v": "a\x00b"}}, "properties.v"),
    "properties-nul-key": ("track", {"event": "E", "userId": "u", "properties": {"a\x00": 1}}, "properties"),
    "properties-huge-key": (
        "track",
        {"event": "E", "userId": "u", "properties": {HUGE_KEY: 1}},
        "properties." + HUGE_KEY[:100],
    ),
    "event-nul": ("track", {"event": "a\x00", "userId": "u"}, "event"),
    "event-list": ("track", {"event": ["E"], "userId": "u"}, "event"),
    "event-missing": ("track", {"userId": "u"}, "event"),
    "event-too-long": ("track", {"event": LONG, "userId": "u"}, "event"),
    "timestamp-garbage": ("track", {"event": "E", "userId": "u", "timestamp": "yesterday"}, "timestamp"),
    "timestamp-object": ("track", {"event": "E", "userId": "u", "timestamp": {"a": 1}}, "timestamp"),
    "timestamp-year-1": ("track", {"event": "E", "userId": "u", "timestamp": "0001-01-01T00:00:00+14:00"}, "timestamp"),
    "timestamp-year-9999": ("track", {"event": "E", "userId": "u", "timestamp": "9999-12-31T23:59:59Z"}, "timestamp"),
    "timestamp-huge-number": ("track", {"event": "E", "userId": "u", "timestamp": 1e20}, "timestamp"),
    "original-timestamp-garbage": (
        "track",
        {"event": "E", "userId": "u", "originalTimestamp": "soon"},
        "originalTimestamp",
    ),
    "message-id-huge": ("track", {"event": "E", "userId": "u", "messageId": LONG}, "messageId"),
    "message-id-object": ("track", {"event": "E", "userId": "u", "messageId": {"a": 1}}, "messageId"),
    "message-id-list": ("track", {"event": "E", "userId": "u", "messageId": [1]}, "messageId"),
    "user-id-object": ("track", {"event": "E", "userId": {"id": 1}}, "userId"),
    "user-id-too-long": ("track", {"event": "E", "userId": LONG}, "userId"),
    "user-id-true": ("track", {"event": "E", "userId": True}, "userId"),
    "anonymous-id-list": ("screen", {"anonymousId": ["a"]}, "anonymousId"),
    "no-ids": ("track", {"event": "E"}, "userId"),
    "name-object": ("page", {"userId": "u", "name": {"a": 1}}, "name"),
    "type-list": ("track", {"type": ["track"], "event": "E", "userId": "u"}, "type"),
    "traits-string": ("identify", {"userId": "u", "traits": "vip"}, "traits"),
    "traits-list": ("identify", {"userId": "u", "traits": [1]}, "traits"),
    "traits-email-list": ("identify", {"userId": "u", "traits": {"email": ["a@example.com"]}}, "traits.email"),
    "traits-email-nul": ("identify", {"userId": "u", "traits": {"email": "a\x00@example.com"}}, "traits.email"),
    "traits-first-name-object": ("identify", {"userId": "u", "traits": {"firstName": {"a": 1}}}, "traits.firstName"),
    "traits-first-name-too-long": ("identify", {"userId": "u", "traits": {"firstName": LONG}}, "traits.firstName"),
    "traits-company-name-object": (
        "identify",
        {"userId": "u", "traits": {"company": {"name": {"a": 1}}}},
        "traits.company.name",
    ),
    "traits-company-number": ("identify", {"userId": "u", "traits": {"company": 5}}, "traits.company"),
    "traits-nan": ("identify", {"userId": "u", "traits": {"seats": NAN}}, "traits.seats"),
    "traits-nul-key": ("identify", {"userId": "u", "traits": {"a\x00": 1}}, "traits"),
    "traits-huge-key": ("identify", {"userId": "u", "traits": {HUGE_KEY: 1}}, "traits." + HUGE_KEY[:100]),
    "identify-user-id-object": ("identify", {"userId": {"id": 1}, "traits": {}}, "userId"),
    "identify-user-id-too-long": ("identify", {"userId": LONG}, "userId"),
    "identify-anonymous-id-number-list": ("identify", {"anonymousId": [1, 2]}, "anonymousId"),
    "identify-context-string": ("identify", {"userId": "u", "context": "web"}, "context"),
    "identify-context-traits-list": ("identify", {"userId": "u", "context": {"traits": [1]}}, "context.traits"),
    "identify-context-email-object": (
        "identify",
        {"anonymousId": "a", "context": {"traits": {"email": {"a": 1}}}},
        "context.traits.email",
    ),
    "alias-previous-id-object": ("alias", {"previousId": {"a": 1}, "userId": "u"}, "previousId"),
    "alias-user-id-list": ("alias", {"previousId": "p", "userId": ["u"]}, "userId"),
    "alias-previous-id-too-long": ("alias", {"previousId": LONG, "userId": "u"}, "previousId"),
    "group-context-string": ("group", {"userId": "u", "groupId": "g", "context": "web"}, "context"),
    "group-nul": ("group", {"userId": "u", "groupId": "g\x00"}, "groupId"),
}

# (event, the field an error must name)
EVENT_CASES = {
    "not-an-object": ("page_view", "event"),
    "null": (None, "event"),
    "properties-string": ({"type": "t", "email": "a@example.com", "properties": "x"}, "properties"),
    "properties-list": ({"type": "t", "email": "a@example.com", "properties": [1]}, "properties"),
    "properties-nan": ({"type": "t", "email": "a@example.com", "properties": {"v": NAN}}, "properties.v"),
    "properties-infinity": ({"type": "t", "email": "a@example.com", "properties": {"v": INF}}, "properties.v"),
    "properties-surrogate": ({"type": "t", "email": "a@example.com", "properties": {"v": "\udfff"}}, "properties.v"),
    "properties-nul": ({"type": "t", "email": "a@example.com", "properties": {"v": "\x00"}}, "properties.v"),
    "properties-nul-key": ({"type": "t", "email": "a@example.com", "properties": {"\x00": 1}}, "properties"),
    "properties-nested-nul": (
        {"type": "t", "email": "a@example.com", "properties": {"v": [{"w": "\x00"}]}},
        "properties.v[0].w",
    ),
    "properties-huge-key": (
        {"type": "t", "email": "a@example.com", "properties": {HUGE_KEY: 1}},
        "properties." + HUGE_KEY[:100],
    ),
    "type-nul": ({"type": "a\x00", "email": "a@example.com"}, "type"),
    "type-list": ({"type": ["t"], "email": "a@example.com"}, "type"),
    "type-too-long": ({"type": LONG, "email": "a@example.com"}, "type"),
    "email-list": ({"type": "t", "email": ["a@example.com"]}, "email"),
    "email-nul": ({"type": "t", "email": "a\x00@example.com"}, "email"),
    "email-garbage": ({"type": "t", "email": "not an address"}, "email"),
    "external-id-object": ({"type": "t", "external_id": {"a": 1}}, "external_id"),
    "anonymous-id-too-long": ({"type": "t", "anonymous_id": LONG}, "anonymous_id"),
    "contact-id-huge": ({"type": "t", "contact_id": 10**30}, "contact_id"),
    "contact-id-negative": ({"type": "t", "contact_id": -5}, "contact_id"),
    "contact-id-string": ({"type": "t", "contact_id": "abc"}, "contact_id"),
    "occurred-at-garbage": ({"type": "t", "email": "a@example.com", "occurred_at": "yesterday"}, "occurred_at"),
    "occurred-at-year-1": (
        {"type": "t", "email": "a@example.com", "occurred_at": "0001-01-01T00:00:00+14:00"},
        "occurred_at",
    ),
    "occurred-at-year-9999": (
        {"type": "t", "email": "a@example.com", "occurred_at": "9999-12-31T23:59:59-14:00"},
        "occurred_at",
    ),
    "occurred-at-huge-number": ({"type": "t", "email": "a@example.com", "occurred_at": 1e20}, "occurred_at"),
    "occurred-at-list": ({"type": "t", "email": "a@example.com", "occurred_at": [2026]}, "occurred_at"),
    "message-id-huge": ({"type": "t", "email": "a@example.com", "message_id": LONG}, "message_id"),
    "message-id-object": ({"type": "t", "email": "a@example.com", "message_id": {"a": 1}}, "message_id"),
    "message-id-nul": ({"type": "t", "email": "a@example.com", "message_id": "m\x00"}, "message_id"),
    "unknown-huge-key": ({"type": "t", "email": "a@example.com", HUGE_KEY: 1}, HUGE_KEY[:100]),
    "names-no-contact": ({"type": "t", "properties": {}}, "event"),
}


def write_auth(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def track(client, key, path, body, *, gzipped=False):
    """Posts a body as analytics.js does (text/plain), optionally gzip-encoded."""
    data = json.dumps(body).encode() if not isinstance(body, bytes) else body
    headers = write_auth(key)
    if gzipped:
        data, headers["Content-Encoding"] = gzip.compress(data), "gzip"
    return client.post(path, data, content_type="text/plain", headers=headers)


def good_message(i: int) -> dict:
    return {"type": "track", "event": "Good", "userId": f"good-{i}", "messageId": f"good-{i}", "properties": {"n": i}}


def good_event(i: int) -> dict:
    return {"type": "good", "email": f"good{i}@example.com", "message_id": f"good-{i}", "properties": {"n": i}}


def stored_message_ids(org) -> set[str]:
    return set(Event.objects.filter(org=org).values_list("message_id", flat=True))


@pytest.mark.parametrize("case", TRACKING_CASES)
def test_a_bad_field_in_a_single_tracking_call_is_a_400_naming_it(org, write_key, case):
    call, message, field = TRACKING_CASES[case]
    response = track(Client(), write_key, f"/v1/{call}", message)

    assert response.status_code == 400, response.content
    body = response.json()
    assert body["success"] is False
    assert field in body["errors"], body
    assert not Event.objects.filter(org=org).exists()


@pytest.mark.parametrize("gzipped", [False, True])
def test_bad_messages_in_a_tracking_batch_are_errors_at_their_index_and_the_good_ones_are_stored(
    org, write_key, gzipped
):
    batch, expected = [], {}
    for i, (call, message, field) in enumerate(TRACKING_CASES.values()):
        batch.append(good_message(2 * i))
        batch.append({"type": call, **message})
        expected[2 * i + 1] = field
    batch.append("not a message")
    expected[len(batch) - 1] = "message"

    response = track(Client(), write_key, "/v1/batch", {"batch": batch}, gzipped=gzipped)

    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [r["index"] for r in results] == list(range(len(batch)))
    for index, field in expected.items():
        assert results[index]["status"] == "error", (index, batch[index], results[index])
        assert field in results[index]["errors"], (index, batch[index], results[index])
    goods = [r for i, r in enumerate(results) if i not in expected]
    assert {r["status"] for r in goods} == {"stored"}
    assert stored_message_ids(org) == {m["messageId"] for m in batch[: len(batch) - 1 : 2]}


@pytest.mark.parametrize(
    "body, status, named",
    [
        ({"batch": "x"}, 400, "batch"),
        ({"batch": {"type": "track"}}, 400, "batch"),
        ({"batch": [good_message(1)], "context": "web"}, 400, "context"),
        ({"batch": [good_message(1)], "context": {"campaign": "x"}}, 400, "context.campaign"),
        ({"batch": [good_message(1)], "context": {"a": "\x00"}}, 400, "context.a"),
        ([good_message(1)], 400, "body"),
        ("text", 400, "body"),
        (DEEP.encode(), 400, "nested deeper than"),
        (b'{"batch": [' + DEEP.encode() + b"]}", 400, "nested deeper than"),
        (b"{not json", 400, "not valid JSON"),
        (b'{"batch": "\xff"}', 400, "UTF-8"),
    ],
)
def test_a_tracking_batch_that_is_not_a_batch_is_a_400_naming_why(org, write_key, body, status, named):
    response = track(Client(), write_key, "/v1/batch", body)

    assert response.status_code == status, response.content
    assert named in response.content.decode()
    assert not Event.objects.filter(org=org).exists()


@pytest.mark.parametrize(
    "body",
    [DEEP.encode(), b'{"event": "E", "userId": "u", "properties": {"v": ' + DEEP.encode() + b"}}"],
)
def test_deep_nesting_in_a_single_tracking_call_is_a_400(org, write_key, body):
    response = track(Client(), write_key, "/v1/track", body)
    assert response.status_code == 400
    assert "nested deeper than 64 levels" in response.json()["detail"]


@pytest.mark.parametrize(
    "headers, body",
    [
        ({}, {"writeKey": "mk_abcdefgh_\x00", "event": "E", "userId": "u"}),
        ({}, {"writeKey": "mk_\x00bcdefgh_secret", "event": "E", "userId": "u"}),
        ({}, {"writeKey": ["mk_x"], "event": "E", "userId": "u"}),
        ({"Authorization": "Basic " + base64.b64encode(b"mk_\x00bcdefgh_s:").decode()}, {"event": "E"}),
        ({"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:").decode()}, {"event": "E"}),
        ({"Authorization": "Basic !!!"}, {"event": "E"}),
    ],
)
def test_a_malformed_write_key_is_refused_without_a_500(org, headers, body):
    response = Client().post("/v1/track", json.dumps(body), content_type="text/plain", headers=headers)
    assert response.status_code in (400, 401)
    assert response.json()["success"] is False


def test_a_gzip_body_that_is_not_gzip_is_a_400(org, write_key):
    response = Client().post(
        "/v1/track", b"plain", content_type="text/plain", headers={**write_auth(write_key), "Content-Encoding": "gzip"}
    )
    assert response.status_code == 400 and "gzip" in response.json()["detail"]


def test_batch_context_applies_to_messages_without_their_own(org, write_key):
    batch = [{"type": "page", "userId": "u", "messageId": "p-1"}]
    response = track(
        Client(), write_key, "/v1/batch", {"batch": batch, "context": {"campaign": {"source": "newsletter"}}}
    )
    assert response.json()["results"][0]["status"] == "stored"
    assert Event.objects.get(org=org, message_id="p-1").properties == {"utm_source": "newsletter"}


def test_a_bad_trait_stores_no_contact(org, write_key):
    response = track(Client(), write_key, "/v1/identify", {"userId": "new-user", "traits": {"firstName": [1]}})
    assert response.status_code == 400
    assert not Contact.objects.filter(org=org, external_id="new-user").exists()


def events_post(client, body):
    data = body if isinstance(body, bytes) else json.dumps(body)
    return client.post(EVENTS, data, content_type="application/json")


@pytest.mark.parametrize("case", EVENT_CASES)
def test_a_bad_event_is_an_item_error_naming_its_field_and_its_neighbours_are_stored(org, write_key, case):
    event, field = EVENT_CASES[case]
    client = Client(headers={"Authorization": f"Bearer {write_key}"})

    response = events_post(client, {"events": [good_event(1), event, good_event(2)]})

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["stored"], body["errors"]) == (2, 1), body
    bad = body["results"][1]
    assert bad["status"] == "error" and field in bad["errors"], bad
    assert stored_message_ids(org) == {"good-1", "good-2"}


def test_every_bad_event_of_a_mixed_batch_is_reported_by_its_index(org, api):
    events, expected = [], {}
    for i, (event, field) in enumerate(EVENT_CASES.values()):
        events += [good_event(2 * i), event]
        expected[2 * i + 1] = field

    body = events_post(api, {"events": events}).json()

    assert body["errors"] == len(expected) and body["stored"] == len(events) - len(expected)
    for index, field in expected.items():
        assert field in body["results"][index]["errors"], (index, events[index], body["results"][index])
    assert stored_message_ids(org) == {e["message_id"] for e in events[::2]}


@pytest.mark.parametrize(
    "body, named",
    [
        ({"events": "x"}, "events"),
        ({"events": {"type": "t"}}, "events"),
        ([good_event(1)], "events"),
        ({"events": [good_event(1)], "note\x00": 1}, "NUL"),
        ({"events": [good_event(1)], "note": NAN}, "note"),
        (DEEP.encode(), "nested deeper than"),
        (b'{"events": [' + DEEP.encode() + b"]}", "nested deeper than"),
        (b"{not json", "JSON"),
    ],
)
def test_an_events_request_that_is_not_a_batch_is_a_400_naming_why(org, api, body, named):
    response = events_post(api, body)

    assert response.status_code == 400, response.content
    assert named in response.content.decode()
    assert not Event.objects.filter(org=org).exists()
