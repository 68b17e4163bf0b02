import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import compliance.models
from marketing.postgres_operations import row_security


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0002_consent_outlives_contact_and_requests"),
        ("marketing", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="RetentionPolicy",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("kind", models.CharField(choices=compliance.models._data_kinds, max_length=20)),
                (
                    "days",
                    models.PositiveIntegerField(
                        blank=True,
                        help_text="Rows older than this many days are purged; empty keeps them forever.",
                        null=True,
                    ),
                ),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("last_purged_at", models.DateTimeField(blank=True, null=True)),
                (
                    "last_purged_rows",
                    models.PositiveIntegerField(default=0, help_text="Rows the last purge removed."),
                ),
                (
                    "org",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="marketing.organization"
                    ),
                ),
                (
                    "updated_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "data retention",
                "verbose_name_plural": "data retention",
                "constraints": [models.UniqueConstraint(fields=("org", "kind"), name="retentionpolicy_one_per_kind")],
            },
        ),
        row_security("compliance_retentionpolicy"),
    ]
