# Identity conflicts a public key may not merge (placeholder: operations are filled in by the change that needs them)

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("marketing", "0008_membership_sales_manager")]

    operations = [
        migrations.CreateModel(
            name="IdentityConflict",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "identifiers",
                    models.JSONField(
                        default=dict,
                        help_text='Per identifier the call sent, its value and whose it is: {"value": …, "contact": id}.',
                    ),
                ),
                ("source", models.CharField(help_text="identify, alias, form or event.", max_length=40)),
                (
                    "summary",
                    models.JSONField(
                        blank=True,
                        default=dict,
                        help_text="The call's shape: its kind and the names (not values) of what it sent.",
                    ),
                ),
                ("occurrences", models.PositiveIntegerField(default=1)),
                (
                    "status",
                    models.CharField(
                        choices=[("open", "Open"), ("merged", "Merged"), ("dismissed", "Dismissed")],
                        default="open",
                        max_length=10,
                    ),
                ),
                ("resolved_at", models.DateTimeField(blank=True, null=True)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("last_seen_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "contact",
                    models.ForeignKey(
                        help_text="The contact the call named (its email or user id); the call was stored against it.",
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="marketing.contact",
                    ),
                ),
                (
                    "merge",
                    models.ForeignKey(
                        blank=True,
                        help_text="The merge that resolved it.",
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="marketing.contactmerge",
                    ),
                ),
                (
                    "org",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="marketing.organization"
                    ),
                ),
                (
                    "other_contact",
                    models.ForeignKey(
                        help_text="The other known contact the call's identifiers point at.",
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="marketing.contact",
                    ),
                ),
                (
                    "resolved_by",
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
                "ordering": ["-last_seen_at", "-pk"],
                "indexes": [models.Index(fields=["org", "status", "last_seen_at"], name="identityconflict_org_status")],
            },
        ),
    ]
