"""Erased identities: keyed hashes of erased emails and phones, found under every key."""

import hashlib

from marketing import erased_identities
from marketing.erased_identities import EMAIL, PHONE, digest, erased_values, is_erased, record
from marketing.models import ErasedIdentity


def test_the_hash_is_keyed_and_of_the_normalised_value(org, settings):
    settings.ERASURE_HASH_KEY = ["key-one"]
    assert digest(EMAIL, " Ana@Example.COM ") == digest(EMAIL, "ana@example.com")
    assert digest(PHONE, "0151 12345678", default_country="DE") == digest(PHONE, "+4915112345678")
    assert digest(EMAIL, "ana@example.com") != hashlib.sha256(b"ana@example.com").hexdigest()
    assert digest(EMAIL, "ana@example.com") != digest(EMAIL, "ana@example.com", key="key-two")
    assert digest(EMAIL, "ana@example.com") != digest(PHONE, "ana@example.com")  # kinds never collide


def test_a_key_added_in_front_keeps_old_hashes_matching(org, settings):
    settings.ERASURE_HASH_KEY = ["old-key"]
    record(org=org, kind=EMAIL, value="ana@example.com")
    settings.ERASURE_HASH_KEY = ["new-key", "old-key"]
    assert is_erased(org=org, kind=EMAIL, value="ANA@example.com")
    record(org=org, kind=EMAIL, value="bo@example.com")
    assert ErasedIdentity.objects.get(digest=digest(EMAIL, "bo@example.com", key="new-key"))
    settings.ERASURE_HASH_KEY = ["new-key"]  # dropping a key loses what it hashed: never do that
    assert not is_erased(org=org, kind=EMAIL, value="ana@example.com")


def test_record_is_idempotent_and_per_org(org, other_org):
    first = record(org=org, kind=PHONE, value="+4915112345678")
    assert record(org=org, kind=PHONE, value="0151 12345678") == first  # org-a reads national numbers in DE
    assert is_erased(org=org, kind=PHONE, value="+49 151 12345678")
    assert not is_erased(org=other_org, kind=PHONE, value="+4915112345678")
    assert not is_erased(org=org, kind=EMAIL, value="") and not is_erased(org=org, kind=EMAIL, value=None)


def test_a_batch_is_checked_in_one_query(org, django_assert_num_queries):
    record(org=org, kind=EMAIL, value="gone@example.com")
    emails = [f"person{n}@example.com" for n in range(200)] + ["gone@example.com", None, ""]
    with django_assert_num_queries(1):
        assert erased_values(org=org, kind=EMAIL, values=emails) == {"gone@example.com"}
    with django_assert_num_queries(0):
        assert erased_identities.erased_emails(org=org, emails=[None, ""]) == set()
