"""Personal fields encrypted at rest: the raw columns hold no plaintext, the ORM reads it back,
every write path keeps the blind index in step, lookups go through the index."""

import importlib

import pytest
from django.core.exceptions import FieldError, ImproperlyConfigured
from django.db import connection
from django.test import override_settings

from channels_app.models import Message, Suppression
from compliance.models import ConsentRecord
from marketing import services
from marketing.bulk_sql import insert_returning, update_rows
from marketing.field_encryption import (
    FieldDecryptionError,
    blind_index,
    decrypt,
    encrypt,
    key_id,
    new_key,
    phone_index,
)
from marketing.models import Contact
from marketing.tenancy import org_context
from tests.factories import ContactFactory

PHONE = "+4915112345678"
DIGITS = "15112345678"


def raw(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def stored_phone(contact: Contact) -> tuple[str, str]:
    return raw("SELECT phone, phone_bidx FROM marketing_contact WHERE id = %s", [contact.pk])[0]


def test_the_phone_column_holds_no_plaintext_and_the_orm_reads_it_back(org):
    contact = services.contact_create(org=org, email="ana@example.com", phone="0151 12345678")  # DE default

    phone, index = stored_phone(contact)
    assert phone.startswith("enc1:") and DIGITS not in phone
    assert index == phone_index(PHONE) and DIGITS not in index
    assert Contact.objects.get(pk=contact.pk).phone == PHONE
    assert not raw("SELECT 1 FROM marketing_contact WHERE phone LIKE %s", [f"%{DIGITS}%"])


def test_the_same_number_is_encrypted_differently_each_time_but_indexed_the_same(org):
    first = ContactFactory(org=org, phone=PHONE)
    second = ContactFactory(org=org, phone=PHONE)

    (a, index_a), (b, index_b) = stored_phone(first), stored_phone(second)
    assert a != b and index_a == index_b


def test_an_empty_phone_stays_empty_so_is_set_needs_no_key(org):
    contact = ContactFactory(org=org, phone="")

    assert stored_phone(contact) == ("", "")


def test_every_write_path_keeps_the_index_in_step(org):
    other = "+4915199999999"
    contact = ContactFactory(org=org, phone=PHONE)

    contact.phone = other
    contact.save(update_fields=["phone"])
    assert stored_phone(contact)[1] == phone_index(other)

    contact.phone = PHONE
    Contact.objects.bulk_update([contact], ["phone"])
    assert stored_phone(contact)[1] == phone_index(PHONE)

    contact.phone = other
    update_rows([contact], ["phone"])  # marketing.bulk_sql's raw UPDATE … FROM jsonb_to_recordset
    phone, index = stored_phone(contact)
    assert index == phone_index(other) and phone.startswith("enc1:") and "15199999999" not in phone

    [created] = Contact.objects.bulk_create([Contact(org=org, phone=PHONE)])
    assert stored_phone(created)[1] == phone_index(PHONE)

    [(pk,)] = insert_returning(Contact, columns={"phone": [PHONE]}, fixed={"org": org.pk}, returning=["id"])
    phone, index = raw("SELECT phone, phone_bidx FROM marketing_contact WHERE id = %s", [pk])[0]
    assert phone.startswith("enc1:") and index == phone_index(PHONE)
    assert Contact.objects.get(pk=pk).phone == PHONE

    services.contact_update(contact=contact, phone="")
    assert stored_phone(contact) == ("", "")


def test_a_lookup_by_the_encrypted_value_is_refused_naming_the_index(org):
    with pytest.raises(FieldError, match="phone_bidx"):
        Contact.objects.filter(phone=PHONE).exists()
    with pytest.raises(FieldError):
        Contact.objects.filter(phone__icontains="151").exists()
    ContactFactory(org=org, phone=PHONE)
    ContactFactory(org=org, phone="")

    assert Contact.objects.filter(phone_bidx=phone_index(PHONE)).count() == 1
    assert Contact.objects.filter(phone="").count() == 1  # "is empty" needs no key


def test_sms_recipients_are_encrypted_and_email_recipients_stay_readable(org):
    contact = ContactFactory(org=org, email="ana@example.com", phone=PHONE)
    sms = Message.objects.create(org=org, contact=contact, channel="sms", to=PHONE, idempotency_key="k1")
    email = Message.objects.create(
        org=org, contact=contact, channel="email", to="ana@example.com", idempotency_key="k2"
    )

    stored = dict(raw('SELECT id, "to" FROM channels_app_message'))
    assert stored[sms.pk].startswith("enc1:") and DIGITS not in stored[sms.pk]
    assert stored[email.pk] == "ana@example.com"
    assert Message.objects.get(pk=sms.pk).to == PHONE


def test_a_phone_suppression_keeps_the_keyed_hash(org):
    assert Suppression.address_of(f" {PHONE} ") == phone_index(PHONE)
    assert Suppression.address_of("Ana@Example.com") == "ana@example.com"


def test_the_network_addresses_of_a_consent_proof_are_encrypted(org):
    contact = ContactFactory(org=org)
    record = ConsentRecord.objects.create(
        org=org,
        contact=contact,
        purpose="email_marketing",
        granted=True,
        source="form",
        proof={"ip": "203.0.113.9", "user_agent": "Firefox", "nested": {"from": PHONE}},
    )

    [(proof,)] = raw("SELECT proof::text FROM compliance_consentrecord WHERE id = %s", [record.pk])
    assert "203.0.113.9" not in proof and DIGITS not in proof and "Firefox" in proof
    assert ConsentRecord.objects.get(pk=record.pk).proof == {
        "ip": "203.0.113.9",
        "user_agent": "Firefox",
        "nested": {"from": PHONE},
    }


def test_blind_indexes_are_keyed_and_separated_by_purpose():
    assert blind_index(PHONE, purpose="phone") != blind_index(PHONE, purpose="property:x")
    with override_settings(FIELD_INDEX_KEY="another key"):
        other = phone_index(PHONE)
    assert other != phone_index(PHONE)
    assert phone_index("") == ""


def test_values_under_an_older_key_read_while_it_is_listed_and_not_after():
    old, current = new_key(), new_key()
    with override_settings(FIELD_ENCRYPTION_KEYS=[old]):
        stored = encrypt(PHONE)
    assert stored.startswith(f"enc1:{key_id(old)}:")
    with override_settings(FIELD_ENCRYPTION_KEYS=[current, old]):
        assert decrypt(stored) == PHONE
        assert encrypt(PHONE).startswith(f"enc1:{key_id(current)}:")
    with override_settings(FIELD_ENCRYPTION_KEYS=[current]), pytest.raises(FieldDecryptionError, match=key_id(old)):
        decrypt(stored)


def test_a_bad_key_is_named_by_its_position():
    bad = override_settings(FIELD_ENCRYPTION_KEYS=[new_key(), "not-a-key"])
    with bad, pytest.raises(ImproperlyConfigured, match="key 2 is not a Fernet key"):
        encrypt(PHONE)


def test_the_migration_encrypts_the_phones_stored_before_it(org):
    contact = ContactFactory(org=org, phone="")
    raw("UPDATE marketing_contact SET phone = %s, phone_bidx = '' WHERE id = %s RETURNING id", [PHONE, contact.pk])
    assert Contact.objects.get(pk=contact.pk).phone == PHONE  # a plain value still reads

    migration = importlib.import_module("marketing.migrations.0013_field_encryption")
    migration.encrypt_phones(None, type("Editor", (), {"connection": connection})())

    phone, index = stored_phone(contact)
    assert phone.startswith("enc1:") and index == phone_index(PHONE)
    assert Contact.objects.get(pk=contact.pk).phone == PHONE


def test_rotation_moves_every_value_to_the_first_key_and_the_old_key_can_go(org, capsys):
    from django.core.management import call_command

    old, current = new_key(), new_key()
    with override_settings(FIELD_ENCRYPTION_KEYS=[old]):
        contacts = [ContactFactory(org=org, phone=f"+49151123456{i:02d}") for i in range(5)]
        sms = Message.objects.create(org=org, contact=contacts[0], channel="sms", to=PHONE, idempotency_key="r1")
        record = ConsentRecord.objects.create(
            org=org, contact=contacts[0], purpose="sms", granted=True, source="form", proof={"ip": "198.51.100.7"}
        )
    plain = ContactFactory(org=org, phone="")
    raw("UPDATE marketing_contact SET phone = %s WHERE id = %s RETURNING id", ["+4915100000001", plain.pk])

    with override_settings(FIELD_ENCRYPTION_KEYS=[current, old]):
        call_command("rotate_field_keys", "--batch", "2")
        out = capsys.readouterr().out
        assert "marketing.Contact.phone: 6 rewritten, 0 left" in out
        assert "channels_app.Message.to: 1 rewritten, 0 left" in out
        assert "compliance.ConsentRecord.proof: 1 rewritten, 0 left" in out
        call_command("rotate_field_keys")  # again: nothing left to do
        assert "marketing.Contact.phone: 0 rewritten, 0 left" in capsys.readouterr().out

    for phone, _ in [stored_phone(c) for c in contacts]:
        assert phone.startswith(f"enc1:{key_id(current)}:")
    phone, index = stored_phone(plain)  # written in clear by raw SQL: encrypted and indexed on the way
    assert phone.startswith(f"enc1:{key_id(current)}:") and index == phone_index("+4915100000001")
    with override_settings(FIELD_ENCRYPTION_KEYS=[current]):  # the old key removed
        assert [Contact.objects.get(pk=c.pk).phone for c in contacts] == [f"+49151123456{i:02d}" for i in range(5)]
        assert Message.objects.get(pk=sms.pk).to == PHONE
        assert ConsentRecord.objects.get(pk=record.pk).proof == {"ip": "198.51.100.7"}
        assert Contact.objects.get(pk=plain.pk).phone == "+4915100000001"


def test_rotation_with_a_bad_key_exits_with_one_line(org):
    from django.core.management import CommandError, call_command

    with (
        override_settings(FIELD_ENCRYPTION_KEYS=["nope"]),
        pytest.raises(CommandError, match="key 1 is not a Fernet key"),
    ):
        call_command("rotate_field_keys")


ALLOWED = [
    {"!!": {"var": "phone"}},
    {"!": {"var": "phone"}},
    {"var": "phone"},
    {"==": [{"var": "phone"}, PHONE]},
    {"==": [PHONE, {"var": "phone"}]},
    {"!=": [{"var": "phone"}, PHONE]},
    {"==": [{"var": "phone"}, None]},
    {"and": [{"!!": {"var": "phone"}}, {"==": [{"var": "country"}, "DE"]}]},
]


@pytest.mark.parametrize("rule", ALLOWED)
def test_rules_on_the_phone_ask_is_set_is_empty_or_equals_and_sql_agrees_with_python(org, rule):
    from marketing.conditions import contact_facts, evaluate, to_q, truthy, validate

    contacts = [
        ContactFactory(org=org, phone=PHONE, country="DE"),
        ContactFactory(org=org, phone="+4915199999999", country="DE"),
        ContactFactory(org=org, phone="", country="DE"),
    ]
    validate(rule, "contact")

    selected = set(Contact.objects.filter(to_q(rule, "contact", org=org)).values_list("pk", flat=True))
    expected = {c.pk for c in contacts if truthy(evaluate(rule, contact_facts(Contact.objects.get(pk=c.pk))))}
    assert selected == expected


def test_the_library_s_has_a_phone_number_rule_still_validates(org):
    from marketing.conditions import validate

    validate({"!=": [{"var": ["phone", ""]}, ""]}, "contact")  # the trial-to-paid workflow's condition


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        ({"in": ["151", {"var": "phone"}]}, "“phone” is encrypted"),
        ({">": [{"var": "phone"}, "+4915"]}, "“phone” is encrypted"),
        ({"in": [{"var": "phone"}, [PHONE, "+4915199999999"]]}, "“phone” is encrypted"),
        ({"==": [{"var": "phone"}, {"var": "first_name"}]}, "“phone” is encrypted"),
        ({"==": [{"var": "phone"}, "0151 12345678"]}, "“phone” is compared as stored, in E.164"),
        ({"cat": [{"var": "phone"}, "x"]}, "“phone” is encrypted"),
    ],
)
def test_other_operators_on_the_phone_fail_validation_naming_it(org, rule, says):
    from django.core.exceptions import ValidationError

    from marketing.conditions import NotCompilable, to_q, validate

    with pytest.raises(ValidationError) as caught:
        validate(rule, "contact")
    assert says in " ".join(caught.value.messages)
    if "E.164" not in says and "cat" not in rule:
        with pytest.raises(NotCompilable):  # nor does SQL compare the ciphertext (were it not validated)
            to_q(rule, "contact", org=org)


