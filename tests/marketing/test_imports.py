"""CSV imports: per-row errors, dedupe on email, resume after a crash, dry runs, events, the command, the admin."""

import csv
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client
from django_scopes import scopes_disabled

from marketing import imports
from marketing.celery import app
from marketing.imports import import_errors_csv, import_job_create, import_job_run
from marketing.models import (
    Company,
    Contact,
    DispatchBatch,
    Event,
    ImportJob,
    ImportRowError,
    PropertyDefinition,
    Role,
    Tag,
)
from marketing.tenancy import no_org, org_context
from tests.factories import ContactFactory, ContactListFactory, OrganizationFactory

ROOT = Path(__file__).resolve().parents[2]
CONTACTS_MAPPING = {
    "E-mail": "email",
    "First name": "first_name",
    "Phone": "phone",
    "Country": "country",
    "Stage": "lifecycle_stage",
    "Company": "company",
    "Domain": "company.domain",
    "Tags": "tags",
    "Lists": "lists",
    "Plan": "properties.plan",
    "Seats": "properties.seats",
}


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def csv_file(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def errors_of(job: ImportJob) -> set[tuple[int, str]]:
    return set(ImportRowError.objects.filter(job=job).values_list("row", "column"))


def run(org, path, mapping, kind=ImportJob.Kind.CONTACTS, **options) -> ImportJob:
    job = import_job_create(org=org, kind=kind, path_or_file=path, mapping=mapping, **options)
    return import_job_run(job_id=job.pk)


@pytest.fixture
def contacts_csv(org, tmp_path):
    """Good rows, bad rows of every kind, a duplicate email in other case and an existing contact."""
    ContactFactory(org=org, email="old@example.com", first_name="Old", lifecycle_stage="lead")
    ContactListFactory(org=org, slug="newsletter", name="Newsletter")
    PropertyDefinition.objects.create(org=org, subject="contact", key="seats", label="Seats", type="number")
    header = list(CONTACTS_MAPPING)
    rows = [
        ["ana@example.com", "Ana", "+49 151 12345678", "de", "Lead", "Acme", "https://www.Acme.io/", "vip; beta",
         "newsletter", "pro", "12"],                                                                  # 1 created
        ["not-an-email", "X", "", "", "", "", "", "", "", "", ""],                                    # 2 email
        ["bo@example.com", "Bo", "12", "", "", "", "", "", "", "", ""],                               # 3 phone
        ["cy@example.com", "Cy", "", "Germany", "", "", "", "", "", "", ""],                          # 4 country
        ["dee@example.com", "Dee", "", "", "prospect", "", "", "", "", "", ""],                       # 5 stage
        ["eve@example.com", "Eve", "", "", "", "", "", "", "newsletter,nope", "", ""],                # 6 list
        ["ANA@Example.com", "Anna", "", "", "", "", "", "", "", "", ""],                              # 7 updated
        ["old@example.com", "", "", "", "customer", "", "", "vip", "", "", ""],                       # 8 updated
        ["fay@example.com", "Fay", "", "", "", "", "", "", "", "", "many"],                           # 9 seats
        ["", "Nameless", "", "", "", "", "", "", "", "", ""],                                         # 10 email
        ["gus@example.com", "Gus", "0000", "Deutschland", "", "", "", "", "", "", ""],                # 11 two errors
        ["hal@example.com", "Hal", "0151 12345679", "", "", "Acme", "", "", "", "enterprise", "3"],  # 12 created
    ]  # fmt: skip
    return csv_file(tmp_path / "contacts.csv", header, rows)


def test_contacts_import_counts_rows_reports_each_bad_cell_and_updates_instead_of_duplicating(
    org, other_org, contacts_csv
):
    with scopes_disabled():
        theirs = ContactFactory(org=other_org, email="ana@example.com", first_name="Theirs")

    job = run(org, contacts_csv, CONTACTS_MAPPING)

    assert (job.status, job.rows_total, job.rows_done) == ("done", 12, 12)
    assert (job.rows_created, job.rows_updated, job.rows_failed) == (2, 2, 8)
    assert errors_of(job) == {
        (2, "E-mail"),
        (3, "Phone"),
        (4, "Country"),
        (5, "Stage"),
        (6, "Lists"),
        (9, "Seats"),
        (10, "E-mail"),
        (11, "Phone"),
        (11, "Country"),
    }
    reasons = dict(ImportRowError.objects.filter(job=job).values_list("column", "reason"))
    assert "nope" in reasons["Lists"] and "many" in reasons["Seats"] and "prospect" in reasons["Stage"]

    assert sorted(Contact.objects.values_list("email", flat=True)) == [
        "ana@example.com",
        "hal@example.com",
        "old@example.com",
    ]
    ana = Contact.objects.get(email="ana@example.com")
    assert (ana.first_name, ana.phone, ana.country, ana.lifecycle_stage) == ("Anna", "+4915112345678", "DE", "lead")
    assert {t.name for t in ana.tags.all()} == {"vip", "beta"}
    assert [cl.slug for cl in ana.lists.all()] == ["newsletter"]
    assert (ana.company.name, ana.company.domain) == ("Acme", "acme.io")
    assert ana.properties == {"plan": "pro", "seats": 12}
    hal = Contact.objects.get(email="hal@example.com")
    assert hal.company_id == ana.company_id and hal.phone == "+4915112345679"  # national number, org's country
    assert Company.objects.count() == 1
    old = Contact.objects.get(email="old@example.com")
    assert (old.first_name, old.lifecycle_stage) == ("Old", "customer")  # empty cells change nothing
    assert [t.name for t in old.tags.all()] == ["vip"]
    assert PropertyDefinition.objects.get(subject="contact", key="plan").source == "auto"
    with org_context(other_org):
        theirs.refresh_from_db()
        assert (theirs.org_id, theirs.first_name) == (other_org.pk, "Theirs")  # another org's namesake

    out = io.StringIO()
    assert import_errors_csv(job, out) == 9
    lines = out.getvalue().splitlines()
    assert lines[0] == "row,column,reason" and lines[1].startswith("2,E-mail,")


def test_contacts_import_takes_a_constant_number_of_queries_per_batch(org, tmp_path, django_assert_max_num_queries):
    ContactListFactory(org=org, slug="newsletter")
    existing = [ContactFactory(org=org, email=f"p{i}@example.com") for i in range(0, 300, 3)]
    rows = [[f"p{i}@example.com", f"P{i}", f"Company {i % 7}", "vip,new", "newsletter", str(i)] for i in range(300)]
    path = csv_file(tmp_path / "many.csv", ["Email", "Name", "Company", "Tags", "Lists", "Seats"], rows)
    mapping = {"Email": "email", "Name": "first_name", "Company": "company", "Tags": "tags", "Lists": "lists",
               "Seats": "properties.seats"}  # fmt: skip
    job = import_job_create(org=org, kind="contacts", path_or_file=path, mapping=mapping)

    with django_assert_max_num_queries(30):
        job = import_job_run(job_id=job.pk)

    assert (job.rows_created, job.rows_updated, job.rows_failed) == (200, 100, 0)
    assert Contact.objects.count() == 300
    assert Contact.tags.through.objects.filter(contact__in=existing).count() == 200


def test_rows_without_email_need_an_external_id_and_match_on_it(org, tmp_path):
    ContactFactory(org=org, email=None, external_id="crm-1", first_name="Before")
    path = csv_file(
        tmp_path / "ids.csv",
        ["Id", "Mail", "Name"],
        [["crm-1", "", "After"], ["crm-2", "", "New"], ["", "", "Nobody"], ["crm-1", "one@example.com", ""]],
    )

    job = run(org, path, {"Id": "external_id", "Mail": "email", "Name": "first_name"})

    assert (job.rows_created, job.rows_updated, job.rows_failed) == (1, 2, 1)
    assert errors_of(job) == {(3, "Mail")}
    crm1 = Contact.objects.get(external_id="crm-1")
    assert (crm1.first_name, crm1.email) == ("After", "one@example.com")
    assert Contact.objects.count() == 2


def test_mapping_errors_name_the_column_and_the_field(org, contacts_csv):
    with pytest.raises(ValidationError) as missing:
        import_job_create(org=org, kind="contacts", path_or_file=contacts_csv, mapping={"Foo": "email"})
    assert missing.value.message_dict["mapping"][0].startswith("Column 'Foo' is not in the file's header")

    with pytest.raises(ValidationError) as unknown:
        import_job_create(
            org=org, kind="contacts", path_or_file=contacts_csv, mapping={"E-mail": "email", "Plan": "xyz"}
        )
    assert "unknown target field 'xyz'" in unknown.value.message_dict["mapping"][0]

    with pytest.raises(ValidationError) as no_key:
        import_job_create(org=org, kind="contacts", path_or_file=contacts_csv, mapping={"Plan": "first_name"})
    assert "email" in no_key.value.message_dict["mapping"][0]
    assert not ImportJob.objects.exists()


def test_a_file_that_is_not_utf8_is_refused(org, tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("email,name\nzoë@example.com,Zoë\n".encode("latin-1"))
    with pytest.raises(ValidationError) as refused:
        import_job_create(org=org, kind="contacts", path_or_file=path, mapping={"email": "email"})
    assert "UTF-8" in refused.value.message_dict["file"][0]


def big_contacts_csv(path: Path, rows: int, *, bad_every: int = 0) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "first_name", "country", "tags"])
        for i in range(1, rows + 1):
            email = f"bad-{i}-at-example.com" if bad_every and i % bad_every == 0 else f"c{i}@example.com"
            writer.writerow([email, f"Name{i}", "DE", f"t{i % 5}"])
    return path


