"""Row-level security on marketing's tenant tables (docs/tenancy.md, "Row-level security").

The contact–tag table, list memberships and import row errors had no org of their own: they
get ``org_id`` from their contact or job (backfilled, then kept by a trigger) so that they can
carry the same policy as every other tenant table.
"""

from django.db import migrations

from marketing.postgres_operations import org_column_from_parent, row_security


class Migration(migrations.Migration):
    dependencies = [("marketing", "0012_invitations")]

    operations = [
        org_column_from_parent("marketing_contact_tags", parent_column="contact_id", parent_table="marketing_contact"),
        org_column_from_parent(
            "marketing_listmembership", parent_column="contact_id", parent_table="marketing_contact"
        ),
        org_column_from_parent("marketing_importrowerror", parent_column="job_id", parent_table="marketing_importjob"),
        row_security(
            "marketing_anonymousid",
            "marketing_apikey",
            "marketing_company",
            "marketing_contact",
            "marketing_contact_tags",
            "marketing_contactlist",
            "marketing_contactmerge",
            "marketing_dispatchbatch",
            "marketing_event",
            "marketing_identityconflict",
            "marketing_importjob",
            "marketing_importrowerror",
            "marketing_invitation",
            "marketing_listmembership",
            "marketing_membership",
            "marketing_propertydefinition",
            "marketing_segment",
            "marketing_segmentmembership",
            "marketing_tag",
        ),
    ]
