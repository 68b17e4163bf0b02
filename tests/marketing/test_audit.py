"""The audit log: entries name who did what to which row and which fields, never a value; the
database refuses to change or remove them (but lets the table's owner purge old ones)."""

import os

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError

from marketing.audit import Source, audit_context, audit_record
from marketing.models import AuditEntry, Role
from tests.factories import ContactFactory

postgres_only = pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="the append-only trigger exists on PostgreSQL only"
)


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
    with pytest.raises(ValueError, match="fields: 'someone@example.com' is not a field name"):
        audit_record(verb="viewed", target=contact, fields=[contact.email])
    with pytest.raises(ValueError, match="verb"):
        audit_record(verb="Looked at it", target=contact)
    assert not AuditEntry.objects.exists()


@postgres_only
def test_the_database_refuses_update_and_delete_but_the_owner_may_delete(org):
    """As a role that is not the table's owner (what the app connects as), an UPDATE, a DELETE,
    a TRUNCATE and pgtrigger's own ignore switch are refused; the owner's DELETE goes through."""
    entry = audit_record(org=org, verb="viewed", target_type="marketing.contact", target_id=1)
    # Roles are the cluster's, but CREATE ROLE is transactional: the test's rollback removes it.
    role = f"audit_probe_{os.getpid()}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {role}")
        cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON marketing_auditentry TO {role}")
    refused = []
    for statement in (
        "UPDATE marketing_auditentry SET verb = 'changed'",
        "DELETE FROM marketing_auditentry",
        "TRUNCATE marketing_auditentry",
        "SET LOCAL pgtrigger.ignore = '{pgtrigger_auditentry_append_only_57a9f}'; DELETE FROM marketing_auditentry",
    ):
        with pytest.raises(DatabaseError) as refusal, transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL ROLE {role}")
            cursor.execute(statement)
        refused.append(str(refusal.value).splitlines()[0])
    assert refused == [
        "marketing_auditentry is append-only: UPDATE refused (only its owner deletes old rows)",
        "marketing_auditentry is append-only: DELETE refused (only its owner deletes old rows)",
        "marketing_auditentry is append-only: TRUNCATE refused (only its owner deletes old rows)",
        "marketing_auditentry is append-only: DELETE refused (only its owner deletes old rows)",
    ]
    entry.refresh_from_db()
    assert entry.verb == "viewed"
    with connection.cursor() as cursor:  # the test connects as the owner
        cursor.execute("DELETE FROM marketing_auditentry WHERE id = %s", [entry.pk])
        assert cursor.rowcount == 1
