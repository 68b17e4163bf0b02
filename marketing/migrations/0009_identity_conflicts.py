# Identity conflicts a public key may not merge (placeholder: operations are filled in by the change that needs them)

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("marketing", "0008_membership_sales_manager")]

    operations = []
