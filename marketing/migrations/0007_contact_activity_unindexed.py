"""``Contact.last_activity_at`` is rewritten for every contact of every dispatched batch (the
``last_activity`` consumer). Indexed, each rewrite wrote an entry in all fifteen of the table's
indexes; unindexed (and with the half-empty pages of 0006) it is a HOT update that touches none.
Its readers scan an org's contacts anyway: decay hashes them, segments filter them, and the
hourly date-relative trigger reads one org's range once an hour.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("marketing", "0006_score_hot_updates"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="contact",
            name="contact_org_activity",
        ),
    ]
