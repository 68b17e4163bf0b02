"""Unknown URLs: JSON for API clients and webhooks, a page for people."""

import pytest


@pytest.mark.parametrize("path", ["/api/v2/contacts/", "/api/v1/nothing-here/", "/v1/nothing", "/hooks/x"])
def test_an_unknown_machine_route_answers_json(client, db, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


def test_an_unknown_page_answers_html(client, db):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_the_schema_documents_the_error_answers_of_every_operation(client, db):
    schema = client.get("/api/schema/?format=json").json()
    operations = [op for item in schema["paths"].values() for method, op in item.items() if method != "parameters"]
    assert operations
    for operation in operations:
        assert {"400", "401", "403", "404", "413", "415", "429"} <= set(operation["responses"])
