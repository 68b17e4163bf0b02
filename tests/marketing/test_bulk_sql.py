"""Batch SQL helpers: values of any content survive the one-parameter forms."""

from django.utils import timezone

from marketing.bulk_sql import insert_returning
from marketing.models import Contact

AWKWARD = ['a"b', "back\\slash", "com,ma", "{brace}", "NULL", " spaced ", "ünï", "new\nline", "", "'quote'"]


def test_any_of_finds_awkward_values_in_long_and_short_lists(org):
    ids = [f"x{i}" for i in range(150)] + AWKWARD
    insert_returning(
        Contact, columns={"external_id": ids}, fixed={"org": org.pk, "created_at": timezone.now()}, returning=["id"]
    )

    long_list = set(Contact.objects.filter(external_id__any_of=ids).values_list("external_id", flat=True))
    short_list = set(Contact.objects.filter(external_id__any_of=AWKWARD).values_list("external_id", flat=True))

    assert long_list == set(ids)
    assert short_list == set(AWKWARD)
    assert not Contact.objects.filter(external_id__any_of=[]).exists()


def test_insert_returning_skips_conflicts_and_fills_defaults(org):
    first = insert_returning(
        Contact,
        columns={"email": ["a@example.com", "b@example.com"]},
        fixed={"org": org.pk, "created_at": timezone.now()},
        returning=["email"],
    )
    again = insert_returning(
        Contact,
        columns={"email": ["a@example.com", "c@example.com"]},
        fixed={"org": org.pk, "created_at": timezone.now()},
        returning=["email"],
    )

    assert sorted(first) == [("a@example.com",), ("b@example.com",)]
    assert again == [("c@example.com",)]
    contact = Contact.objects.get(email="c@example.com")
    assert (contact.lifecycle_stage, contact.lead_status, contact.properties, contact.score) == ("lead", "new", {}, 0)
