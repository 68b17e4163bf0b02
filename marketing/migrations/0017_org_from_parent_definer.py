"""The triggers that copy ``org_id`` from a parent row read it by its primary key as the
function's owner, and keep it only when the session acts for that org (or for none): read as
the caller, row-level security's condition sent the planner down the org's whole index for each
row of a table without statistics yet (marketing.postgres_operations.org_from_parent_function)."""

from django.db import migrations

from marketing.postgres_operations import org_from_parent_definer


class Migration(migrations.Migration):
    dependencies = [("marketing", "0016_erased_user_ids"), ("scoring", "0007_merge_privacy")]

    operations = [
        org_from_parent_definer("marketing_contact_tags", parent_column="contact_id", parent_table="marketing_contact"),
        org_from_parent_definer(
            "marketing_listmembership", parent_column="contact_id", parent_table="marketing_contact"
        ),
        org_from_parent_definer("marketing_importrowerror", parent_column="job_id", parent_table="marketing_importjob"),
        org_from_parent_definer(
            "scoring_handoffpolicy_reps", parent_column="handoffpolicy_id", parent_table="scoring_handoffpolicy"
        ),
    ]