BIG_MAPPING = {"email": "email", "first_name": "first_name", "country": "country", "tags": "tags"}


def test_a_crashed_import_resumes_after_its_last_batch_and_ends_as_a_clean_run(org, tmp_path, monkeypatch):
    path = big_contacts_csv(tmp_path / "big.csv", 2500, bad_every=500)
    real = imports._contacts_batch
    calls = []

    def crash_in_second_batch(*args):
        calls.append(1)
        outcome = real(*args)  # the second batch writes, then the process "dies" before its commit
        if len(calls) == 2:
            raise RuntimeError("worker killed")
        return outcome

    monkeypatch.setattr(imports, "_contacts_batch", crash_in_second_batch)
    job = import_job_create(org=org, kind="contacts", path_or_file=path, mapping=BIG_MAPPING)
    with pytest.raises(RuntimeError):
        import_job_run(job_id=job.pk)

    job.refresh_from_db()
    assert (job.status, job.rows_done, job.rows_created, job.rows_failed) == ("failed", 1000, 998, 2)
    assert "worker killed" in job.error
    assert Contact.objects.count() == 998  # nothing of the second batch

    monkeypatch.setattr(imports, "_contacts_batch", real)
    err = io.StringIO()
    call_command(
        "import_contacts", str(path), "--org", org.slug, "--mapping", json.dumps(BIG_MAPPING), stdout=io.StringIO(),
        stderr=err,
    )  # fmt: skip

    assert f"Resuming import #{job.pk} at row 1001" in err.getvalue()
    assert ImportJob.objects.count() == 1
    job.refresh_from_db()
    assert (job.status, job.rows_total, job.rows_done) == ("done", 2500, 2500)
    assert (job.rows_created, job.rows_updated, job.rows_failed) == (2495, 0, 5)
    assert errors_of(job) == {(row, "email") for row in (500, 1000, 1500, 2000, 2500)}
    assert ImportRowError.objects.filter(job=job).count() == 5  # the lost batch's errors are not doubled
    assert Contact.objects.count() == 2495
    assert Contact.tags.through.objects.count() == 2495


