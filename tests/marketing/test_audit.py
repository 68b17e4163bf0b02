"""The audit log: entries name who did what to which row and which fields, never a value; the
database refuses to change or remove them (but lets the table's owner purge old ones)."""

import os
import re
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError
from django.urls import reverse

from marketing.audit import Source, audit_context, audit_record
from marketing.database_roles import system_alias
from marketing.models import AuditEntry, Role, Tag
from marketing.segments import segment_save
from marketing.tenancy import org_context
from tests.factories import ContactFactory

ROOT = Path(__file__).resolve().parents[2]
postgres_only = pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="the append-only trigger exists on PostgreSQL only"
)


_probes = iter(range(1_000_000))


def owns(table: str) -> bool:
    """Whether the test's connection is the table's owner (the default), or the app's role (the
    suite run with OWNER_DATABASE_URL: the owner migrates, tests act as the app)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_has_role(current_user, relowner, 'USAGE') FROM pg_class WHERE oid = %s::regclass", [table]
        )
        return cursor.fetchone()[0]


@contextmanager
def non_owner(*tables: str):
    """Runs the block, inside a savepoint, as a role that does not own ``tables``: the app's role
    when the suite already runs as it, else a throwaway role (CREATE ROLE is transactional: the
    savepoint's rollback, which the refusal causes, removes it and ends the SET LOCAL ROLE)."""
    with transaction.atomic(), connection.cursor() as cursor:
        if owns(tables[0]):
            role = f"audit_probe_{os.getpid()}_{next(_probes)}"
            cursor.execute(f"CREATE ROLE {role}")
            cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON {', '.join(tables)} TO {role}")
            cursor.execute(f"SET LOCAL ROLE {role}")
        yield cursor


def test_record_takes_the_actor_from_the_context(org, member_factory):
    user = member_factory(org, Role.COMPLIANCE, username="cora")
    contact = ContactFactory(org=org)
    with audit_context(source=Source.CONSOLE, user=user, request_id="abc123"):
        entry = audit_record(verb="viewed", target=contact, fields=["email", "phone"])
    entry.refresh_from_db()
    assert (entry.org_id, entry.actor_user_id, entry.actor_label, entry.source) == (org.pk, user.pk, "cora", "console")
    assert (entry.verb, entry.target_type, entry.target_id) == ("viewed", "marketing.contact", str(contact.pk))
    assert entry.fields == ["email", "phone"]
    assert entry.request_id == "abc123"


def test_record_outside_any_context_is_a_command(org):
    entry = audit_record(org=org, verb="purged", target_type="marketing.event", count=3)
    assert entry.source == "command"
    assert entry.actor_user_id is None
    assert entry.count == 3


def test_record_refuses_a_value_where_a_field_name_goes(org):
    contact = ContactFactory(org=org, email="someone@example.com")
    with pytest.raises(ValueError, match=re.escape("fields: 'someone@example.com' is not a field name")):
        audit_record(verb="viewed", target=contact, fields=[contact.email])
    with pytest.raises(ValueError, match="verb"):
        audit_record(verb="Looked at it", target=contact)
    assert not AuditEntry.objects.exists()


@postgres_only
def test_the_database_refuses_update_and_delete_but_the_owner_may_delete(org):
    """As a role that is not the table's owner (what the app connects as), an UPDATE, a DELETE,
    a TRUNCATE and pgtrigger's own ignore switch are refused; the owner's DELETE goes through."""
    entry = audit_record(org=org, verb="viewed", target_type="marketing.contact", target_id=1)
    refused = []
    for statement in (
        "UPDATE marketing_auditentry SET verb = 'changed'",
        "DELETE FROM marketing_auditentry",
        "TRUNCATE marketing_auditentry",
        "SET LOCAL pgtrigger.ignore = '{pgtrigger_auditentry_append_only_57a9f}'; DELETE FROM marketing_auditentry",
    ):
        with pytest.raises(DatabaseError) as refusal, non_owner("marketing_auditentry") as cursor:
            cursor.execute(statement)
        refused.append(str(refusal.value).splitlines()[0])
    refusal = "marketing_auditentry is append-only: {} refused (only its owner deletes old rows)"
    assert refused[:2] == [refusal.format("UPDATE"), refusal.format("DELETE")]
    # The app's role has no TRUNCATE grant at all; a role granted it still meets the trigger.
    assert refused[2] in (refusal.format("TRUNCATE"), "permission denied for table marketing_auditentry")
    assert refused[3] == refusal.format("DELETE")
    entry.refresh_from_db()
    assert entry.verb == "viewed"
    if owns("marketing_auditentry"):  # run as the owner, as by default
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM marketing_auditentry WHERE id = %s", [entry.pk])
            assert cursor.rowcount == 1


def entries(**filters) -> list[tuple]:
    return list(
        AuditEntry.objects.filter(**filters)
        .order_by("id")
        .values_list("source", "actor_label", "verb", "target_type", "target_id", "fields", "count")
    )


def contact_form(contact, **changes) -> dict:
    return {
        "email": contact.email,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "country": contact.country,
        "lifecycle_stage": contact.lifecycle_stage,
        "lead_status": contact.lead_status,
        "properties": "{}",
        "listmembership_set-TOTAL_FORMS": "0",
        "listmembership_set-INITIAL_FORMS": "0",
        "anonymous_ids-TOTAL_FORMS": "0",
        "anonymous_ids-INITIAL_FORMS": "0",
        **changes,
    }


def test_console_reads_and_writes_of_a_contact_are_recorded_with_field_names(org, console):
    contact = ContactFactory(org=org, email="ada@example.com", first_name="Ada", last_name="Lovelace")
    page = reverse("admin:marketing_contact_change", args=[contact.pk])

    assert console.get(page).status_code == 200
    assert console.get(reverse("admin:marketing_contact_changelist")).status_code == 200
    saved = console.post(page, contact_form(contact, first_name="Augusta", phone="+4915112345678"))
    assert saved.status_code == 302

    viewed, listed, changed = entries(target_type="marketing.contact")
    assert viewed[:5] == ("console", "mara", "viewed", "marketing.contact", str(contact.pk))
    assert {"email", "phone", "first_name", "last_name", "company"} <= set(viewed[5])
    assert listed[:5] == ("console", "mara", "listed", "marketing.contact", "")
    assert listed[6] == 1 and "email" in listed[5]
    assert changed == (
        "console",
        "mara",
        "changed",
        "marketing.contact",
        str(contact.pk),
        ["phone", "first_name"],
        None,
    )


def test_console_add_and_delete_are_recorded(org, console):
    tag_add = console.post(reverse("admin:marketing_tag_add"), {"name": "vip"})
    assert tag_add.status_code == 302
    tag = Tag.objects.get(name="vip")
    deleted = console.post(reverse("admin:marketing_tag_delete", args=[tag.pk]), {"post": "yes"})
    assert deleted.status_code == 302
    assert entries(target_type="marketing.tag") == [
        ("console", "mara", "created", "marketing.tag", str(tag.pk), ["name"], None),
        ("console", "mara", "deleted", "marketing.tag", str(tag.pk), [], None),
    ]


def test_a_failed_form_records_nothing(org, console):
    contact = ContactFactory(org=org)
    page = reverse("admin:marketing_contact_change", args=[contact.pk])
    assert console.post(page, contact_form(contact, country="Germany")).status_code == 200
    assert entries(verb="changed") == []


def test_api_reads_and_writes_of_contacts_are_recorded(org, api):
    contact = ContactFactory(org=org)
    ContactFactory(org=org)
    assert api.get(f"/api/v1/contacts/{contact.pk}/").status_code == 200
    assert api.get("/api/v1/contacts/").status_code == 200
    assert api.get("/api/v1/contacts/999999/").status_code == 404  # nothing read, nothing recorded
    created = api.post(
        "/api/v1/contacts/", {"email": "new@example.com", "first_name": "Nia"}, content_type="application/json"
    )
    new_id = created.json()["id"]
    patched = api.patch(f"/api/v1/contacts/{new_id}/", {"last_name": "Okafor"}, content_type="application/json")
    assert patched.status_code == 200
    assert api.delete(f"/api/v1/contacts/{new_id}/").status_code == 204

    rows = entries(target_type="marketing.contact")
    assert [(source, verb, target_id, count) for source, _, verb, _, target_id, _, count in rows] == [
        ("api", "viewed", str(contact.pk), None),
        ("api", "listed", "", 2),
        ("api", "created", str(new_id), None),
        ("api", "changed", str(new_id), None),
        ("api", "deleted", str(new_id), None),
    ]
    assert all(label == "API key tests (" + label.split("(")[1] for _, label, *_ in rows)
    assert "email" in rows[0][5] and "phone" in rows[0][5]
    assert sorted(rows[2][5]) == ["email", "first_name"]
    assert rows[3][5] == ["last_name"]
    key = AuditEntry.objects.filter(verb="viewed").get().actor_api_key
    assert key is not None and key.name == "tests"


def test_csv_exports_are_recorded_with_their_columns(org, console):
    ContactFactory(org=org, country="DE")
    segment = segment_save(org=org, name="Germans", slug="germans", rule={"==": [{"var": "country"}, "DE"]})
    response = console.get(reverse("admin:marketing_segment_members_csv", args=[segment.pk]))
    assert response.status_code == 200
    assert entries(verb="exported") == [
        (
            "console",
            "mara",
            "exported",
            "marketing.segment",
            str(segment.pk),
            ["email", "first_name", "last_name", "company", "entered_at"],
            None,
        )
    ]


@postgres_only
def test_a_workflow_change_in_the_console_is_kept_with_who_made_it(org, console, marketer):
    from workflows.models import Workflow
    from workflows.services import workflow_create

    definition = {"trigger": {"type": "manual"}, "steps": [{"id": "stop", "type": "stop"}]}
    workflow = workflow_create(org=org, name="Welcome", slug="welcome", definition=definition)
    patched = console.patch(
        f"/api/v1/workflows/{workflow.pk}/", {"description": "Shorter"}, content_type="application/json"
    )
    assert patched.status_code == 200, patched.content

    history = Workflow.pgh_event_model.objects.filter(pgh_obj_id=workflow.pk).order_by("pgh_id")
    assert [(event.pgh_label, event.description) for event in history] == [("insert", ""), ("update", "Shorter")]
    update = history.last()
    assert update.pgh_context.metadata["user"] == marketer.pk
    assert update.pgh_context.metadata["source"] == "console"
    assert update.pgh_context.metadata["actor"] == "mara"
    assert not hasattr(update, "webhook_secret")  # a credential is never copied into the history


@postgres_only
def test_the_history_is_append_only_too(org):
    from workflows.models import Workflow
    from workflows.services import workflow_create

    definition = {"trigger": {"type": "manual"}, "steps": [{"id": "stop", "type": "stop"}]}
    workflow_create(org=org, name="Welcome", slug="welcome", definition=definition)
    event_table = Workflow.pgh_event_model._meta.db_table
    for statement in (f"UPDATE {event_table} SET name = 'x'", f"DELETE FROM {event_table}"):  # noqa: S608
        with pytest.raises(DatabaseError, match="append-only"), non_owner(event_table) as cursor:
            cursor.execute(statement)


def test_no_personal_value_reaches_the_audit_log_or_the_history(org, console, api, member_factory):
    """A contact's email, names and phone go through the console and the API; the audit log and
    every history table are then searched for them, as text."""
    from django.apps import apps

    contact = ContactFactory(
        org=org, email="zelda.quux@example.org", first_name="Zelda", last_name="Quuxington", phone="+4915112349876"
    )
    segment = segment_save(org=org, name="All", slug="all", rule={"==": [{"var": "country"}, "DE"]})
    page = reverse("admin:marketing_contact_change", args=[contact.pk])
    console.get(page)
    console.get(reverse("admin:marketing_contact_changelist"), {"q": "zelda"})
    console.post(page, contact_form(contact, first_name="Zeldina", phone="+4915112340000"))
    console.get(reverse("admin:marketing_segment_members_csv", args=[segment.pk]))
    api.get(f"/api/v1/contacts/{contact.pk}/")
    api.patch(f"/api/v1/contacts/{contact.pk}/", {"last_name": "Quuxley"}, content_type="application/json")
    api.post(
        "/api/v1/contacts/", {"email": "yara.zed@example.org", "first_name": "Yara"}, content_type="application/json"
    )
    assert AuditEntry.objects.count() >= 7

    secrets = ["zelda", "quux", "zeldina", "4915112349876", "4915112340000", "yara", "example.org"]
    history_models = [model for model in apps.get_models() if hasattr(model, "pgh_label")]
    assert history_models, "no pghistory event model found"
    found = []
    for model in [AuditEntry, *history_models]:
        manager = getattr(model.objects, "with_scopes_disabled", None)
        rows = (manager() if manager else model.objects).all()
        for row in rows.values():
            text = repr(row).lower()
            found += [(model.__name__, secret) for secret in secrets if secret in text]
    from pghistory.models import Context

    for metadata in Context.objects.values_list("metadata", flat=True):
        text = repr(metadata).lower()
        found += [("pghistory context", secret) for secret in secrets if secret in text]
    assert found == []


def old_entries(org, other_org, *, days: int, count: int = 2) -> None:
    """Entries written ``days`` ago (an INSERT may set any time; nothing may change one later)."""
    from datetime import timedelta

    from django.utils import timezone

    at = timezone.now() - timedelta(days=days)
    for target_org in (org, other_org) if other_org else (org,):
        with org_context(target_org):
            for n in range(count):
                AuditEntry(
                    org=target_org, at=at, source="api", verb="viewed", target_type="marketing.contact", target_id=n
                ).save()


@pytest.mark.django_db(transaction=True)
def test_audit_purge_deletes_old_entries_of_every_org_and_says_so(org, other_org, owner_database_url):
    """Run as production runs it: ``manage.py audit_purge`` with the owner's ``DATABASE_URL``."""
    old_entries(org, other_org, days=400)
    recent = audit_record(org=org, verb="viewed", target_type="marketing.contact", target_id=9)

    def purge(*args):
        done = subprocess.run(  # noqa: S603  our own manage.py, arguments built here
            [sys.executable, "manage.py", "audit_purge", "--older-than", "365", *args],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": owner_database_url},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert purge("--dry-run") == "audit_purge would delete 4 entries older than 365 days in 2 organisation(s)."
    assert AuditEntry.objects.with_scopes_disabled().using(system_alias()).count() == 5
    assert purge() == "audit_purge deleted 4 entries older than 365 days in 2 organisation(s)."
    left = AuditEntry.objects.with_scopes_disabled().using(system_alias()).order_by("id")
    assert [(e.org_id, e.verb, e.count, e.source, e.actor_label) for e in left] == [
        (org.pk, "viewed", None, "command", recent.actor_label),
        *sorted(
            [
                (org.pk, "purged", 2, "command", "manage.py audit_purge"),
                (other_org.pk, "purged", 2, "command", "manage.py audit_purge"),
            ]
        ),
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "--older-than: 'abc' is not a whole number of days."),
        ("0", "--older-than: 0 days; it must be at least 1."),
    ],
)
def test_audit_purge_names_a_bad_age(org, value, message):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError) as refusal:
        call_command("audit_purge", "--older-than", value)
    assert str(refusal.value) == message


