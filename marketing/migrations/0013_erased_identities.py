import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("marketing", "0012_invitations")]

    operations = [
        migrations.CreateModel(
            name="ErasedIdentity",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("kind", models.CharField(choices=[("email", "Email"), ("phone", "Phone")], max_length=5)),
                (
                    "digest",
                    models.CharField(
                        help_text="HMAC-SHA256 of the normalised value under ERASURE_HASH_KEY.", max_length=64
                    ),
                ),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "org",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="marketing.organization"
                    ),
                ),
            ],
            options={
                "verbose_name": "erased identity",
                "verbose_name_plural": "erased identities",
                "constraints": [
                    models.UniqueConstraint(fields=("org", "kind", "digest"), name="erasedidentity_unique")
                ],
            },
        ),
    ]
