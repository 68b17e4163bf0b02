# Placeholder of the audit work; filled by its owner, deleted if it stays empty.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("compliance", "0002_consent_outlives_contact_and_requests")]

    operations = []
