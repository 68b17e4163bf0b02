import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

from marketing.postgres_operations import row_security


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0002_consent_outlives_contact_and_requests"),
        ("marketing", "0012_invitations"),
        ("marketing", "0013_row_security"),
    ]

    operations = [
        migrations.CreateModel(
            name="SubscriptionType",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=120)),
                (
                    "description",
                    models.CharField(
                        blank=True,
                        help_text="One sentence shown under the topic in the preference centre.",
                        max_length=300,
                    ),
                ),
                (
                    "purpose",
                    models.CharField(
                        choices=[
                            ("email_marketing", "Email marketing"),
                            ("sms", "SMS marketing"),
                            ("push", "Web push"),
                            ("tracking", "Tracking"),
                            ("profiling", "Profiling"),
                            ("sale_sharing", "Sale or sharing of data"),
                        ],
                        default="email_marketing",
                        help_text="The channel's purpose its messages need consent for.",
                        max_length=20,
                    ),
                ),
                (
                    "active",
                    models.BooleanField(
                        default=True, help_text="Inactive topics are not offered in the preference centre."
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "org",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="marketing.organization"
                    ),
                ),
            ],
            options={"verbose_name": "topic", "ordering": ["name"]},
        ),
        migrations.CreateModel(
            name="TopicChoice",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("subscribed", models.BooleanField()),
                ("source", models.CharField(help_text="preference_centre, console, api…", max_length=40)),
                ("proof", models.JSONField(blank=True, default=dict, help_text="IP, user agent, message id…")),
                ("recorded_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "contact",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="topic_choices",
                        to="marketing.contact",
                    ),
                ),
                (
                    "org",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="marketing.organization"
                    ),
                ),
                (
                    "topic",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="choices",
                        to="compliance.subscriptiontype",
                    ),
                ),
            ],
            options={"ordering": ["-recorded_at", "-id"]},
        ),
        migrations.AddConstraint(
            model_name="subscriptiontype",
            constraint=models.UniqueConstraint(fields=("org", "name"), name="subscriptiontype_unique_name"),
        ),
        migrations.AddIndex(
            model_name="topicchoice",
            index=models.Index(fields=["org", "contact", "topic", "-recorded_at"], name="topic_choice_latest"),
        ),
        # The org policy every tenant table has (marketing.postgres_operations); a no-op off PostgreSQL.
        row_security("compliance_subscriptiontype", "compliance_topicchoice"),
    ]
