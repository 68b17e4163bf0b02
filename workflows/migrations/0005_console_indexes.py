from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("workflows", "0004_instance_moves")]

    operations = []