def test_a_second_run_of_the_same_job_never_writes_a_batch_twice(org, tmp_path):
    path = big_contacts_csv(tmp_path / "big.csv", 2500)
    job = import_job_create(org=org, kind="contacts", path_or_file=path, mapping=BIG_MAPPING)
    other_runs = []

    def start_another_run(current):  # e.g. a redelivered task while the first is still working
        if not other_runs:
            other_runs.append(import_job_run(job_id=current.pk))

    first = import_job_run(job_id=job.pk, on_batch=start_another_run)

    assert other_runs[0].status == first.status == "done"
    assert (first.rows_done, first.rows_created, first.rows_updated) == (2500, 2500, 0)
    assert Contact.objects.count() == 2500


def test_a_dry_run_counts_and_reports_but_writes_nothing(org, contacts_csv):
    job = run(org, contacts_csv, CONTACTS_MAPPING, dry_run=True)

    assert (job.status, job.dry_run) == ("done", True)
    assert (job.rows_created, job.rows_updated, job.rows_failed) == (2, 2, 8)
    assert (9, "Seats") in errors_of(job)
    assert sorted(Contact.objects.values_list("email", flat=True)) == ["old@example.com"]
    assert Contact.objects.get().lifecycle_stage == "lead"
    assert not Company.objects.exists() and not Tag.objects.exists()
    assert not PropertyDefinition.objects.filter(key="plan").exists()


