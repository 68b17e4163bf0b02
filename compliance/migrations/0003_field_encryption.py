"""The network addresses in consent proofs (the IP, an SMS sender's number) encrypted at rest;
existing proofs are converted in batches of 1,000 (docs/encryption.md)."""

import json

from django.db import migrations

import marketing.field_encryption

BATCH = 1000


def encrypt_proofs(apps, schema_editor):
    from marketing.field_encryption import EncryptedNetworkAddressesJSONField

    field = EncryptedNetworkAddressesJSONField()
    connection = schema_editor.connection
    last = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, proof FROM compliance_consentrecord WHERE id > %s ORDER BY id LIMIT %s", [last, BATCH]
            )
            rows = cursor.fetchall()
            if not rows:
                return
            changed = []
            for pk, proof in rows:
                proof = json.loads(proof) if isinstance(proof, str) else proof
                encrypted = field.get_prep_value(proof)
                if encrypted != proof:
                    changed.append((json.dumps(encrypted), pk))
            cursor.executemany("UPDATE compliance_consentrecord SET proof = %s WHERE id = %s", changed)
        last = rows[-1][0]


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0002_consent_outlives_contact_and_requests"),
        ("marketing", "0013_field_encryption"),
    ]

    operations = [
        migrations.AlterField(
            model_name="consentrecord",
            name="proof",
            field=marketing.field_encryption.EncryptedNetworkAddressesJSONField(
                blank=True, default=dict, help_text="IP, user agent, form, text shown, message id…"
            ),
        ),
        migrations.RunPython(encrypt_proofs, migrations.RunPython.noop, elidable=False),
    ]