@postgres_only
def test_audit_purge_as_the_app_role_is_refused_in_one_line(org, other_org):
    from django.core.management import CommandError, call_command

    old_entries(org, None, days=400, count=2)
    with pytest.raises(CommandError) as refusal, non_owner("marketing_auditentry", "marketing_organization"):
        call_command("audit_purge", "--older-than", "30")
    assert str(refusal.value) == (
        "the database refused: only the owner of marketing_auditentry may delete audit entries; "
        "run audit_purge with the owner's DATABASE_URL."
    )
    assert AuditEntry.objects.with_scopes_disabled().count() == 2


def test_a_segments_members_read_through_the_api_is_recorded(org, api):
    ContactFactory.create_batch(3, org=org, country="DE")
    segment = segment_save(org=org, name="Germans", slug="germans", rule={"==": [{"var": "country"}, "DE"]})
    assert len(api.get(f"/api/v1/segments/{segment.pk}/contacts/").json()["results"]) == 3
    (entry,) = entries(verb="listed")
    assert entry[:5] == ("api", entry[1], "listed", "marketing.segment", str(segment.pk))
    assert entry[6] == 3 and "email" in entry[5]


def test_organisation_settings_changed_in_the_console_are_recorded(org, member_factory):
    from django.test import Client

    from tests.marketing.test_organization_form import settings_data

    client = Client()
    client.force_login(member_factory(org, Role.ADMIN, username="ada"))
    data = settings_data(org, quiet_hours_start="21:30", quiet_hours_end="07:45")
    response = client.post(reverse("admin:marketing_organization_change", args=[org.pk]), data)
    assert response.status_code == 302
    (entry,) = entries(verb="changed")
    assert entry[:5] == ("console", "ada", "changed", "marketing.organization", str(org.pk))
    assert {"quiet_hours_start", "quiet_hours_end"} <= set(entry[5])