def test_property_values_are_typed_by_their_definition_or_the_first_value(org, tmp_path):
    PropertyDefinition.objects.create(org=org, subject="contact", key="paying", type="boolean")
    PropertyDefinition.objects.create(org=org, subject="contact", key="seats", type="number")
    PropertyDefinition.objects.create(org=org, subject="contact", key="langs", type="list")
    rows = [
        ["a@example.com", "yes", "1.5", "de; en", "2026-12-01"],
        ["b@example.com", "0", "-3", '["pt"]', "2026-12-01 10:00:00"],
        ["c@example.com", "no", "3", "", "soon"],
        ["d@example.com", "maybe", "", "", ""],
    ]
    path = csv_file(tmp_path / "p.csv", ["email", "paying", "seats", "langs", "trial_ends"], rows)
    mapping = {"email": "email", **{k: f"properties.{k}" for k in ("paying", "seats", "langs", "trial_ends")}}

    job = run(org, path, mapping)

    assert errors_of(job) == {(3, "trial_ends"), (4, "paying")}
    assert Contact.objects.get(email="a@example.com").properties == {
        "paying": True, "seats": 1.5, "langs": ["de", "en"], "trial_ends": "2026-12-01T00:00:00Z"
    }  # fmt: skip
    assert Contact.objects.get(email="b@example.com").properties == {
        "paying": False, "seats": -3, "langs": ["pt"], "trial_ends": "2026-12-01T10:00:00Z"
    }  # fmt: skip
    assert PropertyDefinition.objects.get(key="trial_ends").type == "datetime"


EVENTS_MAPPING = {"Type": "type", "E-mail": "email", "When": "occurred_at", "Plan": "properties.plan"}


@pytest.fixture
def events_csv(org, tmp_path):
    ContactFactory(org=org, email="ana@example.com")
    rows = [
        ["trial_started", "ana@example.com", "2026-10-01T08:00:00Z", "pro"],  # 1 stored
        ["page_view", "ANA@example.com", "2026-10-02 09:30:00", ""],  # 2 stored, UTC
        ["page_view", "bo@example.com", "2026-10-03T10:00:00+02:00", ""],  # 3 stored, new contact
        ["page_view", "bo@example.com", "yesterday", ""],  # 4 bad time
        ["page_view", "bo@example.com", "", ""],  # 5 no time
        ["page_view", "not-an-email", "2026-10-03T10:00:00Z", ""],  # 6 bad email
        ["page_view", "bo@example.com", "2099-01-01T00:00:00Z", ""],  # 7 in the future
        ["", "bo@example.com", "2026-10-04T10:00:00Z", ""],  # 8 no type
    ]
    return csv_file(tmp_path / "events.csv", list(EVENTS_MAPPING), rows)


def test_events_import_stores_each_row_once_on_the_right_contact(org, events_csv):
    job = run(org, events_csv, EVENTS_MAPPING, kind="events")

    assert (job.status, job.rows_created, job.rows_updated, job.rows_failed) == ("done", 3, 0, 5)
    assert errors_of(job) == {(4, "When"), (5, "When"), (6, "E-mail"), (7, "When"), (8, "Type")}
    ana = Contact.objects.get(email="ana@example.com")
    assert sorted(ana.events.values_list("type", "occurred_at__hour")) == [("page_view", 9), ("trial_started", 8)]
    assert ana.events.get(type="trial_started").properties == {"plan": "pro"}
    bo = Contact.objects.get(email="bo@example.com")
    assert [e.occurred_at.isoformat() for e in bo.events.all()] == ["2026-10-03T08:00:00+00:00"]
    assert set(Event.objects.values_list("source", flat=True)) == {"import"}
    assert not DispatchBatch.objects.exists()  # dispatch is off by default

    again = run(org, events_csv, EVENTS_MAPPING, kind="events")

    assert again.pk != job.pk
    assert (again.rows_created, again.rows_failed, again.rows_done) == (0, 5, 8)
    assert Event.objects.count() == 3


