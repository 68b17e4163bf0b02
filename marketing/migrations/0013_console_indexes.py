from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("marketing", "0012_invitations")]

    operations = []
