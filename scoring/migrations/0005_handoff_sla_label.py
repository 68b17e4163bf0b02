from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("scoring", "0004_contactscore_decayed_at")]

    operations = [
        migrations.AlterField(
            model_name="handoff",
            name="sla_due_at",
            field=models.DateTimeField(verbose_name="SLA due"),
        ),
    ]