def test_an_events_dry_run_stores_no_events_and_no_contacts(org, events_csv):
    job = run(org, events_csv, EVENTS_MAPPING, kind="events", dry_run=True)

    assert (job.rows_created, job.rows_failed) == (3, 5)
    assert not Event.objects.exists()
    assert list(Contact.objects.values_list("email", flat=True)) == ["ana@example.com"]


def test_events_import_with_dispatch_queues_the_stored_events(org, tmp_path, monkeypatch):
    monkeypatch.setattr("marketing.tasks.dispatch_batch.delay", lambda **kw: None)
    path = csv_file(tmp_path / "e.csv", ["Type", "E-mail", "When"], [["signup", "z@example.com", "2026-10-01"]] * 3)

    job = run(org, path, {"Type": "type", "E-mail": "email", "When": "occurred_at"}, kind="events", dispatch=True)

    assert job.rows_created == 3
    batch = DispatchBatch.objects.get()
    assert sorted(batch.event_ids) == sorted(Event.objects.values_list("pk", flat=True))


def test_command_refuses_an_unknown_org_and_a_mapping_of_a_missing_column(org, contacts_csv, tmp_path):
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"Foo": "email"}))

    with pytest.raises(CommandError, match=r"^No organisation with slug 'nope'\.$"):
        call_command("import_contacts", str(contacts_csv), "--org", "nope", "--mapping", str(mapping))
    with pytest.raises(CommandError, match=r"^mapping: Column 'Foo' is not in the file's header"):
        call_command("import_contacts", str(contacts_csv), "--org", org.slug, "--mapping", str(mapping))
    mapping.write_text("{'E-mail': 'email'}")
    with pytest.raises(CommandError, match="is not valid JSON"):
        call_command("import_contacts", str(contacts_csv), "--org", org.slug, "--mapping", str(mapping))
    with pytest.raises(CommandError, match=r"^Cannot read .*missing\.csv"):
        call_command("import_contacts", str(tmp_path / "missing.csv"), "--org", org.slug, "--mapping", "{}")
    assert not ImportJob.objects.exists()


def test_command_exits_non_zero_with_one_line_for_an_unknown_org(db, tmp_path, shared_database_url):
    path = csv_file(tmp_path / "c.csv", ["email"], [["a@example.com"]])
    env = {**os.environ, "DATABASE_URL": shared_database_url, "MEDIA_ROOT": str(tmp_path)}
    result = subprocess.run(  # noqa: S603  our own manage.py, arguments built here
        [sys.executable, "manage.py", "import_contacts", str(path), "--org", "nope", "--mapping", '{"email":"email"}'],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["CommandError: No organisation with slug 'nope'."]


def test_command_imports_and_prints_a_summary_and_a_report(org, contacts_csv, tmp_path):
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps(CONTACTS_MAPPING))
    report = tmp_path / "errors.csv"
    out = io.StringIO()

    call_command(
        "import_contacts", str(contacts_csv), "--org", org.slug, "--mapping", str(mapping), "--report", str(report),
        stdout=out, stderr=io.StringIO(),
    )  # fmt: skip

    job = ImportJob.objects.get()
    assert out.getvalue() == f"Import #{job.pk} done: 2 created, 2 updated, 8 failed, 12 total.\n"
    with open(report, newline="") as f:
        assert {(int(r["row"]), r["column"]) for r in csv.DictReader(f)} == errors_of(job)


def test_events_command_counts_reruns_as_already_stored(org, events_csv):
    args = ["import_events", str(events_csv), "--org", org.slug, "--mapping", json.dumps(EVENTS_MAPPING)]
    first, second = io.StringIO(), io.StringIO()
    call_command(*args, stdout=first, stderr=io.StringIO())
    call_command(*args, stdout=second, stderr=io.StringIO())

    assert "3 created, 0 already stored, 5 failed, 8 total" in first.getvalue()
    assert "0 created, 3 already stored, 5 failed, 8 total" in second.getvalue()


