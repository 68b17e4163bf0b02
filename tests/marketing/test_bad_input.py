"""Hostile input on every endpoint answers a 4xx naming the field, never a 500: JSON nested
10,000 deep, NaN, NUL characters and lone surrogates in bodies; NUL in query parameters; datetime
filters with offsets PostgreSQL refuses."""

import uuid

import pytest
from django.test import Client
from django_scopes import scopes_disabled

from marketing.models import ApiKey
from marketing.services import api_key_create
from tests.factories import CompanyFactory, ContactFactory, SegmentFactory
from workflows.services import workflow_create

DEEP = "[" * 10_000 + "]" * 10_000
BAD_BODIES = {
    "deep": (DEEP, "nested deeper than"),
    "deep-field": ('{"name": ' + DEEP + "}", "nested deeper than"),
    "nan": ('{"name": NaN}', "finite number"),
    "infinity": ('{"name": "x", "properties": {"size": Infinity}}', "finite number"),
    "nul": ('{"name": "a\\u0000b", "properties": {"k": "\\u0000"}}', "NUL"),
    "surrogate": ('{"name": "\\ud800", "properties": {"k": "\\udfff"}}', "surrogate"),
    "nul-key": ('{"properties": {"a\\u0000": 1}}', "NUL"),
}


@pytest.fixture(autouse=True)
def fresh_rate_limits(settings):
    settings.RATELIMIT_CACHE_PREFIX = f"rl-test-{uuid.uuid4().hex}:"


@pytest.fixture
def rows(org):
    """One of each row the write endpoints act on."""
    contact = ContactFactory(org=org, email="ana@example.com")
    company = CompanyFactory(org=org)
    segment = SegmentFactory(org=org, slug="vips", kind="static", rule=None)
    workflow = workflow_create(
        org=org,
        name="Nurture",
        slug="nurture",
        definition={"trigger": {"type": "manual"}, "steps": [{"id": "end", "type": "stop"}]},
    )
    return {"contact": contact.pk, "company": company.pk, "segment": segment.pk, "workflow": workflow.pk}


def write_endpoints(rows) -> list[tuple[str, str]]:
    """(method, url) of every API endpoint that reads a body."""
    c, co, s, w = rows["contact"], rows["company"], rows["segment"], rows["workflow"]
    return [
        ("post", "/api/v1/contacts/"),
        ("put", f"/api/v1/contacts/{c}/"),
        ("patch", f"/api/v1/contacts/{c}/"),
        ("post", "/api/v1/companies/"),
        ("patch", f"/api/v1/companies/{co}/"),
        ("post", "/api/v1/segments/"),
        ("patch", f"/api/v1/segments/{s}/"),
        ("post", f"/api/v1/segments/{s}/contacts/"),
        ("delete", f"/api/v1/segments/{s}/contacts/"),
        ("post", "/api/v1/workflows/"),
        ("patch", f"/api/v1/workflows/{w}/"),
        ("post", "/api/v1/workflows/validate/"),
        ("post", f"/api/v1/workflows/{w}/enrol/"),
        ("post", f"/api/v1/workflows/{w}/dry-run/"),
        ("post", "/api/v1/conditions/validate/"),
        ("post", "/api/v1/handoffs/"),
        ("post", f"/api/v1/contacts/{c}/score/"),
    ]


@pytest.mark.parametrize("bad", sorted(BAD_BODIES))
def test_every_api_write_endpoint_refuses_bad_json_with_a_400_naming_it(org, api, rows, bad):
    body, says = BAD_BODIES[bad]
    for method, url in write_endpoints(rows):
        response = getattr(api, method)(url, body, content_type="application/json")
        assert 400 <= response.status_code < 500, (method, url, response.status_code)
        if response.status_code == 400:
            assert says in response.json()["detail"], (method, url, response.json())


# --- NUL in query parameters ----------------------------------------------------------------------

NUL_QUERIES = [
    "/api/v1/contacts/?search=%00",
    "/api/v1/contacts/?email=a%00b",
    "/api/v1/contacts/?tag=%00",
    "/api/v1/contacts/?ordering=%00email",
    "/api/v1/companies/?domain=%00",
    "/api/v1/segments/?search=x%00",
    "/api/v1/workflows/?search=%00",
    "/api/v1/workflow-instances/?status=%00",
    "/api/v1/handoffs/?search=%00",
    "/api/v1/contacts/1/score/?model=%00",
]


@pytest.mark.parametrize("url", NUL_QUERIES)
def test_a_nul_in_a_query_parameter_is_a_400_naming_the_parameter(org, api, url):
    response = api.get(url)

    assert response.status_code == 400
    name = url.split("?")[1].split("=")[0]
    assert name in response.json()["detail"] and "NUL" in response.json()["detail"]


def test_a_nul_in_a_parameter_name_is_a_400_too(org, api):
    response = api.get("/api/v1/contacts/?se%00arch=x")

    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]


def test_a_nul_in_the_pixel_or_form_query_is_a_400(org):
    with scopes_disabled():
        raw = api_key_create(org=org, name="site", scope=ApiKey.Scope.WRITE)[1]

    pixel = Client().get(f"/t/p.gif?k={raw}&aid=%00&url=https://x.io/")
    form = Client().post(f"/t/forms/news/?k={raw}%00", {"email": "ana@example.com"})

    assert pixel.status_code == 400 and "aid" in pixel.json()["detail"]
    assert form.status_code == 400 and "k" in form.json()["detail"]


# --- datetime filters ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["2026-01-01T00:00:00+16:00", "2026-01-01T00:00:00-23:59", "2026-01-01T12:00:00+15:59"],
)
@pytest.mark.parametrize("name", ["created_after", "created_before", "updated_after"])
def test_a_datetime_filter_with_any_offset_is_compared_in_utc(org, api, name, value):
    ContactFactory(org=org)

    response = api.get("/api/v1/contacts/", {name: value})

    assert response.status_code == 200


def test_a_datetime_filter_with_a_large_offset_finds_the_same_contacts_as_in_utc(org, api):
    ContactFactory(org=org)

    east = api.get("/api/v1/contacts/", {"created_after": "2000-01-02T16:00:00+16:00"}).json()
    utc = api.get("/api/v1/contacts/", {"created_after": "2000-01-02T00:00:00Z"}).json()

    assert east["count"] == utc["count"] == 1


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+16:00", "9999-12-31T23:59:59-16:00", "2026-13-01T00:00"])
def test_a_datetime_filter_out_of_range_is_a_400_naming_it(org, api, value):
    response = api.get("/api/v1/contacts/", {"created_after": value})

    assert response.status_code == 400
    assert "created_after" in response.json()
