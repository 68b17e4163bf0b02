"""Row-level security as the backstop (docs/tenancy.md, "Row-level security").

Walks PostgreSQL's catalogue for every relation of ours with an ``org_id`` column (tables,
partitioned tables, partitions, views) and checks, as a role that is neither superuser nor owner
nor BYPASSRLS, that a raw query with another org's ``app.org_id``, or with none, sees no row of
the first org. The role is created inside the test's transaction, so nothing outlives the test.
"""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import ProgrammingError, connection, connections

from marketing.database_roles import system_alias
from marketing.models import Contact, ListMembership, Organization
from marketing.tenancy import no_org, org_context
from tests.database_roles import become_unprivileged
from tests.factories import ContactFactory, ContactListFactory, OrganizationFactory, TagFactory

pytestmark = [pytest.mark.django_db]

RELATIONS = """
SELECT c.relname, c.relkind, c.relrowsecurity,
       EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid) AS has_policy,
       COALESCE('security_invoker=true' = ANY (c.reloptions), false) AS security_invoker
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema()
  AND c.relkind IN ('r', 'p', 'v', 'm')
  AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'org_id' AND NOT a.attisdropped)
ORDER BY c.relname
"""


@pytest.fixture(autouse=True)
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("row-level security is PostgreSQL's")


def _relations():
    with connection.cursor() as cursor:
        cursor.execute(RELATIONS)
        return cursor.fetchall()


def test_every_relation_with_an_org_has_a_policy_or_is_a_security_invoker_view():
    relations = _relations()
    assert len(relations) >= 40  # the walk finds our tenant tables, not an empty schema
    unguarded = []
    for name, kind, row_security, has_policy, security_invoker in relations:
        if kind == "m":
            unguarded.append(f"{name}: a materialized view over tenant data")
        elif kind == "v" and not security_invoker:
            unguarded.append(f"{name}: a view without security_invoker")
        elif kind in ("r", "p") and not (row_security and has_policy):
            unguarded.append(f"{name}: no row-level security policy")
    assert unguarded == []


def test_tables_that_had_no_org_take_it_from_their_parent_and_refuse_another_orgs_parent():
    org, other = OrganizationFactory(), OrganizationFactory()
    with org_context(org):
        contact = ContactFactory(org=org)
        tag = TagFactory(org=org)
        contact.tags.add(tag)
        ListMembership.objects.create(contact=contact, contact_list=ContactListFactory(org=org))
    with connections[system_alias()].cursor() as cursor:
        for table in ("marketing_contact_tags", "marketing_listmembership"):
            cursor.execute(f"SELECT org_id FROM {table} WHERE contact_id = %s", [contact.pk])  # noqa: S608
            assert cursor.fetchall() == [(org.pk,)]
    become_unprivileged()
    with org_context(other), pytest.raises(ProgrammingError, match="row-level security"), connection.cursor() as cursor:
        # Linking org's contact from other's context: the trigger cannot see the contact, the
        # row gets no org, and the policy refuses it.
        cursor.execute("INSERT INTO marketing_contact_tags (contact_id, tag_id) VALUES (%s, %s)", [contact.pk, tag.pk])


def _counts(cursor, relation: str, org_id: int) -> tuple[int, int]:
    cursor.execute(f'SELECT count(*) FILTER (WHERE org_id = %s), count(*) FROM "{relation}"', [org_id])  # noqa: S608
    return cursor.fetchone()


def test_a_raw_query_with_another_orgs_setting_or_none_sees_no_row_of_the_org():
    call_command("seed_demo", contacts=30, companies=5, force=True, stdout=StringIO())
    acme = Organization.objects.get(slug="acme")
    other = OrganizationFactory(slug="other")
    with org_context(other):
        contact = ContactFactory(org=other)
        contact.tags.add(TagFactory(org=other))
        ListMembership.objects.create(contact=contact, contact_list=ContactListFactory(org=other))
    with org_context(acme):
        assert Contact.objects.exists()

    relations = [name for name, *_ in _relations()]
    with connections[system_alias()].cursor() as cursor:  # a role that sees every row
        as_owner = {name: (_counts(cursor, name, acme.pk), _counts(cursor, name, other.pk)) for name in relations}
    populated = [name for name, ((acme_rows, _), _) in as_owner.items() if acme_rows]
    # Most relations hold some of the demo org's rows, so the zeros below mean something.
    assert len(populated) >= len(relations) // 2, sorted(set(relations) - set(populated))

    become_unprivileged()
    wrong = []
    with connection.cursor() as cursor:
        for name in relations:
            (acme_rows, _), (other_rows, _) = as_owner[name]
            with org_context(other):
                seen = {"other org": _counts(cursor, name, acme.pk)}
            with org_context(acme):
                seen["own org"] = _counts(cursor, name, acme.pk)
            with no_org():  # a connection that had an org: the setting is '' now
                seen["empty setting"] = _counts(cursor, name, acme.pk)
            cursor.execute("RESET app.org_id")  # no setting at all: NULL
            seen["no setting"] = _counts(cursor, name, acme.pk)
            expected = {
                "other org": (0, other_rows),
                # The same role sees the org's own rows: the zeros are not a permission failure.
                "own org": (acme_rows, acme_rows),
                "empty setting": (0, 0),
                "no setting": (0, 0),
            }
            wrong += [
                f"{name} with {case}: {seen[case]} rows, not {expected[case]}"
                for case in expected
                if seen[case] != expected[case]
            ]
    assert wrong == []


def test_org_context_writes_the_setting_and_restores_the_previous_one():
    org, other = OrganizationFactory(), OrganizationFactory()

    def setting():
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('app.org_id', true)")
            return cursor.fetchone()[0]

    with no_org():
        assert setting() == ""
        with org_context(org):
            assert setting() == str(org.pk)
            with org_context(other):
                assert setting() == str(other.pk)
            assert setting() == str(org.pk)
        assert setting() == ""
