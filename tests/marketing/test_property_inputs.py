"""Custom properties on the contact and company pages as typed inputs (marketing/property_inputs.py):
one input per definition, errors on the input, keys without a definition kept as they were, and
the property definition's options one a line."""

import pytest
from django.urls import reverse

from marketing.models import Company, Contact, PropertyDefinition, Role
from tests.factories import CompanyFactory, ContactFactory


@pytest.fixture
def definitions(org):
    make = PropertyDefinition.objects.create
    make(org=org, subject="contact", key="plan", label="Plan", type="enum", options=["free", "pro"])
    make(org=org, subject="contact", key="seats", label="Seats", type="number")
    make(org=org, subject="contact", key="trial_ends_at", label="Trial ends", type="datetime")
    make(org=org, subject="contact", key="beta", label="Beta tester", type="boolean")
    make(org=org, subject="contact", key="nickname", label="Nickname", type="string")
    make(org=org, subject="company", key="tier", label="Tier", type="enum", options=["gold", "silver"])


def form_errors(response) -> str:
    """The form's and the inlines' errors, to say why a save was refused."""
    context = response.context or {}
    errors = [context["adminform"].form.errors] if "adminform" in context else []
    errors += [inline.formset.errors for inline in context.get("inline_admin_formsets", [])]
    return repr(errors)


def contact_data(contact: Contact, **properties) -> dict:
    data = {
        "email": contact.email,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "country": "",
        "time_zone": "",
        "locale": "",
        "lifecycle_stage": "lead",
        "lead_status": "new",
        "listmembership_set-TOTAL_FORMS": 0,
        "listmembership_set-INITIAL_FORMS": 0,
        "anonymous_ids-TOTAL_FORMS": 0,
        "anonymous_ids-INITIAL_FORMS": 0,
    }
    data.update({f"prop__{key}": value for key, value in properties.items()})
    return data


def test_the_contact_page_has_one_typed_input_per_definition(org, console, definitions):
    contact = ContactFactory(org=org, properties={"plan": "pro", "seats": 12, "legacy_id": "A-7"})
    page = console.get(reverse("admin:marketing_contact_change", args=[contact.pk])).content.decode()
    assert 'name="prop__seats"' in page and 'type="number"' in page and 'value="12"' in page
    assert '<option value="pro" selected>' in page
    assert 'name="prop__trial_ends_at"' in page and 'type="datetime-local"' in page
    assert 'name="prop__beta"' in page and 'type="checkbox"' in page
    assert 'name="properties"' not in page  # no JSON box to type into
    # The key without a definition is shown, read-only, under "Advanced".
    assert "Advanced: properties without a definition" in page and "legacy_id" in page and "A-7" in page


def test_saving_writes_typed_values_and_keeps_keys_without_a_definition(org, console, definitions):
    contact = ContactFactory(
        org=org, properties={"plan": "free", "legacy_id": "A-7", "raw": {"nested": [1, 2]}}, lifecycle_stage="lead"
    )
    data = contact_data(contact, plan="pro", seats="12", trial_ends_at="2026-12-01T09:30", beta="on", nickname="")
    response = console.post(reverse("admin:marketing_contact_change", args=[contact.pk]), data)
    assert response.status_code == 302, form_errors(response)
    contact.refresh_from_db()
    assert contact.properties == {
        "plan": "pro",
        "seats": 12,
        "trial_ends_at": "2026-12-01T09:30:00Z",
        "beta": True,
        "legacy_id": "A-7",
        "raw": {"nested": [1, 2]},
    }


