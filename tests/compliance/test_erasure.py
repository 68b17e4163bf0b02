"""Erasure of one contact: nothing of the person is left in any table, file or cache key, only
keyed hashes that refuse the person's data from then on; everyone else's data stays."""

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from channels_app.models import Message, PushSubscription, Suppression
from compliance.erasure import contact_erase
from compliance.models import ConsentRecord, DataSubjectRequest
from marketing import erased_identities
from marketing.models import AuditEntry, Contact, ErasedIdentity, Event, ImportRowError
from scoring.models import ContactScore, Handoff, ScoreLedger
from tests.compliance.personal_data_everywhere import EMAIL, OTHER_EMAIL, PHONE, TRACES, person_with_data_everywhere
from tests.factories import ContactFactory
from workflows.models import AutomationExecution, Delivery, WorkflowInstance, WorkflowStepRun

TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb")


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def _text_columns(cursor) -> list[tuple[str, str]]:
    """Every text-like (table, column) of the database: PostgreSQL's public schema, or SQLite's tables."""
    if connection.vendor == "postgresql":
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type = ANY(%s) ORDER BY table_name, column_name",
            [list(TEXT_TYPES)],
        )
        return cursor.fetchall()
    cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    columns = []
    for (table,) in cursor.fetchall():
        cursor.execute(f'PRAGMA table_info("{table}")')
        columns += [
            (table, row[1]) for row in cursor.fetchall() if any(t in row[2].lower() for t in ("char", "text", "json"))
        ]
    return columns


def database_traces(needles) -> list[str]:
    """Every (table.column, needle) of the database whose text holds a needle, any case."""
    cast = "::text ILIKE" if connection.vendor == "postgresql" else " LIKE"  # SQLite's LIKE ignores ASCII case
    found = []
    with connection.cursor() as cursor:
        for table, column in _text_columns(cursor):
            for needle in needles:
                cursor.execute(
                    f'SELECT count(*) FROM "{table}" WHERE "{column}"{cast} %s',  # noqa: S608  names from the catalog
                    [f"%{needle}%"],
                )
                if cursor.fetchone()[0]:
                    found.append(f"{table}.{column} holds {needle!r}")
    return found


def media_traces(needles) -> list[str]:
    found = []
    for root, _, files in os.walk(settings.MEDIA_ROOT):
        for name in files:
            text = Path(root, name).read_bytes().decode("utf-8", "replace").lower()
            found += [f"{name} holds {needle!r}" for needle in needles if needle.lower() in text]
    return found


def redis_traces(needles) -> list[str]:
    """Every key of the configured Redis database whose name or (string) value holds a needle."""
    if not settings.REDIS_URL:
        return []
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    found = []
    for key in client.scan_iter(count=1000):
        text = key.decode("utf-8", "replace")
        if client.type(key) == b"string":
            text += (client.get(key) or b"").decode("utf-8", "replace")
        found += [f"redis {key!r} holds {needle!r}" for needle in needles if needle.lower() in text.lower()]
    return found


def test_scan_finds_the_person_before_the_erasure(org, tmp_path):
    """The scans can fail: before the erasure they find the person in the tables and the file."""
    person_with_data_everywhere(org, tmp_path)
    found = database_traces(TRACES)
    for place in ("marketing_contact.email", "marketing_event.properties", "channels_app_message.content"):
        assert any(line.startswith(place) for line in found), (place, found)
    assert media_traces(TRACES)
    if settings.REDIS_URL:
        cache.set("probe", f"{TRACES[0]}", timeout=60)
        assert redis_traces(TRACES)
        cache.delete("probe")


