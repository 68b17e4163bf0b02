"""Contact.phone encrypted at rest, with phone_bidx (its keyed hash) as the lookup column: the
existing phones are encrypted and indexed in batches of 1,000 (docs/encryption.md). Custom
properties can be marked sensitive (their values encrypted in Contact.properties); the property
definitions' change history records the flag too."""

import pgtrigger.compiler
import pgtrigger.migrations
from django.db import migrations, models

import marketing.field_encryption

BATCH = 1000


def encrypt_phones(apps, schema_editor):
    from marketing.field_encryption import encrypt, phone_index

    connection = schema_editor.connection
    last = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, phone FROM marketing_contact WHERE id > %s AND phone <> '' AND phone NOT LIKE 'enc1:%%' "
                "ORDER BY id LIMIT %s",
                [last, BATCH],
            )
            rows = cursor.fetchall()
            if not rows:
                return
            cursor.executemany(
                "UPDATE marketing_contact SET phone = %s, phone_bidx = %s WHERE id = %s",
                [(encrypt(phone), phone_index(phone), pk) for pk, phone in rows],
            )
        last = rows[-1][0]


def decrypt_phones(apps, schema_editor):
    from marketing.field_encryption import decrypt

    connection = schema_editor.connection
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, phone FROM marketing_contact WHERE phone LIKE 'enc1:%%'")
        rows = cursor.fetchall()
        cursor.executemany(
            "UPDATE marketing_contact SET phone = %s WHERE id = %s", [(decrypt(phone)[:20], pk) for pk, phone in rows]
        )


class Migration(migrations.Migration):
    dependencies = [("marketing", "0012_invitations"), ("marketing", "0013_audit_history")]

    operations = [
        migrations.RemoveIndex(model_name="contact", name="contact_phone"),
        migrations.AddField(
            model_name="contact",
            name="phone_bidx",
            field=marketing.field_encryption.BlindIndexField(source="phone"),
        ),
        migrations.AlterField(
            model_name="contact",
            name="phone",
            field=marketing.field_encryption.EncryptedTextField(
                blank=True,
                help_text="E.164, e.g. +4915112345678. Stored encrypted; searching finds exact numbers only.",
                index="phone_bidx",
                max_length=20,
            ),
        ),
        migrations.RunPython(encrypt_phones, decrypt_phones, elidable=False),
        migrations.AddIndex(
            model_name="contact",
            index=models.Index(
                condition=models.Q(("phone_bidx", ""), _negated=True), fields=["phone_bidx"], name="contact_phone_bidx"
            ),
        ),
        pgtrigger.migrations.RemoveTrigger(
            model_name="propertydefinition",
            name="insert_insert",
        ),
        pgtrigger.migrations.RemoveTrigger(
            model_name="propertydefinition",
            name="update_update",
        ),
        pgtrigger.migrations.RemoveTrigger(
            model_name="propertydefinition",
            name="delete_delete",
        ),
        migrations.AddField(
            model_name="propertydefinition",
            name="sensitive",
            field=models.BooleanField(
                default=False,
                help_text="Contact properties only, text or one of a set. Values are stored encrypted; rules can only ask whether it is set, whether it is empty, or whether it equals a value.",
            ),
        ),
        migrations.AddField(
            model_name="propertydefinitionevent",
            name="sensitive",
            field=models.BooleanField(
                default=False,
                help_text="Contact properties only, text or one of a set. Values are stored encrypted; rules can only ask whether it is set, whether it is empty, or whether it equals a value.",
            ),
        ),
        migrations.AlterField(
            model_name="contact",
            name="properties",
            field=marketing.field_encryption.SensitivePropertiesField(blank=True, default=dict),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="propertydefinition",
            trigger=pgtrigger.compiler.Trigger(
                name="insert_insert",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "marketing_propertydefinitionevent" ("created_at", "id", "key", "label", "options", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "sensitive", "source", "subject", "type") VALUES (NEW."created_at", NEW."id", NEW."key", NEW."label", NEW."options", NEW."org_id", _pgh_attach_context(), NOW(), \'insert\', NEW."id", NEW."sensitive", NEW."source", NEW."subject", NEW."type"); RETURN NULL;',
                    hash="f0da9b3615130170aac27ae15d6a19170ffd40f7",
                    operation="INSERT",
                    pgid="pgtrigger_insert_insert_bf15e",
                    table="marketing_propertydefinition",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="propertydefinition",
            trigger=pgtrigger.compiler.Trigger(
                name="update_update",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    condition="WHEN (OLD.* IS DISTINCT FROM NEW.*)",
                    func='INSERT INTO "marketing_propertydefinitionevent" ("created_at", "id", "key", "label", "options", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "sensitive", "source", "subject", "type") VALUES (NEW."created_at", NEW."id", NEW."key", NEW."label", NEW."options", NEW."org_id", _pgh_attach_context(), NOW(), \'update\', NEW."id", NEW."sensitive", NEW."source", NEW."subject", NEW."type"); RETURN NULL;',
                    hash="0dee698b3a4b1816932839e68c76270e54f60db5",
                    operation="UPDATE",
                    pgid="pgtrigger_update_update_b3beb",
                    table="marketing_propertydefinition",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="propertydefinition",
            trigger=pgtrigger.compiler.Trigger(
                name="delete_delete",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "marketing_propertydefinitionevent" ("created_at", "id", "key", "label", "options", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "sensitive", "source", "subject", "type") VALUES (OLD."created_at", OLD."id", OLD."key", OLD."label", OLD."options", OLD."org_id", _pgh_attach_context(), NOW(), \'delete\', OLD."id", OLD."sensitive", OLD."source", OLD."subject", OLD."type"); RETURN NULL;',
                    hash="e31121f727cfca35a24b650190d66d45e5fb31b7",
                    operation="DELETE",
                    pgid="pgtrigger_delete_delete_0ad1a",
                    table="marketing_propertydefinition",
                    when="AFTER",
                ),
            ),
        ),
    ]
