"""factory-boy factories for every model; related rows share the org of the row they hang off."""

import factory
from factory.django import DjangoModelFactory

from marketing.models import (
    ApiKey,
    Company,
    Contact,
    ContactList,
    ListMembership,
    Membership,
    Organization,
    Role,
    Segment,
    Tag,
    User,
)


class OrganizationFactory(DjangoModelFactory):
    class Meta:
        model = Organization

    slug = factory.Sequence(lambda n: f"org-{n}")
    name = factory.Sequence(lambda n: f"Organisation {n}")
    postal_address = "1 Main Street, Springfield"
    default_country = "DE"


class OrgRowFactory(DjangoModelFactory):
    """A row of one org, written inside that org's ``org_context``, as the app does: with row-level
    security on (the suite run as the production roles), a row of another org than the test's
    current one is refused otherwise."""

    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        from marketing.tenancy import org_context

        org = cls._org(kwargs)
        if org is None:
            return super()._create(model_class, *args, **kwargs)
        with org_context(org):
            return super()._create(model_class, *args, **kwargs)

    @classmethod
    def _org(cls, kwargs):
        return kwargs.get("org")


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests")

    @classmethod
    def _after_postgeneration(cls, instance, create, results=None):
        if create:
            instance.save(update_fields=["password"])


class MembershipFactory(OrgRowFactory):
    class Meta:
        model = Membership

    org = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.MARKETER


class CompanyFactory(OrgRowFactory):
    class Meta:
        model = Company

    org = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Company {n}")
    domain = factory.Sequence(lambda n: f"company{n}.example")
    industry = "software"
    size = 50


class ContactFactory(OrgRowFactory):
    class Meta:
        model = Contact

    org = factory.SubFactory(OrganizationFactory)
    email = factory.Sequence(lambda n: f"contact{n}@example.com")
    first_name = factory.Sequence(lambda n: f"First{n}")
    last_name = factory.Sequence(lambda n: f"Last{n}")
    country = "DE"


class TagFactory(OrgRowFactory):
    class Meta:
        model = Tag

    org = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"tag-{n}")


class ContactListFactory(OrgRowFactory):
    class Meta:
        model = ContactList

    org = factory.SubFactory(OrganizationFactory)
    slug = factory.Sequence(lambda n: f"list-{n}")
    name = factory.Sequence(lambda n: f"List {n}")


class ListMembershipFactory(OrgRowFactory):
    class Meta:
        model = ListMembership

    contact_list = factory.SubFactory(ContactListFactory)
    contact = factory.SubFactory(ContactFactory, org=factory.SelfAttribute("..contact_list.org"))

    @classmethod
    def _org(cls, kwargs):
        return kwargs["contact_list"].org


class ApiKeyFactory(OrgRowFactory):
    """A key row; tests that need the raw key call ``services.api_key_create`` instead."""

    class Meta:
        model = ApiKey

    org = factory.SubFactory(OrganizationFactory)
    name = "factory key"
    prefix = factory.Sequence(lambda n: f"{n:08d}")
    secret_hash = "0" * 64


class SegmentFactory(OrgRowFactory):
    """A static segment row. A dynamic one goes through ``segments.segment_save``, which validates
    its rule and computes its members."""

    class Meta:
        model = Segment

    org = factory.SubFactory(OrganizationFactory)
    slug = factory.Sequence(lambda n: f"segment-{n}")
    name = factory.Sequence(lambda n: f"Segment {n}")
    kind = Segment.Kind.STATIC


class SubscriptionTypeFactory(OrgRowFactory):
    """A topic of email marketing (compliance.SubscriptionType), active."""

    class Meta:
        model = "compliance.SubscriptionType"

    org = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Topic {n}")
    description = "News about one thing."
