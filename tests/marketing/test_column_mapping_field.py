"""An import's columns typed one "column = field" a line (marketing/column_mapping_field.py)."""

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from marketing.models import ImportJob, Role

CSV = b"E-mail,Plan = tier\nana@example.com,pro\n"


def upload(client: Client, mapping: str):
    return client.post(
        "/admin/marketing/importjob/add/",
        {"kind": "contacts", "mapping": mapping, "dry_run": "on", "file": SimpleUploadedFile("c.csv", CSV, "text/csv")},
    )


def test_columns_are_typed_one_a_line(org, member_factory):
    client = Client()
    client.force_login(member_factory(org, Role.ADMIN, username="ada"))
    page = client.get("/admin/marketing/importjob/add/").content.decode()
    assert "E-mail = email" in page  # the placeholder shows the shape
    response = upload(client, "E-mail = email\n\nPlan = tier = properties.plan\n")
    assert response.status_code == 302, response.context["adminform"].form.errors
    # The last "=" splits: a column's own "=" stays in its name.
    assert ImportJob.objects.get().mapping == {"E-mail": "email", "Plan = tier": "properties.plan"}


def test_each_bad_line_is_named(org, member_factory):
    client = Client()
    client.force_login(member_factory(org, Role.ADMIN, username="ada"))
    response = upload(client, "E-mail = email\nPlan\nE-mail = phone\n= email")
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["mapping"] == [
        "Line 2: write the CSV column, “=” and the field, e.g. “E-mail = email”.",
        "Line 3: the column “E-mail” is mapped twice.",
        "Line 4: write the CSV column, “=” and the field, e.g. “E-mail = email”.",
    ]
    assert not ImportJob.objects.exists()
