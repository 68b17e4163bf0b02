"""Tenant scoping: a query that forgets its org must fail or see nothing, never another org's rows."""

import pytest
from django_scopes import ScopeError, scopes_disabled

from marketing.models import Contact
from marketing.tenancy import current_org, no_org, org_context
from tests.factories import ContactFactory


def test_queries_outside_any_org_raise_instead_of_leaking(db):
    with scopes_disabled():
        ContactFactory()
    with pytest.raises(ScopeError):
        list(Contact.objects.all())
    with pytest.raises(ScopeError):
        Contact.objects.count()


def test_an_org_context_sees_only_its_own_rows(org, other_org):
    mine = ContactFactory(org=org)
    theirs = ContactFactory(org=other_org)

    assert list(Contact.objects.all()) == [mine]
    assert not Contact.objects.filter(pk=theirs.pk).exists()
    with org_context(other_org):
        assert list(Contact.objects.all()) == [theirs]
        assert current_org() == other_org
    assert current_org() == org


def test_no_org_sees_nothing(org):
    ContactFactory(org=org)
    with no_org():
        assert Contact.objects.count() == 0
        assert current_org() is None
