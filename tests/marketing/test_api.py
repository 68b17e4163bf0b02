"""REST API: authentication by key, org isolation, per-field 400s, pagination, filters, schema."""

import pytest
from django.test import Client
from django_scopes import scopes_disabled

from marketing.api_keys import api_key_from_token
from marketing.models import Company, Contact
from marketing.services import api_key_create, api_key_revoke
from marketing.tenancy import org_context
from tests.factories import CompanyFactory, ContactFactory, TagFactory

CONTACTS = "/api/v1/contacts/"
COMPANIES = "/api/v1/companies/"


@pytest.fixture
def theirs(other_org):
    with scopes_disabled():
        return ContactFactory(org=other_org, email="secret@globex.example")


def test_list_is_paginated_and_scoped_to_the_keys_org(org, api, theirs):
    ContactFactory.create_batch(3, org=org)

    body = api.get(CONTACTS, {"page_size": 2}).json()

    assert body["count"] == 3
    assert set(body) == {"count", "next", "previous", "results"}
    assert len(body["results"]) == 2 and all("id" in item for item in body["results"])
    assert "page=2" in body["next"]
    emails = [item["email"] for item in api.get(CONTACTS, {"page_size": 50}).json()["results"]]
    assert "secret@globex.example" not in emails


def test_another_orgs_contact_is_404_for_every_verb(org, other_org, api, theirs):
    url = f"{CONTACTS}{theirs.pk}/"
    assert api.get(url).status_code == 404
    assert api.patch(url, {"first_name": "Hacked"}, content_type="application/json").status_code == 404
    assert api.put(url, {"email": "x@example.com"}, content_type="application/json").status_code == 404
    assert api.delete(url).status_code == 404
    with org_context(other_org):
        theirs.refresh_from_db()
    assert theirs.first_name != "Hacked"


