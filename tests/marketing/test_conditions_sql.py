"""``to_q`` agrees with ``evaluate``: for generated rules and generated contacts, the contacts the
SQL selects are exactly those for which the Python side is truthy (hypothesis, on PostgreSQL)."""

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketing.conditions import NotCompilable, contact_facts, evaluate, to_q, truthy
from marketing.models import Company, Contact, ContactList, Event, PropertyDefinition, Tag

NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
MOMENTS = [NOW - timedelta(days=d, seconds=s) for d in (0, 1, 3, 30, 31, 90) for s in (0, 1)]
ISO = [m.strftime("%Y-%m-%dT%H:%M:%SZ") for m in MOMENTS]

STRING_FIELDS = ["country", "first_name", "lifecycle_stage", "email", "company.industry", "properties.plan"]
NUMBER_FIELDS = ["score", "company.size", "company.revenue", "properties.seats"]
DATETIME_FIELDS = ["created_at", "last_activity_at", "properties.signup"]
STRINGS = [
    "",
    "DE",
    "FR",
    "ana",
    "Ana",
    "B",
    "pro",
    "free",
    "software",
    "lead",
    "customer",
    "ana@example.com",
    "0",
    "5",
    "-1",
    "1e3",
    " 5",
]
NUMBERS = [-1, 0, 1, 2.5, 3, 50, 100, 1000]
ORDER_OPS = ["<", "<=", ">", ">="]
EQUALITY_OPS = ["==", "!=", "===", "!=="]

pytestmark = pytest.mark.postgres


def var(path):
    return {"var": path}


def compared(field_paths, literals, ops, *, null_ops=EQUALITY_OPS):
    """A comparison of a field with a literal, written field-first or literal-first."""
    plain = st.tuples(st.sampled_from(ops), st.sampled_from(field_paths), st.sampled_from(literals))
    with_null = st.tuples(st.sampled_from(null_ops), st.sampled_from(field_paths), st.just(None))
    return st.tuples(st.one_of(plain, with_null), st.booleans()).map(
        lambda t: {t[0][0]: [t[0][2], var(t[0][1])]} if t[1] else {t[0][0]: [var(t[0][1]), t[0][2]]}
    )


leaves = st.one_of(
    compared(STRING_FIELDS, STRINGS, EQUALITY_OPS + ORDER_OPS),
    compared(NUMBER_FIELDS, NUMBERS, EQUALITY_OPS + ORDER_OPS, null_ops=EQUALITY_OPS + ORDER_OPS),
    compared(DATETIME_FIELDS, ISO, EQUALITY_OPS + ORDER_OPS),
    compared(["properties.vip"], [True, False], ["==", "!=", "===", "!=="]),
    st.sampled_from(STRING_FIELDS + NUMBER_FIELDS + DATETIME_FIELDS + ["properties.vip"]).map(var),
    st.tuples(
        st.sampled_from(["country", "first_name", "properties.plan", "company.industry"]),
        st.lists(st.sampled_from(["DE", "FR", "", "pro", "software", None]), max_size=3),
    ).map(lambda t: {"in": [var(t[0]), t[1]]}),
    st.tuples(
        st.sampled_from(["score", "company.size", "properties.seats"]),
        st.lists(st.sampled_from([0, 3, 100, 2.5, None]), max_size=3),
    ).map(lambda t: {"in": [var(t[0]), t[1]]}),
    st.tuples(
        st.sampled_from(["a", "n", "@example", "ware"]), st.sampled_from(["first_name", "email", "company.industry"])
    ).map(lambda t: {"in": [t[0], var(t[1])]}),
    st.sampled_from(["vip", "beta"]).map(lambda name: {"in": [name, var("tags")]}),
    st.sampled_from(["vip", "beta"]).map(lambda name: {"has_tag": name}),
    st.just({"in_list": "newsletter"}),
    st.tuples(
        st.sampled_from([*ORDER_OPS, "==", "!="]),
        st.sampled_from(["page_view", "email_opened"]),
        st.sampled_from([None, {"==": [var("properties.path"), "/pricing"]}]),
        st.sampled_from([None, 7, 30]),
        st.sampled_from([0, 1, 2, 2.5]),
    ).map(lambda t: {t[0]: [{"event_count": [t[1], t[2], t[3]]}, t[4]]}),
    st.tuples(
        st.sampled_from([*ORDER_OPS, "==", "!="]),
        st.sampled_from(["created_at", "last_activity_at"]),
        st.sampled_from([-1, 0, 1, 3, 30, 30.5]),
    ).map(lambda t: {t[0]: [{"days_since": t[1]}, t[2]]}),
)
rules = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=3).map(lambda xs: {"and": xs}),
        st.lists(children, min_size=1, max_size=3).map(lambda xs: {"or": xs}),
        children.map(lambda x: {"!": [x]}),
        children.map(lambda x: {"!!": [x]}),
    ),
    max_leaves=6,
)

