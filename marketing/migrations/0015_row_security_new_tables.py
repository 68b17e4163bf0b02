"""Row-level security on the marketing tables made beside 0013_row_security (docs/tenancy.md,
"Row-level security"): the erased identities."""

from django.db import migrations

from marketing.postgres_operations import row_security


class Migration(migrations.Migration):
    dependencies = [("marketing", "0014_merge_privacy")]

    operations = [row_security("marketing_erasedidentity")]