def test_create_normalises_and_returns_the_contact(org, api):
    response = api.post(
        CONTACTS,
        {
            "email": " Ana.Lima@Example.COM",
            "phone": "0151 12345678",
            "first_name": "Ana",
            "tags": ["vip", "trial"],
            "properties": {"plan": "pro"},
        },
        content_type="application/json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["email"] == "ana.lima@example.com"
    assert body["phone"] == "+4915112345678"
    assert body["tags"] == ["trial", "vip"]
    assert Contact.objects.get(pk=body["id"]).org == org


@pytest.mark.parametrize(
    ("payload", "field", "fragment"),
    [
        ({"email": "ana@@example.com"}, "email", "@"),
        ({"email": "ana@example.com", "phone": "12"}, "phone", "not a valid phone number"),
        ({"email": "ana@example.com", "lifecycle_stage": "prospect"}, "lifecycle_stage", "not a valid choice"),
        ({"email": "ana@example.com", "country": "Germany"}, "country", "2 characters"),
        ({"email": "ana@example.com", "properties": ["not", "an", "object"]}, "properties", "dictionary"),
        ({"email": "ana@example.com", "time_zone": "Mars/Olympus"}, "time_zone", "IANA"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(org, api, payload, field, fragment):
    response = api.post(CONTACTS, payload, content_type="application/json")

    assert response.status_code == 400
    assert fragment in " ".join(response.json()[field])
    assert Contact.objects.count() == 0


def test_duplicate_email_is_a_400_on_email(org, api):
    ContactFactory(org=org, email="ana@example.com")
    response = api.post(CONTACTS, {"email": "ANA@example.com"}, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"email": ["A contact with this email already exists."]}


def test_another_orgs_company_cannot_be_referenced(org, other_org, api):
    with scopes_disabled():
        foreign = CompanyFactory(org=other_org)
    response = api.post(CONTACTS, {"email": "a@example.com", "company": foreign.pk}, content_type="application/json")
    assert response.status_code == 400
    assert "company" in response.json()


def test_update_and_delete(org, api):
    contact = ContactFactory(org=org, email="ana@example.com")
    company = CompanyFactory(org=org)
    url = f"{CONTACTS}{contact.pk}/"

    patched = api.patch(
        url, {"lifecycle_stage": "customer", "company": company.pk, "tags": ["vip"]}, content_type="application/json"
    )
    assert patched.status_code == 200, patched.content
    assert patched.json()["lifecycle_stage"] == "customer"
    assert patched.json()["tags"] == ["vip"]
    assert patched.json()["email"] == "ana@example.com"  # a PATCH leaves other fields alone

    assert api.delete(url).status_code == 204
    assert not Contact.objects.filter(pk=contact.pk).exists()


def test_filters_and_search(org, api):
    vip = TagFactory(org=org, name="vip")
    ana = ContactFactory(org=org, email="ana@example.com", lifecycle_stage="customer", country="BR")
    ana.tags.add(vip)
    ContactFactory(org=org, email="ben@example.com", lifecycle_stage="lead", country="DE")

    def emails(**params):
        return [item["email"] for item in api.get(CONTACTS, params).json()["results"]]

    assert emails(lifecycle_stage="customer") == ["ana@example.com"]
    assert emails(tag="vip") == ["ana@example.com"]
    assert emails(country="DE") == ["ben@example.com"]
    assert emails(email="BEN@example.com") == ["ben@example.com"]
    assert emails(search="ana") == ["ana@example.com"]
    assert emails(ordering="email") == ["ana@example.com", "ben@example.com"]
    assert api.get(CONTACTS, {"lifecycle_stage": "prospect"}).status_code == 400


def test_list_query_count_does_not_grow_with_rows(org, api, django_assert_max_num_queries):
    contacts = ContactFactory.create_batch(30, org=org, company=CompanyFactory(org=org))
    for contact in contacts:
        contact.tags.add(TagFactory(org=org))
    with django_assert_max_num_queries(8):  # the audit entry of the read is one of them
        assert len(api.get(CONTACTS).json()["results"]) == 30


def test_companies_crud(org, api):
    created = api.post(
        COMPANIES, {"name": "Acme", "domain": "https://www.Acme.io/", "size": 120}, content_type="application/json"
    )
    assert created.status_code == 201, created.content
    assert created.json()["domain"] == "acme.io"
    duplicate = api.post(COMPANIES, {"name": "Acme 2", "domain": "acme.io"}, content_type="application/json")
    assert duplicate.status_code == 400 and "domain" in duplicate.json()
    missing_name = api.post(COMPANIES, {"domain": "x.io"}, content_type="application/json")
    assert missing_name.status_code == 400 and "name" in missing_name.json()

    url = f"{COMPANIES}{created.json()['id']}/"
    assert api.patch(url, {"industry": "software"}, content_type="application/json").json()["industry"] == "software"
    assert api.get(COMPANIES, {"domain": "ACME.io"}).json()["count"] == 1
    assert api.delete(url).status_code == 204
    assert not Company.objects.exists()


def test_requests_without_a_valid_server_key_are_refused(org):
    write_key = api_key_create(org=org, name="site", scope="write")[1]
    key, revoked_raw = api_key_create(org=org, name="old")
    api_key_revoke(key=key)
    server_raw = api_key_create(org=org, name="server")[1]
    prefix = server_raw.split("_")[1]

    def status(header=None):
        headers = {"Authorization": header} if header else {}
        return Client(headers=headers).get(CONTACTS)

    assert status().status_code == 401
    assert status("Bearer nonsense").json() == {"detail": "Malformed API key: expected mk_<id>_<secret>."}
    assert status(f"Bearer mk_{prefix}_wrongsecret").status_code == 401
    assert status(f"Bearer {revoked_raw}").json() == {"detail": "This API key has been revoked."}
    assert status(f"Bearer {write_key}").status_code == 403
    assert status(f"Bearer {server_raw}").status_code == 200


@pytest.mark.parametrize("secret", ["x\x00y", "\udc80", "é", "a b", "a" * 201])
def test_a_key_with_characters_no_key_has_is_malformed_not_a_server_error(org, secret):
    prefix = api_key_create(org=org, name="server")[1].split("_")[1]
    raw = f"mk_{prefix}_{secret}"
    if secret != "\udc80":  # headers reach Django as latin-1: a surrogate can only come in a body
        response = Client(headers={"Authorization": f"Bearer {raw}"}).get(CONTACTS)
        assert response.status_code == 401
    response = Client().post(
        "/v1/track", {"writeKey": raw, "event": "x", "userId": "u"}, content_type="application/json"
    )
    assert response.status_code in (400, 401)  # a NUL or surrogate in the body is the body's error
    assert api_key_from_token(raw) == (None, "Malformed API key: expected mk_<id>_<secret>.")
    assert api_key_from_token(f"mk_{prefix[:7]}\x00_{secret}")[0] is None


def test_schema_and_docs_are_served(db):
    client = Client()
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/contacts/" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
