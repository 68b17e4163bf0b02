from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("marketing", "0011_library_origin")]

    operations = []
