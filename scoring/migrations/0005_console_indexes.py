from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("scoring", "0004_contactscore_decayed_at")]

    operations = []