def test_the_console_finds_a_contact_by_its_whole_phone_number_only(org, console):
    ana = ContactFactory(org=org, email="ana@example.com", phone=PHONE)
    ContactFactory(org=org, email="bo@example.com", phone="+4915199999999")

    def found(term: str) -> set[str]:
        page = console.get("/admin/marketing/contact/", {"q": term})
        assert page.status_code == 200
        return {c.email for c in page.context["cl"].result_list}

    assert found("0151 12345678") == {ana.email}  # the org's default country (DE) completes it
    assert found(PHONE) == {ana.email}
    assert found("12345678") == set()  # a part of a number: phones are encrypted, no partial match
    assert found("ana@") == {ana.email}


@pytest.fixture
def ssn(org):
    from marketing.models import PropertyDefinition

    return PropertyDefinition.objects.create(org=org, subject="contact", key="ssn", type="string", sensitive=True)


def stored_properties(contact: Contact) -> str:
    return raw("SELECT properties::text FROM marketing_contact WHERE id = %s", [contact.pk])[0][0]


def test_sensitive_property_values_are_encrypted_and_read_back(org, ssn):
    contact = services.contact_create(
        org=org, email="ana@example.com", properties={"ssn": "078-05-1120", "plan": "pro"}
    )

    text = stored_properties(contact)
    assert "078-05-1120" not in text and '"plan": "pro"' in text and "enc1:" in text
    assert Contact.objects.get(pk=contact.pk).properties == {"ssn": "078-05-1120", "plan": "pro"}

    contact.properties = {**contact.properties, "ssn": "219-09-9999"}
    Contact.objects.bulk_update([contact], ["properties"])  # the imports' path
    assert "219-09-9999" not in stored_properties(contact)
    assert Contact.objects.get(pk=contact.pk).properties["ssn"] == "219-09-9999"


