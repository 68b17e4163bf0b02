"""Row-level security on the scoring tables (docs/tenancy.md, "Row-level security").

A handoff policy's reps (a many-to-many table) get ``org_id`` from their policy (backfilled,
then kept by a trigger) so that they can carry the same policy as every other tenant table.
"""

from django.db import migrations

from marketing.postgres_operations import org_column_from_parent, row_security


class Migration(migrations.Migration):
    dependencies = [("scoring", "0005_handoff_sla_label"), ("marketing", "0013_row_security")]

    operations = [
        org_column_from_parent(
            "scoring_handoffpolicy_reps", parent_column="handoffpolicy_id", parent_table="scoring_handoffpolicy"
        ),
        row_security(
            "scoring_contactscore",
            "scoring_handoff",
            "scoring_handoffpolicy",
            "scoring_handoffpolicy_reps",
            "scoring_predictivemodel",
            "scoring_scoreledger",
            "scoring_scoringmodel",
            "scoring_scoringrule",
        ),
    ]
