import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("channels_app", "0005_console_indexes"),
        ("compliance", "0003_preference_topics"),
    ]

    operations = [
        migrations.AddField(
            model_name="messagetemplate",
            name="topic",
            field=models.ForeignKey(
                blank=True,
                help_text="Marketing only: contacts who left this topic in the preference centre do not get it.",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="compliance.subscriptiontype",
            ),
        ),
    ]
