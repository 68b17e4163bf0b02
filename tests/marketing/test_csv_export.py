"""Every CSV the product writes goes through one writer that writes formulas as text (OWASP's rule
for CSV injection): import error reports (the function, the command's --report, the console's
download) and segment exports."""

import csv
import io
import json

import pytest
from django.core.management import call_command
from django.urls import reverse
from django_scopes import scopes_disabled

from marketing.csv_export import csv_stream, csv_write
from marketing.imports import import_errors_csv, import_job_create, import_job_run
from marketing.models import ImportJob
from marketing.segments import segment_save
from marketing.tenancy import no_org
from tests.factories import ContactFactory

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Headers of an uploaded file end up in the report's "column" cells, the bad values in its reasons.
EVIL_HEADERS = {'=HYPERLINK("http://evil.example","x")': "email", "+1+cmd": "first_name", "@SUM(A1)": "lifecycle_stage"}


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def evil_job(org, tmp_path) -> ImportJob:
    """A finished contacts import whose rejected rows carry formula payloads."""
    path = tmp_path / "evil.csv"
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(list(EVIL_HEADERS))
        writer.writerow(["=1+2", "Ana", "-2+3"])
        writer.writerow(["ok@example.com", "Bo", "=cmd|' /C calc'!A0"])
    job = import_job_create(org=org, kind="contacts", path_or_file=path, mapping=EVIL_HEADERS)
    return import_job_run(job_id=job.pk)


def assert_no_formula(rows: list[list[str]]) -> None:
    cells = [cell for row in rows for cell in row]
    assert cells and not [cell for cell in cells if cell.startswith(FORMULA_STARTS)]


def parse(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_the_writer_puts_a_quote_before_every_formula_start_and_keeps_numbers(start):
    text = "".join(csv_stream(header=[f"{start}head"], rows=[[f"{start}1+1", -5, 2.5, None, "plain"]]))

    assert parse(text) == [[f"'{start}head"], [f"'{start}1+1", "-5", "2.5", "", "plain"]]


def test_the_writer_streams_in_chunks_and_counts_rows():
    parts = list(csv_stream(header=["n"], rows=([i] for i in range(5)), chunk_rows=2))
    out = io.StringIO()

    assert parts == ["n\r\n", "0\r\n1\r\n", "2\r\n3\r\n", "4\r\n"]
    assert csv_write(out, header=["n"], rows=[["=x"], ["y"]]) == 2 and out.getvalue() == "n\r\n'=x\r\ny\r\n"


def test_the_import_error_report_writes_formulas_as_text(evil_job):
    out = io.StringIO()

    assert import_errors_csv(evil_job, out) == evil_job.row_errors.count() >= 2
    rows = parse(out.getvalue())
    assert rows[0] == ["row", "column", "reason"]
    assert_no_formula(rows)
    assert {row[1] for row in rows[1:]} >= {"'" + next(iter(EVIL_HEADERS)), "'@SUM(A1)"}


def test_the_import_commands_report_writes_formulas_as_text(org, evil_job, tmp_path):
    report = tmp_path / "errors.csv"
    mapping = json.dumps(EVIL_HEADERS)

    call_command(
        "import_contacts", evil_job.file.path, "--org", org.slug, "--mapping", mapping, "--report", str(report),
        stdout=io.StringIO(), stderr=io.StringIO(),
    )  # fmt: skip

    rows = parse(report.read_text(encoding="utf-8"))
    assert len(rows) > 2
    assert_no_formula(rows)


def test_the_consoles_error_download_writes_formulas_as_text_and_streams(org, evil_job, console):
    by_url = console.get(reverse("admin:marketing_importjob_errors", args=[evil_job.pk]))
    by_action = console.post(
        "/admin/marketing/importjob/", {"action": "download_errors", "_selected_action": [evil_job.pk]}
    )

    for response in (by_url, by_action):
        assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
        assert response.streaming
        with no_org():
            rows = parse(b"".join(response.streaming_content).decode())
        assert len(rows) == evil_job.row_errors.count() + 1
        assert_no_formula(rows)


def test_the_segment_export_writes_formulas_as_text(org, console):
    ContactFactory(org=org, country="DE", email="eve@acme.example", first_name="@SUM(1)", last_name="-1+2")
    segment = segment_save(org=org, name="Germans", slug="germans", rule={"==": [{"var": "country"}, "DE"]})

    response = console.get(reverse("admin:marketing_segment_members_csv", args=[segment.pk]))

    with no_org(), scopes_disabled():
        rows = parse(b"".join(response.streaming_content).decode())
    assert rows[1][:3] == ["eve@acme.example", "'@SUM(1)", "'-1+2"]
    assert_no_formula(rows)