contacts = st.fixed_dictionaries(
    {
        "email": st.sampled_from([None, "ana@example.com", "ben@shop.io"]),
        "first_name": st.sampled_from(["", "Ana", "ana", "B", "Zoe"]),
        "country": st.sampled_from(["", "DE", "FR"]),
        "lifecycle_stage": st.sampled_from(["lead", "customer", "subscriber"]),
        "score": st.sampled_from([-5, 0, 1, 3, 100, 1000]),
        "created_at": st.sampled_from(MOMENTS),
        "last_activity_at": st.sampled_from([None, *MOMENTS]),
        "company": st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {
                    "industry": st.sampled_from(["", "software", "retail"]),
                    "size": st.sampled_from([None, 0, 3, 100]),
                    "revenue": st.sampled_from([None, 0, 50, 1000]),
                }
            ),
        ),
        "properties": st.fixed_dictionaries(
            {},
            optional={
                "plan": st.sampled_from(["pro", "free", ""]),
                "seats": st.sampled_from([0, 1, 2.5, 100]),
                "vip": st.booleans(),
                "signup": st.sampled_from([*ISO, "2026-11-01", "2026-11-29T12:00:00.500000Z"]),
            },
        ),
        "tags": st.sets(st.sampled_from(["vip", "beta"])),
        "newsletter": st.booleans(),
        "events": st.lists(
            st.tuples(
                st.sampled_from(["page_view", "email_opened"]),
                st.sampled_from([0, 1, 6, 8, 29, 40]),
                st.sampled_from(["/", "/pricing"]),
            ),
            max_size=4,
        ),
    }
)


@pytest.fixture
def vocabulary(org):
    for key, kind in (("plan", "enum"), ("seats", "number"), ("vip", "boolean"), ("signup", "datetime")):
        PropertyDefinition.objects.create(
            org=org, subject="contact", key=key, type=kind, options=["pro", "free", ""] if kind == "enum" else []
        )
    PropertyDefinition.objects.create(org=org, subject="event", key="path", type="string")
    return {name: Tag.objects.create(org=org, name=name) for name in ("vip", "beta")}, ContactList.objects.create(
        org=org, slug="newsletter", name="Newsletter"
    )


def make_contact(org, tags, newsletter, spec, index) -> Contact:
    company = None
    if spec["company"] is not None:
        company = Company.objects.create(
            org=org,
            name=f"Co {index}",
            industry=spec["company"]["industry"],
            size=spec["company"]["size"],
            revenue=None if spec["company"]["revenue"] is None else Decimal(spec["company"]["revenue"]),
        )
    email = spec["email"] and f"{index}.{spec['email']}"
    contact = Contact.objects.create(
        org=org,
        email=email,
        first_name=spec["first_name"],
        country=spec["country"],
        lifecycle_stage=spec["lifecycle_stage"],
        score=spec["score"],
        created_at=spec["created_at"],
        last_activity_at=spec["last_activity_at"],
        company=company,
        properties=spec["properties"],
    )
    contact.tags.set([tags[name] for name in spec["tags"]])
    if spec["newsletter"]:
        newsletter.contacts.add(contact)
    Event.objects.bulk_create(
        [
            Event(
                org=org,
                contact=contact,
                type=kind,
                occurred_at=NOW - timedelta(days=days, hours=1),
                properties={"path": path},
                message_id=f"{index}-{n}",
            )
            for n, (kind, days, path) in enumerate(spec["events"])
        ]
    )
    return contact


@settings(
    max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", 500)),  # 500 in CI; lower it to iterate
    derandomize=os.environ.get("CI") == "true",  # CI runs a fixed 500; local runs explore new ones
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rule=rules, specs=st.lists(contacts, min_size=1, max_size=6))
def test_sql_and_python_select_the_same_contacts(org, vocabulary, rule, specs):
    if connection.vendor != "postgresql":
        pytest.skip("the agreement is specified on PostgreSQL (code-point string order, JSON types)")
    tags, newsletter = vocabulary
    with transaction.atomic():
        made = [make_contact(org, tags, newsletter, spec, i) for i, spec in enumerate(specs)]
        try:
            q = to_q(rule, "contact", org=org, now=NOW)
        except NotCompilable as exc:
            pytest.fail(f"the generator only makes compilable rules, yet: {exc} in {rule}")
        in_sql = set(
            Contact.objects.filter(org=org, pk__in=[c.pk for c in made]).filter(q).values_list("pk", flat=True)
        )
        in_python = set()
        for contact in (
            Contact.objects.filter(pk__in=[c.pk for c in made])
            .select_related("company")
            .prefetch_related("tags", "lists")
        ):
            if truthy(evaluate(rule, contact_facts(contact), contact=contact, now=NOW)):
                in_python.add(contact.pk)
        assert in_sql == in_python, (rule, [contact_facts(c) for c in made])
        transaction.set_rollback(True)
