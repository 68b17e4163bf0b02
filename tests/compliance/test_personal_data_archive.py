"""The export of one contact: a ZIP with a JSON and a CSV file per registered source, and a README."""

import csv
import io
import json
import zipfile

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from compliance.erasure import contact_export
from compliance.personal_data_archive import personal_data_archive_write
from marketing.personal_data import personal_data_sources
from tests.compliance.personal_data_everywhere import EMAIL, FIRST_NAME, OTHER_EMAIL, person_with_data_everywhere


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def test_export_holds_every_source_with_only_the_persons_rows(org, tmp_path):
    people = person_with_data_everywhere(org, tmp_path)
    export = contact_export(contact=people.person)

    assert set(export["sources"]) == {source.name for source in personal_data_sources()}
    rows = export["sources"]
    # Every kind of data the person has is there, and nothing of the bystander's.
    for name in (
        "contact", "tags", "list_memberships", "segment_memberships", "anonymous_ids", "events", "merges",
        "identity_conflicts", "messages", "push_subscriptions", "suppressions", "scores", "score_ledger",
        "handoffs", "workflow_instances", "step_runs", "approvals", "deliveries", "automation_executions",
        "consent_records", "data_subject_requests", "imports",
    ):  # fmt: skip
        assert rows[name]["rows"], name
    assert rows["contact"]["rows"][0]["email"] == EMAIL
    assert {row["reason"] for row in rows["suppressions"]["rows"]} == {"hard_bounce", "sms_stop"}
    assert {row["contact_id"] for row in rows["events"]["rows"]} == {people.person.pk}
    assert rows["merges"]["rows"][0]["merged_snapshot"]["first_name"] == FIRST_NAME
    assert rows["imports"]["rows"][0]["rows"] == [
        {
            "row": 2,
            "values": {
                "email": EMAIL,
                "first_name": FIRST_NAME,
                "last_name": "Quarmbyfeather",
                "phone": "+4915198765432",
            },
        }
    ]
    assert OTHER_EMAIL not in json.dumps({k: v for k, v in rows.items() if k != "identity_conflicts"})
    json.dumps(export)  # plain data all through


def test_archive_has_a_json_and_a_csv_per_source_and_a_readme(org, tmp_path):
    people = person_with_data_everywhere(org, tmp_path)
    export = contact_export(contact=people.person)
    out = io.BytesIO()
    personal_data_archive_write(export=export, out=out)

    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        for source in personal_data_sources():
            assert {f"{source.name}.json", f"{source.name}.csv"} <= names
            assert json.loads(archive.read(f"{source.name}.json")) == export["sources"][source.name]["rows"]
        readme = archive.read("README.txt").decode()
        events = list(csv.DictReader(io.StringIO(archive.read("events.csv").decode())))
    assert "events.json, events.csv (2 records)" in readme  # its own and the merged duplicate's
    assert {event["type"] for event in events} == {"form_submitted", "page_viewed"}
    assert json.loads(next(e for e in events if e["type"] == "form_submitted")["properties"])["email"] == EMAIL


def test_dsar_export_command_writes_the_archive(org, tmp_path, capsys):
    people = person_with_data_everywhere(org, tmp_path)
    out = tmp_path / "person.zip"
    call_command("dsar_export", "--org", org.slug, "--email", f" {EMAIL.upper()} ", "--out", str(out))
    with zipfile.ZipFile(out) as archive:
        contact = json.loads(archive.read("contact.json"))
    assert contact[0]["id"] == people.person.pk
    assert f"Wrote {out}" in capsys.readouterr().out


def test_dsar_export_refuses_unknown_org_contact_and_unwritable_path(org, tmp_path):
    person_with_data_everywhere(org, tmp_path)
    with pytest.raises(CommandError, match="No organisation with slug 'nope'"):
        call_command("dsar_export", "--org", "nope", "--email", EMAIL, "--out", str(tmp_path / "a.zip"))
    with pytest.raises(CommandError, match="No contact with the email"):
        call_command("dsar_export", "--org", org.slug, "--email", "nobody@example.com", "--out", "a.zip")
    with pytest.raises(CommandError, match="Cannot write"):
        call_command("dsar_export", "--org", org.slug, "--email", EMAIL, "--out", str(tmp_path / "no" / "a.zip"))