def test_a_request_id_is_sent_back_and_kept_on_the_entries(org, api):
    contact = ContactFactory(org=org)
    mine = api.get(f"/api/v1/contacts/{contact.pk}/", headers={"X-Request-ID": "trace-42"})
    assert mine["X-Request-ID"] == "trace-42"
    made_up = api.get(f"/api/v1/contacts/{contact.pk}/", headers={"X-Request-ID": "not a token; DROP"})
    assert len(made_up["X-Request-ID"]) == 32 and made_up["X-Request-ID"] != "not a token; DROP"
    assert list(AuditEntry.objects.order_by("id").values_list("request_id", flat=True)) == [
        "trace-42",
        made_up["X-Request-ID"],
    ]


def test_a_task_acts_as_itself_and_one_run_inside_a_request_as_the_requests_actor(org, eager_tasks):
    from celery import shared_task

    @shared_task(name="tests.audit_probe")
    def audit_probe(org_id: int) -> int:
        from marketing.models import Organization

        return audit_record(org=Organization.objects.get(pk=org_id), verb="purged", target_type="marketing.event").pk

    by_task = AuditEntry.objects.get(pk=audit_probe.delay(org.pk).get())
    assert (by_task.source, by_task.actor_label) == ("task", "tests.audit_probe")
    with audit_context(source=Source.API, label="API key crm (abc12345)"):
        in_request = AuditEntry.objects.get(pk=audit_probe.delay(org.pk).get())
    assert (in_request.source, in_request.actor_label) == ("api", "API key crm (abc12345)")
    after = audit_record(org=org, verb="purged", target_type="marketing.event")
    assert after.source == "command"  # the task's context ended with it
