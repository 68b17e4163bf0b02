"""The console: each org sees and changes only its own rows, whatever ids are guessed; roles apply."""

import json

import pytest
from django.test import Client
from django.urls import reverse
from django_scopes import scopes_disabled

from marketing.models import Contact, Role, Tag
from marketing.tenancy import org_context
from tests.factories import (
    CompanyFactory,
    ContactFactory,
    ContactListFactory,
    MembershipFactory,
    TagFactory,
    UserFactory,
)

CHANGELIST = "/admin/marketing/contact/"


def change_url(contact) -> str:
    return reverse("admin:marketing_contact_change", args=[contact.pk])


@pytest.fixture
def theirs(other_org):
    """A contact (and company) of org B that org A's users must never reach."""
    with scopes_disabled():
        company = CompanyFactory(org=other_org, name="Globex Secret")
        return ContactFactory(org=other_org, email="secret@globex.example", company=company)


def test_contact_list_shows_only_the_current_orgs_contacts(org, other_org, console, theirs, member_factory):
    ContactFactory(org=org, email="mine@acme.example").tags.add(TagFactory(org=org, name="acme-tag"))
    with org_context(other_org):
        theirs.tags.add(TagFactory(org=other_org, name="globex-tag"))
        ContactListFactory(org=other_org, name="Globex list")
    member_factory(other_org, username="globex-rep")

    page = console.get(CHANGELIST).content.decode()

    assert "mine@acme.example" in page
    assert "secret@globex.example" not in page
    assert "acme-tag" in page  # the filter sidebar lists this org's tags…
    for foreign in ("globex-tag", "Globex list", "globex-rep"):  # …and nothing of the other org
        assert foreign not in page
    search = console.get(CHANGELIST, {"q": "secret"})
    assert "secret@globex.example" not in search.content.decode()
    assert search.context["cl"].result_count == 0


def test_guessing_another_orgs_contact_id_reaches_nothing(org, other_org, console, theirs):
    view = console.get(change_url(theirs))
    assert view.status_code == 302  # the admin's "does not exist" redirect
    assert "secret@globex.example" not in console.get(view.url).content.decode()

    console.post(
        change_url(theirs),
        {"email": "hijacked@acme.example", "lifecycle_stage": "lead", "lead_status": "new", "properties": "{}"},
    )
    console.post(reverse("admin:marketing_contact_delete", args=[theirs.pk]), {"post": "yes"})
    console.post(CHANGELIST, {"action": "delete_selected", "_selected_action": [theirs.pk], "post": "yes"})
    console.post(
        CHANGELIST, {"action": "set_stage", "_selected_action": [theirs.pk], "apply": "1", "stage": "customer"}
    )

    with org_context(other_org):
        theirs.refresh_from_db()
    assert theirs.email == "secret@globex.example"
    assert theirs.lifecycle_stage == "lead"


def test_autocomplete_and_choices_offer_only_the_current_org(org, other_org, console, theirs, member_factory):
    CompanyFactory(org=org, name="Acme Widgets")
    outsider = member_factory(other_org, username="outsider")

    found = console.get(
        "/admin/autocomplete/", {"app_label": "marketing", "model_name": "contact", "field_name": "company", "term": ""}
    )
    names = [item["text"] for item in json.loads(found.content)["results"]]
    assert names == ["Acme Widgets"]

    add_page = console.get(reverse("admin:marketing_contact_add")).content.decode()
    assert "mara" in add_page  # the owner select lists members of this org…
    assert outsider.username not in add_page  # …and nobody else


def test_owner_filter_offers_the_orgs_members_and_filters_by_owner_or_none(
    org, other_org, console, marketer, member_factory
):
    outsider = member_factory(other_org, username="outsider")
    owned = ContactFactory(org=org, owner=marketer)
    unowned = ContactFactory(org=org, owner=None)

    def listed(**params):
        response = console.get(CHANGELIST, params)
        assert response.status_code == 200
        return response

    owner_filter = next(f for f in listed().context["cl"].filter_specs if getattr(f, "parameter_name", None) == "owner")
    assert owner_filter.lookup_choices == [("none", "No owner"), (str(marketer.pk), marketer.username)]
    assert outsider.pk not in {choice for choice, _ in owner_filter.lookup_choices}
    assert [c.pk for c in listed(owner=str(marketer.pk)).context["cl"].result_list] == [owned.pk]
    assert [c.pk for c in listed(owner="none").context["cl"].result_list] == [unowned.pk]


