import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("marketing", "0011_library_origin")]

    operations = [
        migrations.CreateModel(
            name="Invitation",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("email", models.EmailField(max_length=254)),
                (
                    "role",
                    models.CharField(
                        choices=[
                            ("admin", "Admin"),
                            ("marketer", "Marketer"),
                            ("sales", "Sales"),
                            ("analyst", "Analyst"),
                            ("compliance", "Compliance"),
                        ],
                        default="marketer",
                        max_length=20,
                    ),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("accepted", "Accepted"),
                            ("revoked", "Revoked"),
                            ("expired", "Expired"),
                        ],
                        default="pending",
                        max_length=10,
                    ),
                ),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "sent_at",
                    models.DateTimeField(
                        default=django.utils.timezone.now, help_text="When the newest email was sent."
                    ),
                ),
                ("sends", models.PositiveIntegerField(default=1, help_text="Emails sent: the first and each resend.")),
                ("expires_at", models.DateTimeField(help_text="The newest link stops working then.")),
                (
                    "ended_at",
                    models.DateTimeField(
                        blank=True, help_text="When it was accepted, revoked or found expired.", null=True
                    ),
                ),
                (
                    "accepted_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "invited_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "org",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="marketing.organization"
                    ),
                ),
            ],
            options={
                "indexes": [models.Index(fields=["org", "sent_at"], name="invitation_org_sent")],
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("status", "pending")),
                        fields=("org", "email"),
                        name="invitation_one_pending_per_email",
                    )
                ],
            },
        ),
    ]
