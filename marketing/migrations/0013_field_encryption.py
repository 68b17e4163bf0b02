"""Contact.phone encrypted at rest, with phone_bidx (its keyed hash) as the lookup column: the
existing phones are encrypted and indexed in batches of 1,000 (docs/encryption.md)."""

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
    dependencies = [("marketing", "0012_invitations")]

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
    ]