def test_a_contact_cannot_be_attached_to_another_orgs_company(org, console, theirs):
    response = console.post(
        reverse("admin:marketing_contact_add"),
        {
            "email": "new@acme.example",
            "company": theirs.company_id,
            "lifecycle_stage": "lead",
            "lead_status": "new",
            "properties": "{}",
            "listmembership_set-TOTAL_FORMS": "0",
            "listmembership_set-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Contact.objects.filter(email="new@acme.example").exists()


def add_contact(console, **fields):
    data = {
        "lifecycle_stage": "lead",
        "lead_status": "new",
        "properties": "{}",
        "listmembership_set-TOTAL_FORMS": "0",
        "listmembership_set-INITIAL_FORMS": "0",
        **fields,
    }
    return console.post(reverse("admin:marketing_contact_add"), data)


def test_adding_a_contact_normalises_and_reports_errors_per_field(org, console):
    response = add_contact(console, email="Ana@Example.COM", phone="030 1234567")
    assert response.status_code == 302
    contact = Contact.objects.get()
    assert (contact.email, contact.phone, contact.org) == ("ana@example.com", "+49301234567", org)

    duplicate = add_contact(console, email="ANA@example.com").content.decode()
    assert "A contact with this email already exists." in duplicate or "already exists" in duplicate
    invalid = add_contact(console, email="ana@@example.com", phone="12").content.decode()
    assert "is not a valid phone number" in invalid
    assert Contact.objects.count() == 1


def test_bulk_add_tags_action(org, console):
    contacts = ContactFactory.create_batch(3, org=org)
    ids = [c.pk for c in contacts[:2]]

    form = console.post(CHANGELIST, {"action": "add_tags", "_selected_action": ids})
    assert "Add tags" in form.content.decode()
    done = console.post(
        CHANGELIST, {"action": "add_tags", "_selected_action": ids, "apply": "1", "tags": "vip, webinar"}
    )
    assert done.status_code == 302

    assert set(Contact.objects.filter(tags__name="vip").values_list("pk", flat=True)) == set(ids)
    assert sorted(Tag.objects.values_list("name", flat=True)) == ["vip", "webinar"]


def test_bulk_action_over_every_matching_contact_posts_back_what_it_confirms(org, console):
    contacts = ContactFactory.create_batch(3, org=org)
    form = console.post(CHANGELIST, {"action": "add_tags", "_selected_action": [contacts[0].pk], "select_across": "1"})
    page = form.content.decode()
    assert 'name="select_across" value="1"' in page
    assert f'name="_selected_action" value="{contacts[0].pk}"' in page  # without a row Django runs no action
    done = console.post(
        CHANGELIST,
        {"action": "add_tags", "_selected_action": [contacts[0].pk], "select_across": "1", "apply": "1", "tags": "all"},
    )
    assert done.status_code == 302
    assert Contact.objects.filter(tags__name="all").count() == 3


def test_bulk_add_to_list_offers_only_own_lists(org, other_org, console):
    contact = ContactFactory(org=org)
    mine = ContactListFactory(org=org, name="Mine")
    with scopes_disabled():
        foreign = ContactListFactory(org=other_org, name="Foreign")

    form = console.post(CHANGELIST, {"action": "add_to_list", "_selected_action": [contact.pk]}).content.decode()
    assert "Mine" in form and "Foreign" not in form
    console.post(
        CHANGELIST,
        {"action": "add_to_list", "_selected_action": [contact.pk], "apply": "1", "contact_list": foreign.pk},
    )
    assert not contact.lists.exists()
    console.post(
        CHANGELIST, {"action": "add_to_list", "_selected_action": [contact.pk], "apply": "1", "contact_list": mine.pk}
    )
    assert list(contact.lists.all()) == [mine]


def test_roles_limit_what_a_member_may_do(org, member_factory):
    contact = ContactFactory(org=org, email="ana@example.com")
    analyst, sales = Client(), Client()
    analyst.force_login(member_factory(org, Role.ANALYST))
    sales.force_login(member_factory(org, Role.SALES))

    assert analyst.get(change_url(contact)).status_code == 200  # view only
    refused = analyst.post(
        change_url(contact),
        {"email": "changed@example.com", "lifecycle_stage": "lead", "lead_status": "new", "properties": "{}"},
    )
    assert refused.status_code == 403
    assert analyst.get(reverse("admin:marketing_contact_add")).status_code == 403
    assert sales.get(reverse("admin:marketing_apikey_changelist")).status_code == 403
    assert sales.get(reverse("admin:marketing_user_changelist")).status_code == 403
    contact.refresh_from_db()
    assert contact.email == "ana@example.com"


def test_role_is_per_org(org, other_org, member_factory):
    """Admin in org A and analyst in org B: in B the user may only look."""
    user = member_factory(org, Role.ADMIN)
    with scopes_disabled():
        MembershipFactory(org=other_org, user=user, role=Role.ANALYST)
        foreign = ContactFactory(org=other_org)
    client = Client()
    client.force_login(user)
    client.post(reverse("admin:org_switch"), {"org": other_org.pk})

    assert client.get(change_url(foreign)).status_code == 200
    assert client.get(reverse("admin:marketing_contact_add")).status_code == 403


def test_org_switcher(org, other_org, console, marketer, theirs):
    assert console.post(reverse("admin:org_switch"), {"org": other_org.pk}).status_code == 400
    assert "secret@globex.example" not in console.get(CHANGELIST).content.decode()

    with scopes_disabled():
        MembershipFactory(org=other_org, user=marketer)
    switched = console.post(reverse("admin:org_switch"), {"org": other_org.pk, "next": "https://evil.example/"})
    assert switched.status_code == 302 and switched.url == reverse("admin:index")
    page = console.get(CHANGELIST).content.decode()
    assert "secret@globex.example" in page
    assert "selected>Org B</option>" in page


def test_only_members_may_enter_the_console(org, db):
    UserFactory(username="drifter")
    response = Client().post(reverse("admin:login"), {"username": "drifter", "password": "pw-for-tests"})
    assert response.status_code == 200  # the login form again, with an error
    assert "Please enter the correct" in response.content.decode()


def test_contact_list_query_count_does_not_grow_with_rows(org, console, django_assert_max_num_queries):
    company = CompanyFactory(org=org)
    ContactFactory.create_batch(40, org=org, company=company)
    # The audit entry of the list read is one of them.
    with django_assert_max_num_queries(18):
        assert console.get(CHANGELIST).status_code == 200
    with django_assert_max_num_queries(18):
        assert console.get(CHANGELIST, {"q": company.name}).status_code == 200


@pytest.mark.parametrize("page", ["company", "tag", "contactlist", "membership", "apikey", "organization"])
def test_every_page_renders_for_an_admin(org, member_factory, page):
    client = Client()
    client.force_login(member_factory(org, Role.ADMIN))
    assert client.get(f"/admin/marketing/{page}/").status_code == 200
    assert client.get(f"/admin/marketing/{page}/add/").status_code in (200, 403)


def test_api_key_created_in_the_console_is_shown_once_and_works(org, member_factory):
    client = Client()
    client.force_login(member_factory(org, Role.ADMIN))
    response = client.post(reverse("admin:marketing_apikey_add"), {"name": "CRM", "scope": "server"}, follow=True)
    message = next(str(m) for m in response.context["messages"])
    raw = message.split("<code>")[1].split("</code>")[0]

    assert Client().get("/api/v1/contacts/", headers={"Authorization": f"Bearer {raw}"}).status_code == 200


def test_the_contact_list_shows_known_contacts_and_keeps_anonymous_ones_apart(org, console):
    ContactFactory(org=org, email="ana@example.com")
    ContactFactory(org=org, email=None, external_id="crm-7", first_name="Crm")
    ContactFactory(org=org, email=None, external_id=None, first_name="Cookie")

    def names(**params):
        response = console.get(CHANGELIST, params)
        assert response.status_code == 200
        return sorted(c.email or c.external_id or c.first_name for c in response.context["cl"].result_list)

    assert names() == ["ana@example.com", "crm-7"]
    assert names(identity="anonymous") == ["Cookie"]
    assert names(identity="all") == ["Cookie", "ana@example.com", "crm-7"]
    page = console.get(CHANGELIST).content.decode()
    assert "Anonymous visitors" in page and "Known (email or external id)" in page


def test_the_contact_list_tells_imported_history_apart(org, console):
    from django.utils import timezone

    from marketing.models import Event

    live = ContactFactory(org=org, email="live@example.com")
    past = ContactFactory(org=org, email="history-1@example.net")
    now = timezone.now()
    Event.objects.create(org=org, contact=live, type="page_view", occurred_at=now, message_id="m1")
    Event.objects.create(org=org, contact=past, type="page_view", occurred_at=now, message_id="m2", source="history")

    def emails(**params):
        return sorted(c.email for c in console.get(CHANGELIST, params).context["cl"].result_list)

    assert emails(activity="history") == ["history-1@example.net"]
    assert emails(activity="live") == ["live@example.com"]


def test_a_sales_rep_changes_only_their_own_leads_and_never_reassigns(org, member_factory):
    rep = member_factory(org, Role.SALES, username="rep1")
    other = member_factory(org, Role.SALES, username="rep2")
    client = Client()
    client.force_login(rep)
    theirs = ContactFactory(org=org, email="theirs@example.com", owner=other)
    mine = ContactFactory(org=org, email="mine@example.com", owner=rep)
    unowned = ContactFactory(org=org, email="free@example.com")

    def save(contact, owner):
        data = {
            "email": contact.email,
            "lifecycle_stage": "lead",
            "lead_status": "new",
            "owner": owner.pk if owner else "",
            "properties": "{}",
            "listmembership_set-TOTAL_FORMS": "0",
            "listmembership_set-INITIAL_FORMS": "0",
            "anonymous_ids-TOTAL_FORMS": "0",
            "anonymous_ids-INITIAL_FORMS": "0",
        }
        return client.post(change_url(contact), data)

    # Another rep's lead is read-only: no form to post, and posting is refused.
    assert save(theirs, rep).status_code == 403
    # Their own lead: giving it to another rep is a manager's move, refused on the field.
    refused = save(mine, other)
    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors["owner"] == [
        "Only a sales manager can reassign a contact. You may take an unowned contact yourself."
    ]
    # An unowned lead may be taken.
    assert save(unowned, rep).status_code == 302
    with scopes_disabled():
        assert [c.owner_id for c in (theirs, mine, unowned) if c.refresh_from_db() is None] == [
            other.pk,
            rep.pk,
            rep.pk,
        ]
    # A manager reassigns.
    boss = member_factory(org, Role.ADMIN, username="boss")
    client.force_login(boss)
    assert save(mine, other).status_code == 302
    mine.refresh_from_db()
    assert mine.owner_id == other.pk