def test_the_task_runs_a_job_it_knows_only_by_id(org, contacts_csv):
    from marketing.tasks import import_run

    job = import_job_create(org=org, kind=ImportJob.Kind.CONTACTS, path_or_file=contacts_csv, mapping=CONTACTS_MAPPING)
    with no_org():  # a worker starts outside any org
        import_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.rows_created, job.rows_updated, job.rows_failed) == ("done", 2, 2, 8)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_100k_rows_import_in_bounded_memory(tmp_path, shared_database_url):
    organization = OrganizationFactory(slug="bulk")
    path = big_contacts_csv(tmp_path / "100k.csv", 100_000, bad_every=100)
    report = tmp_path / "errors.csv"
    env = {**os.environ, "DATABASE_URL": shared_database_url, "MEDIA_ROOT": str(tmp_path / "media"), "DEBUG": "true"}
    command = [sys.executable, "manage.py", "import_contacts", str(path), "--org", organization.slug,
               "--mapping", json.dumps(BIG_MAPPING), "--report", str(report)]  # fmt: skip

    started = time.monotonic()
    process = subprocess.Popen(  # noqa: S603  our own manage.py, arguments built here
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    watched, peak = psutil.Process(process.pid), 0
    while process.poll() is None:
        try:
            peak = max(peak, watched.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    out, err = process.communicate(timeout=600)
    seconds = time.monotonic() - started
    print(f"\n100k-row import: peak RSS {peak / 2**20:.0f} MB, {seconds:.1f} s")

    assert process.returncode == 0, err
    assert out.strip().endswith("99000 created, 0 updated, 1000 failed, 100000 total.")
    assert peak < 300 * 2**20
    with open(report, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["row"]) for r in rows] == list(range(100, 100_001, 100))
    assert {r["column"] for r in rows} == {"email"}
    with org_context(organization):
        assert Contact.objects.filter(org=organization).count() == 99_000


def test_admin_uploads_a_csv_and_the_job_runs_and_shows_its_errors(
    org, member_factory, contacts_csv, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setitem(app.conf, "task_always_eager", True)
    admin_user = member_factory(org, Role.ADMIN, username="ada")
    client = Client()
    client.force_login(admin_user)
    form = {"kind": "contacts", "mapping": json.dumps(CONTACTS_MAPPING), "dry_run": "", "dispatch": ""}
    assert 'type="file"' in client.get("/admin/marketing/importjob/add/").content.decode()

    with open(contacts_csv, "rb") as f:
        bad = client.post(
            "/admin/marketing/importjob/add/",
            {**form, "mapping": '{"Foo": "email"}', "file": SimpleUploadedFile("c.csv", f.read(), "text/csv")},
        )
    assert bad.status_code == 200
    assert "Column &#x27;Foo&#x27; is not in the file&#x27;s header" in bad.content.decode()
    assert not ImportJob.objects.exists()

    with open(contacts_csv, "rb") as f, django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/marketing/importjob/add/", {**form, "file": SimpleUploadedFile("c.csv", f.read(), "text/csv")}
        )
    assert response.status_code == 302

    job = ImportJob.objects.get()
    assert (job.status, job.created_by, job.rows_created, job.rows_updated, job.rows_failed) == (
        "done", admin_user, 2, 2, 8
    )  # fmt: skip
    assert Contact.objects.filter(email="hal@example.com").exists()
    listing = client.get("/admin/marketing/importjob/").content.decode()
    assert "c.csv" in listing and "12 / 12" in listing
    page = client.get(f"/admin/marketing/importjob/{job.pk}/change/").content.decode()
    assert "9 errors" in page and "Seats" in page and 'name="kind"' not in page  # read-only
    report = client.post(
        "/admin/marketing/importjob/", {"action": "download_errors", "_selected_action": [job.pk]}
    )  # fmt: skip
    assert report["Content-Type"].startswith("text/csv") and report.streaming
    lines = b"".join(report.streaming_content).decode().splitlines()
    assert lines[0] == "row,column,reason" and len(lines) == 10


def test_a_member_of_another_org_cannot_download_the_errors(org, other_org, member_factory, contacts_csv):
    job = run(org, contacts_csv, CONTACTS_MAPPING)
    outsider = member_factory(other_org, Role.ADMIN, username="eve")
    client = Client()
    client.force_login(outsider)

    assert client.get(f"/admin/marketing/importjob/{job.pk}/errors.csv").status_code == 404
