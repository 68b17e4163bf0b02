"""``Contact.score`` is rewritten for a million contacts at once when scores decay, and on every
scored event: without an index on it and with half of each page left free, that rewrite is a HOT
update (the new row version on the same page, no index touched) instead of one entry in each of
the table's fifteen indexes per contact. Decay's mirror of 1,000,000 contacts went from 89 s to
8 s on the development machine (docs/scoring.md, "Why decay is fast"). Ranking by score reads
``scoring.ContactScore`` or filters on the band; a filter on ``score`` scans the org's contacts.
"""

from django.db import migrations

from marketing.postgres_operations import fillfactor


class Migration(migrations.Migration):
    dependencies = [
        ("marketing", "0005_contact_phone_index"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="contact",
            name="contact_org_score",
        ),
        fillfactor("marketing_contact", 50),
    ]