def test_erasure_leaves_no_trace_of_the_person_and_keeps_everyone_else(
    org, tmp_path, django_capture_on_commit_callbacks
):
    people = person_with_data_everywhere(org, tmp_path)
    person, other = people.person, people.other
    cache.set(f"handoff-overdue-{Handoff.objects.get(contact=person).pk}", 1)
    other_handoff_key = f"handoff-overdue-{Handoff.objects.get(contact=other).pk}"
    cache.set(other_handoff_key, 1)
    before = {
        "events": Event.objects.filter(contact=other).count(),
        "messages": Message.objects.filter(contact=other).count(),
        "instances": WorkflowInstance.objects.filter(contact=other).count(),
        "step_runs": WorkflowStepRun.objects.filter(instance__contact=other).count(),
    }

    with django_capture_on_commit_callbacks(execute=True):
        erasure = contact_erase(contact=person, reason="ticket 42")

    assert database_traces(TRACES) == []
    assert media_traces(TRACES) == []
    assert redis_traces(TRACES) == []
    assert cache.get(f"handoff-overdue-{erasure.contact_id}") is None
    assert not Contact.objects.filter(pk=erasure.contact_id).exists()

    # Consent and the request stay as records, anonymised, with a keyed digest of the email.
    kept_consent = ConsentRecord.objects.get(subject_digest__gt="")
    assert (kept_consent.contact_id, kept_consent.subject_email, kept_consent.proof) == (None, "", {})
    assert (kept_consent.purpose, kept_consent.granted, kept_consent.source) == ("email_marketing", True, "form")
    assert kept_consent.subject_digest == erased_identities.digest("email", EMAIL)
    request = DataSubjectRequest.objects.get(subject_digest__gt="")
    assert (request.email, request.details, request.contact_id, request.archive_path) == ("", "", None, "")
    assert request.outcome == "Archive sent to (erased)."
    assert DataSubjectRequest.objects.get(contact=other).archive_path  # the bystander's archive stays
    # A sent message stays for the figures, with nothing of the person.
    assert Message.objects.filter(contact=None, to="", status="sent", content={}).exists()
    assert AutomationExecution.objects.filter(contact=None, error="").count() == 1

    # Keyed hashes: erased identities and suppressions, never the plain or unkeyed-hashed address.
    assert set(ErasedIdentity.objects.values_list("kind", flat=True)) == {"email", "phone", "user_id"}
    assert erased_identities.is_erased(org=org, kind="user_id", value="ext-zq-778")
    assert erased_identities.is_erased(org=org, kind="email", value=EMAIL.upper())
    assert erased_identities.is_erased(org=org, kind="phone", value="0151 98765432")
    assert not Suppression.objects.filter(reason="sms_stop").exists()  # the phone's blind-index row went too
    suppressed = dict(Suppression.objects.filter(reason="erased").values_list("channel", "address"))
    assert suppressed == {
        "email": erased_identities.digest("email", EMAIL),
        "sms": erased_identities.digest("phone", PHONE),
    }

    # The import file keeps the other rows and their errors, in their places.
    text = Path(settings.MEDIA_ROOT, people.job.file.name).read_text()
    assert OTHER_EMAIL in text and "x@example.com" in text
    assert text.splitlines()[2] == ",,,"
    assert list(ImportRowError.objects.filter(job=people.job).values_list("row", flat=True)) == [3]
    admin_entry = LogEntry.objects.get(object_id=str(erasure.contact_id))
    audit = AuditEntry.objects.get(verb="erased", target_id=str(erasure.contact_id))
    assert audit.target_type == "marketing.contact" and "events" in audit.fields
    assert admin_entry.object_repr == f"contact #{erasure.contact_id} (erased)"

    # Everyone else is whole.
    other.refresh_from_db()
    assert other.email == OTHER_EMAIL and other.first_name == "Bea"
    assert before == {
        "events": Event.objects.filter(contact=other).count(),
        "messages": Message.objects.filter(contact=other).count(),
        "instances": WorkflowInstance.objects.filter(contact=other).count(),
        "step_runs": WorkflowStepRun.objects.filter(instance__contact=other).count(),
    }
    for model in (PushSubscription, ContactScore, ScoreLedger, Handoff, Delivery, AutomationExecution):
        field = "instance__contact" if model is Delivery else "contact"
        assert model.objects.filter(**{field: other}).count() == 1, model
    assert ConsentRecord.objects.get(contact=other).proof
    assert Suppression.objects.filter(address=OTHER_EMAIL).exists()
    assert LogEntry.objects.get(object_id=str(other.pk)).object_repr == str(other)
    assert cache.get(other_handoff_key) == 1


def test_dsar_erase_needs_yes_and_names_what_is_wrong(org, tmp_path):
    people = person_with_data_everywhere(org, tmp_path)
    with pytest.raises(CommandError, match="add --yes"):
        call_command("dsar_erase", "--org", org.slug, "--email", EMAIL)
    assert Contact.objects.filter(pk=people.person.pk).exists()
    with pytest.raises(CommandError, match="No organisation with slug 'nope'"):
        call_command("dsar_erase", "--org", "nope", "--email", EMAIL, "--yes")
    with pytest.raises(CommandError, match=r"No contact with the email .nobody@example\.com."):
        call_command("dsar_erase", "--org", org.slug, "--email", "nobody@example.com", "--yes")


def test_dsar_erase_erases(org, tmp_path, capsys):
    people = person_with_data_everywhere(org, tmp_path)
    call_command("dsar_erase", "--org", org.slug, "--email", EMAIL.upper(), "--yes")
    assert not Contact.objects.filter(pk=people.person.pk).exists()
    assert f"Erased contact #{people.person.pk}" in capsys.readouterr().out
    assert erased_identities.is_erased(org=org, kind="email", value=EMAIL)


def test_erased_identity_is_per_org(org, other_org, tmp_path):
    people = person_with_data_everywhere(org, tmp_path)
    contact_erase(contact=people.person)
    assert erased_identities.is_erased(org=org, kind="email", value=EMAIL)
    assert not erased_identities.is_erased(org=other_org, kind="email", value=EMAIL)


def test_an_anonymous_contact_is_erased_without_identities(org):
    visitor = ContactFactory(org=org, email=None, first_name="", last_name="")
    Event.objects.create(org=org, contact=visitor, type="page_view", occurred_at=visitor.created_at, message_id="v-1")
    erasure = contact_erase(contact=visitor)
    assert erasure.identities == [] and "events" in erasure.sources
    assert not Contact.objects.filter(pk=visitor.pk).exists() and not Event.objects.exists()
    assert not ErasedIdentity.objects.exists() and not Suppression.objects.exists()