def test_an_unchanged_value_keeps_its_stored_form_and_emptied_inputs_remove_the_key(org, console, definitions):
    stored = {"trial_ends_at": "2026-12-01T09:30:00+00:00", "seats": 4.5, "nickname": "Bo"}
    contact = ContactFactory(org=org, properties=stored, lifecycle_stage="lead")
    data = contact_data(contact, trial_ends_at="2026-12-01T09:30", seats="4.5", nickname="")
    assert console.post(reverse("admin:marketing_contact_change", args=[contact.pk]), data).status_code == 302
    contact.refresh_from_db()
    # An untouched date keeps its exact text, an untouched box stays unset, an emptied text goes.
    assert contact.properties == {"trial_ends_at": "2026-12-01T09:30:00+00:00", "seats": 4.5}


def test_a_bad_value_is_an_error_on_its_input(org, console, definitions):
    contact = ContactFactory(org=org, properties={"seats": 3}, lifecycle_stage="lead")
    data = contact_data(contact, seats="abc", plan="enterprise", trial_ends_at="soon")
    response = console.post(reverse("admin:marketing_contact_change", args=[contact.pk]), data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["prop__seats"] == ["Enter a number, e.g. 12 or 4.5."]
    assert "prop__plan" in errors and "enterprise" in errors["prop__plan"][0]
    assert errors["prop__trial_ends_at"] == ["Enter a date and time, e.g. 2026-12-01 09:30."]
    contact.refresh_from_db()
    assert contact.properties == {"seats": 3}


def test_a_new_contact_gets_its_properties_from_the_inputs(org, console, definitions):
    data = contact_data(Contact(email="new@example.com", first_name="", last_name=""), plan="free", seats="2")
    response = console.post(reverse("admin:marketing_contact_add"), data)
    assert response.status_code == 302, form_errors(response)
    assert Contact.objects.get(email="new@example.com").properties == {"plan": "free", "seats": 2}


def test_the_company_page_uses_company_definitions(org, console, definitions):
    company = CompanyFactory(org=org, properties={"tier": "gold", "crm_id": 991})
    url = reverse("admin:marketing_company_change", args=[company.pk])
    page = console.get(url).content.decode()
    assert 'name="prop__tier"' in page and 'name="prop__plan"' not in page
    data = {"name": company.name, "domain": company.domain or "", "industry": "", "prop__tier": "silver"}
    assert console.post(url, data).status_code == 302
    assert Company.objects.get(pk=company.pk).properties == {"tier": "silver", "crm_id": 991}


def test_a_page_shown_read_only_lists_the_properties_in_words(org, member_factory, definitions):
    from django.test import Client

    rep = member_factory(org, Role.SALES, username="sam")
    other = member_factory(org, Role.SALES, username="sue")
    contact = ContactFactory(org=org, owner=other, properties={"plan": "pro", "beta": True})
    client = Client()
    client.force_login(rep)
    page = client.get(reverse("admin:marketing_contact_change", args=[contact.pk])).content.decode()
    assert 'name="prop__plan"' not in page
    assert (
        "<dt class='font-semibold'>Beta tester</dt><dd>Yes</dd>" in page
        and "<dt class='font-semibold'>Plan</dt><dd>pro</dd>" in page
    )


def test_enum_options_are_edited_one_a_line(org, member_factory):
    from django.test import Client

    client = Client()
    client.force_login(member_factory(org, Role.ADMIN, username="ada"))
    definition = PropertyDefinition.objects.create(
        org=org, subject="contact", key="size", label="Size", type="enum", options=[1, 2, "big"]
    )
    url = reverse("admin:marketing_propertydefinition_change", args=[definition.pk])
    page = client.get(url).content.decode()
    assert "1\n2\nbig</textarea>" in page
    data = {"subject": "contact", "key": "size", "label": "Size", "type": "enum", "source": "user"}
    response = client.post(url, {**data, "options": "1\n2\n\nbig\nhuge\n"})
    assert response.status_code == 302, form_errors(response)
    definition.refresh_from_db()
    assert definition.options == [1, 2, "big", "huge"]  # the numbers already there stay numbers
    response = client.post(url, {**data, "options": ""})
    assert response.context["adminform"].form.errors["options"] == [
        "A “One of a set” property needs at least one option, one a line."
    ]
