"""A contact's score row changes on every scored event and on every decay: with no index on the
score and half of each page free, those updates are HOT (no index entry written), as for
``Contact.score`` (marketing 0006)."""

from django.db import migrations

from marketing.postgres_operations import fillfactor


class Migration(migrations.Migration):
    dependencies = [
        ("scoring", "0001_initial"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="contactscore",
            name="contactscore_model_score",
        ),
        fillfactor("scoring_contactscore", 50),
    ]
