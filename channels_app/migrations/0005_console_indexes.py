from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("channels_app", "0004_library_origin")]

    operations = []
