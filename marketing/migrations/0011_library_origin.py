# Segments made by a library template remember it

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("marketing", "0010_machine_event_types")]

    operations = [
        migrations.AddField(
            model_name="segment",
            name="library_template",
            field=models.SlugField(
                blank=True, help_text="The library template that made it (empty: made by hand).", max_length=100
            ),
        ),
    ]
