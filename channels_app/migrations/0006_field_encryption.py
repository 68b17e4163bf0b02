"""SMS recipients encrypted at rest (Message.to holding a phone number), and SMS suppressions
keyed by the phone's keyed hash instead of the number (docs/encryption.md). Existing rows are
converted in batches of 1,000."""

from django.db import migrations, models

import marketing.field_encryption

BATCH = 1000


def encrypt_recipients(apps, schema_editor):
    from marketing.field_encryption import encrypt, is_phone, phone_index

    connection = schema_editor.connection
    last = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                'SELECT id, "to" FROM channels_app_message WHERE id > %s AND "to" LIKE %s ORDER BY id LIMIT %s',
                [last, "+%", BATCH],
            )
            rows = cursor.fetchall()
            if not rows:
                break
            cursor.executemany(
                'UPDATE channels_app_message SET "to" = %s WHERE id = %s',
                [(encrypt(to), pk) for pk, to in rows if is_phone(to)],
            )
        last = rows[-1][0]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, org_id, channel, address FROM channels_app_suppression WHERE address LIKE %s", ["+%"]
        )
        for pk, org_id, channel, address in cursor.fetchall():
            if not is_phone(address):
                continue
            keyed = phone_index(address)
            cursor.execute(
                "SELECT 1 FROM channels_app_suppression WHERE org_id = %s AND channel = %s AND address = %s",
                [org_id, channel, keyed],
            )
            if cursor.fetchone():  # kept already under its hash: the older row only repeats it
                cursor.execute("DELETE FROM channels_app_suppression WHERE id = %s", [pk])
            else:
                cursor.execute("UPDATE channels_app_suppression SET address = %s WHERE id = %s", [keyed, pk])


def decrypt_recipients(apps, schema_editor):
    from marketing.field_encryption import decrypt

    with schema_editor.connection.cursor() as cursor:
        cursor.execute('SELECT id, "to" FROM channels_app_message WHERE "to" LIKE \'enc1:%%\'')
        rows = cursor.fetchall()
        plain = [(decrypt(to), pk) for pk, to in rows]
        cursor.executemany('UPDATE channels_app_message SET "to" = %s WHERE id = %s', plain)


class Migration(migrations.Migration):
    dependencies = [("channels_app", "0005_console_indexes"), ("marketing", "0013_field_encryption")]

    operations = [
        migrations.AlterField(
            model_name="message",
            name="to",
            field=marketing.field_encryption.EncryptedTextField(
                help_text="Address, phone number (stored encrypted), subscription or URL.",
                max_length=500,
                only_phones=True,
            ),
        ),
        migrations.AlterField(
            model_name="suppression",
            name="address",
            field=models.CharField(
                help_text="Lower-cased email, a phone's keyed hash (older rows: E.164), or a SHA-256 hash.",
                max_length=320,
            ),
        ),
        migrations.RunPython(encrypt_recipients, decrypt_recipients, elidable=False),
    ]
