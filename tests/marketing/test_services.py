"""Contact and company writes: normalisation, validation per field, uniqueness per org."""

import pytest
from django.core.exceptions import ValidationError
from django_scopes import scopes_disabled

from marketing import services
from marketing.models import Contact, Tag
from marketing.tenancy import org_context
from tests.factories import CompanyFactory, ContactFactory, ContactListFactory, ListMembershipFactory


def test_contact_create_normalises_email_and_phone(org):
    contact = services.contact_create(org=org, email="  Ana.Lima@Example.COM ", phone="0151 12345678")

    assert contact.email == "ana.lima@example.com"
    assert contact.phone == "+4915112345678"  # the org's default country is DE


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [
        ({"email": "ana@@example.com"}, "email", "@"),
        ({"email": "no-at-sign"}, "email", "@-sign"),
        ({"phone": "12"}, "phone", "not a valid phone number"),
        ({"phone": "call me"}, "phone", "not a phone number"),
        ({"country": "Germany"}, "country", "two-letter"),
        ({"time_zone": "Mars/Olympus"}, "time_zone", "IANA"),
        ({"lifecycle_stage": "prospect"}, "lifecycle_stage", "not a valid choice"),
        ({"favourite_colour": "blue"}, "favourite_colour", "Unknown field"),
    ],
)
def test_contact_create_rejects_bad_input_per_field(org, fields, field, fragment):
    with pytest.raises(ValidationError) as excinfo:
        services.contact_create(org=org, **fields)

    assert fragment in " ".join(excinfo.value.message_dict[field])
    assert Contact.objects.count() == 0


def test_email_is_unique_per_org_whatever_its_case(org, other_org):
    services.contact_create(org=org, email="ana@example.com")

    with pytest.raises(ValidationError) as excinfo:
        services.contact_create(org=org, email="ANA@example.com")
    assert "already exists" in excinfo.value.message_dict["email"][0]

    with org_context(other_org):  # another org may have the same address
        services.contact_create(org=other_org, email="ana@example.com")
        assert Contact.objects.filter(email="ana@example.com").count() == 1
    assert Contact.objects.filter(email="ana@example.com").count() == 1


def test_many_contacts_without_email_are_allowed(org):
    services.contact_create(org=org, first_name="Anon")
    services.contact_create(org=org, first_name="Anon", email="")
    assert Contact.objects.filter(email__isnull=True).count() == 2


def test_contact_cannot_point_at_another_orgs_company(org, other_org):
    with scopes_disabled():
        foreign = CompanyFactory(org=other_org)
    with pytest.raises(ValidationError) as excinfo:
        services.contact_create(org=org, email="a@example.com", company=foreign)
    assert "company" in excinfo.value.message_dict


def test_owner_must_be_a_member(org, other_org, member_factory):
    outsider = member_factory(other_org)
    with pytest.raises(ValidationError) as excinfo:
        services.contact_create(org=org, email="a@example.com", owner=outsider)
    assert "member" in excinfo.value.message_dict["owner"][0]


def test_company_domain_is_normalised_and_unique(org):
    company = services.company_create(org=org, name="Acme", domain="https://www.Acme.io/about")
    assert company.domain == "acme.io"
    with pytest.raises(ValidationError) as excinfo:
        services.company_create(org=org, name="Acme again", domain="acme.io")
    assert "already exists" in excinfo.value.message_dict["domain"][0]


def test_bulk_tagging_and_lists_are_set_based_and_idempotent(org, django_assert_max_num_queries):
    contacts = ContactFactory.create_batch(30, org=org)
    selection = Contact.objects.filter(pk__in=[c.pk for c in contacts])
    newsletter = ContactListFactory(org=org)

    with django_assert_max_num_queries(8):
        services.contacts_tag(org=org, contacts=selection, names=["vip", " webinar "])
    services.contacts_tag(org=org, contacts=selection, names=["vip"])  # again: nothing doubles
    services.contacts_add_to_list(org=org, contacts=selection, contact_list=newsletter)
    services.contacts_add_to_list(org=org, contacts=selection, contact_list=newsletter)

    assert sorted(Tag.objects.values_list("name", flat=True)) == ["vip", "webinar"]
    assert Contact.tags.through.objects.count() == 60
    assert newsletter.contacts.count() == 30

    first_ten = Contact.objects.filter(pk__in=[c.pk for c in contacts[:10]])
    services.contacts_untag(org=org, contacts=first_ten, tags=Tag.objects.filter(name="vip"))
    assert Contact.objects.filter(tags__name="vip").count() == 20
    assert services.contacts_remove_from_list(org=org, contacts=selection, contact_list=newsletter) == 30


def test_list_membership_factory_keeps_one_org(org):
    membership = ListMembershipFactory(contact_list__org=org)
    assert membership.contact.org == membership.contact_list.org == org