def test_marking_a_property_sensitive_encrypts_the_values_already_stored_and_unmarking_undoes_it(org, console):
    from marketing.models import PropertyDefinition

    definition = PropertyDefinition.objects.create(org=org, subject="contact", key="passport", type="string")
    contact = services.contact_create(org=org, email="ana@example.com", properties={"passport": "X1234567"})
    assert "X1234567" in stored_properties(contact)

    page = console.get(f"/admin/marketing/propertydefinition/{definition.pk}/change/")
    assert 'name="sensitive"' in page.content.decode() and "Values are stored encrypted" in page.content.decode()
    form = {"subject": "contact", "key": "passport", "label": "", "type": "string", "options": "", "source": "user"}
    console.post(f"/admin/marketing/propertydefinition/{definition.pk}/change/", {**form, "sensitive": "on"})
    assert PropertyDefinition.objects.get(pk=definition.pk).sensitive
    assert "X1234567" not in stored_properties(contact)
    assert Contact.objects.get(pk=contact.pk).properties == {"passport": "X1234567"}

    console.post(f"/admin/marketing/propertydefinition/{definition.pk}/change/", form)
    assert "X1234567" in stored_properties(contact)


def test_only_a_contact_text_property_can_be_sensitive(org):
    from django.core.exceptions import ValidationError

    from marketing.models import PropertyDefinition

    with pytest.raises(ValidationError) as caught:
        PropertyDefinition(org=org, subject="company", key="x", type="string", sensitive=True).full_clean()
    assert "sensitive" in caught.value.message_dict
    with pytest.raises(ValidationError) as caught:
        PropertyDefinition(org=org, subject="contact", key="x", type="number", sensitive=True).full_clean()
    assert "sensitive" in caught.value.message_dict


