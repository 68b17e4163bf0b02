"""Decay's "once per window" marker moves from the ledger to the score row: ``decayed_at`` is
set by the statement that decays the score, and read instead of each contact's newest ``decay``
ledger row (which meant scanning the whole ledger, a table that only grows, on every run). Rows
that decayed before get the time of their newest decay row."""

from django.db import migrations, models

BACKFILL = """
UPDATE scoring_contactscore SET decayed_at = (
    SELECT max(l.at) FROM scoring_scoreledger l
    WHERE l.contact_id = scoring_contactscore.contact_id
      AND l.model_id = scoring_contactscore.model_id AND l.reason = 'decay'
)
WHERE EXISTS (
    SELECT 1 FROM scoring_scoreledger l
    WHERE l.contact_id = scoring_contactscore.contact_id
      AND l.model_id = scoring_contactscore.model_id AND l.reason = 'decay'
)
"""


class Migration(migrations.Migration):
    dependencies = [
        ("scoring", "0003_ledger_unchecked_keys"),
    ]

    operations = [
        migrations.AddField(
            model_name="contactscore",
            name="decayed_at",
            field=models.DateTimeField(blank=True, help_text="When the score last decayed.", null=True),
        ),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop, elidable=False),
    ]
