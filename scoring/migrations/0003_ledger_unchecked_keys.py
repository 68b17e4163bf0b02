"""The score ledger's foreign keys are no longer checked by PostgreSQL row by row: each check
looked up and share-locked the contact, model and org an inserted row names, which cost a
1,000,000-contact decay 12 s at commit (more than writing the rows) and every scored batch one
lookup per key and row. Only scoring's code writes the ledger, from rows it has just loaded, and
every deletion goes through the ORM, whose cascades keep it whole (see ``ScoreLedger``).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("marketing", "0007_contact_activity_unindexed"),
        ("scoring", "0002_score_hot_updates"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="scoreledger",
            name="actor",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="scoreledger",
            name="contact",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="marketing.contact",
            ),
        ),
        migrations.AlterField(
            model_name="scoreledger",
            name="event",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="marketing.event",
            ),
        ),
        migrations.AlterField(
            model_name="scoreledger",
            name="model",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="scoring.scoringmodel",
            ),
        ),
        migrations.AlterField(
            model_name="scoreledger",
            name="org",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="marketing.organization",
            ),
        ),
        migrations.AlterField(
            model_name="scoreledger",
            name="rule",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="scoring.scoringrule",
            ),
        ),
    ]