SENSITIVE_RULES = [
    {"!!": {"var": "properties.ssn"}},
    {"!": {"var": "properties.ssn"}},
    {"==": [{"var": "properties.ssn"}, "078-05-1120"]},
    {"!=": [{"var": "properties.ssn"}, "078-05-1120"]},
    {"==": [{"var": "properties.ssn"}, None]},
    {"==": [{"var": "properties.ssn"}, ""]},
]


@pytest.mark.parametrize("rule", SENSITIVE_RULES)
def test_rules_on_a_sensitive_property_agree_in_sql_and_python(org, ssn, rule):
    from marketing.conditions import contact_facts, evaluate, to_q, truthy, validate

    contacts = [
        ContactFactory(org=org, properties={"ssn": "078-05-1120"}),
        ContactFactory(org=org, properties={"ssn": "219-09-9999"}),
        ContactFactory(org=org, properties={"ssn": ""}),
        ContactFactory(org=org, properties={}),
    ]
    validate(rule, "contact")

    selected = set(Contact.objects.filter(to_q(rule, "contact", org=org)).values_list("pk", flat=True))
    expected = {c.pk for c in contacts if truthy(evaluate(rule, contact_facts(Contact.objects.get(pk=c.pk))))}
    assert selected == expected


@pytest.mark.parametrize(
    "rule",
    [
        {"in": ["078", {"var": "properties.ssn"}]},
        {">": [{"var": "properties.ssn"}, "1"]},
        {"==": [{"var": "properties.ssn"}, 78]},
    ],
)
def test_other_operators_on_a_sensitive_property_fail_validation_naming_it(org, ssn, rule):
    from django.core.exceptions import ValidationError

    from marketing.conditions import validate

    with pytest.raises(ValidationError, match=r"properties\.ssn"):
        validate(rule, "contact")


def test_phones_written_in_clear_by_raw_sql_are_encrypted_for_one_org(org, other_org):
    from marketing.key_rotation import contacts_phones_encrypt

    mine = ContactFactory(org=org, phone="")
    theirs = ContactFactory(org=other_org, phone="")
    for contact in (mine, theirs):
        with org_context(contact.org):
            raw("UPDATE marketing_contact SET phone = %s WHERE id = %s RETURNING id", [PHONE, contact.pk])

    assert contacts_phones_encrypt(org=org) == 1

    phone, index = stored_phone(mine)
    assert phone.startswith("enc1:") and index == phone_index(PHONE)
    with org_context(other_org):
        assert stored_phone(theirs) == (PHONE, "")  # another org's rows are not touched


def test_the_outbox_finds_texts_by_the_whole_number_and_emails_by_part_of_the_address(org, member_factory):
    from django.test import Client

    admin = member_factory(org, "admin", username="ada")
    client = Client()
    client.force_login(admin)
    ana = ContactFactory(org=org, email="ana@example.com", phone=PHONE)
    sms = Message.objects.create(org=org, contact=ana, channel="sms", to=PHONE, idempotency_key="s1")
    email = Message.objects.create(org=org, contact=ana, channel="email", to="ana@example.com", idempotency_key="e1")

    def found(term: str) -> set[int]:
        page = client.get("/admin/channels_app/message/", {"q": term})
        assert page.status_code == 200
        return {m.pk for m in page.context["cl"].result_list}

    assert sms.pk in found("+49 151 12345678")
    assert found("ana@exam") == {sms.pk, email.pk}  # the contact's email matches both
    assert Message.objects.filter(to="ana@example.com").get() == email  # a recipient kept in clear
    with pytest.raises(FieldError, match="encrypted"):
        Message.objects.filter(to=PHONE).exists()


def test_the_property_page_marks_a_property_sensitive_in_chromium(org, live_server, member_factory):
    from marketing.models import PropertyDefinition
    from tests.browser import WIDTH, assert_no_sideways_scroll, launch, login, shots_dir

    member_factory(org, "admin", username="ada")
    contact = ContactFactory(org=org, properties={"tax_id": "DE123456789"})
    PropertyDefinition.objects.create(org=org, subject="contact", key="tax_id", type="string")
    shots = shots_dir("field-encryption")

    with launch() as browser:
        page = browser.new_page(viewport={"width": WIDTH, "height": 900})
        login(page, live_server.url, "ada", next_url="/admin/marketing/propertydefinition/")
        page.get_by_role("link", name="tax_id").click()
        checkbox = page.locator("#id_sensitive")
        help_text = page.locator(".field-sensitive, #id_sensitive_helptext").first.inner_text()
        assert "Values are stored encrypted" in help_text
        checkbox.check()
        assert_no_sideways_scroll(page)
        page.screenshot(path=str(shots / "property-sensitive-form.png"), full_page=True)
        with page.expect_navigation():
            page.locator("[name=_save]").click()
        assert "values are now encrypted" in page.content()
        assert_no_sideways_scroll(page)
        page.screenshot(path=str(shots / "property-list.png"), full_page=True)

    assert "DE123456789" not in stored_properties(contact)
    assert Contact.objects.get(pk=contact.pk).properties == {"tax_id": "DE123456789"}
