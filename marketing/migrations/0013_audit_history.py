import django.db.models.deletion
import django.utils.timezone
import pgtrigger.compiler
import pgtrigger.migrations
from django.conf import settings
from django.db import migrations, models

from marketing.append_only import CREATE_FUNCTION, DROP_FUNCTION
from marketing.postgres_operations import PostgresOnlySQL


class Migration(migrations.Migration):
    dependencies = [("marketing", "0012_invitations")]

    operations = [
        migrations.CreateModel(
            name="AuditEntry",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "actor_label",
                    models.CharField(
                        blank=True,
                        help_text="The user's name, the key's name and prefix, or the task or command.",
                        max_length=150,
                        verbose_name="actor",
                    ),
                ),
                (
                    "source",
                    models.CharField(
                        choices=[
                            ("console", "Console"),
                            ("api", "API"),
                            ("task", "Task"),
                            ("command", "Command"),
                            ("public", "Public page"),
                        ],
                        max_length=10,
                    ),
                ),
                (
                    "verb",
                    models.CharField(
                        choices=[
                            ("viewed", "Viewed"),
                            ("listed", "Listed"),
                            ("created", "Created"),
                            ("changed", "Changed"),
                            ("deleted", "Deleted"),
                            ("exported", "Exported"),
                            ("downloaded", "Downloaded"),
                            ("erased", "Erased"),
                            ("merged", "Merged"),
                            ("published", "Published"),
                            ("imported", "Imported"),
                            ("verified", "Verified"),
                            ("rejected", "Rejected"),
                            ("purged", "Purged"),
                        ],
                        max_length=20,
                    ),
                ),
                (
                    "target_type",
                    models.CharField(blank=True, help_text="app_label.model, e.g. marketing.contact.", max_length=100),
                ),
                ("target_id", models.CharField(blank=True, max_length=64)),
                (
                    "fields",
                    models.JSONField(
                        blank=True, default=list, help_text="Names of the fields read or changed; never values."
                    ),
                ),
                ("count", models.PositiveIntegerField(blank=True, help_text="Rows listed or exported.", null=True)),
                ("request_id", models.CharField(blank=True, max_length=32)),
                (
                    "actor_api_key",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="marketing.apikey",
                        verbose_name="API key",
                    ),
                ),
                (
                    "actor_user",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="user",
                    ),
                ),
                (
                    "org",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="marketing.organization",
                    ),
                ),
            ],
            options={
                "verbose_name": "audit entry",
                "verbose_name_plural": "audit log",
                "ordering": ["-at", "-id"],
                "indexes": [
                    models.Index(fields=["org", "-at"], name="auditentry_org_at"),
                    models.Index(fields=["org", "target_type", "target_id"], name="auditentry_org_target"),
                    models.Index(fields=["org", "actor_user", "-at"], name="auditentry_org_user"),
                ],
            },
        ),
        # The function the append-only trigger runs (marketing/append_only.py), before the trigger.
        PostgresOnlySQL(CREATE_FUNCTION, DROP_FUNCTION),
        pgtrigger.migrations.AddTrigger(
            model_name="auditentry",
            trigger=pgtrigger.compiler.Trigger(
                name="auditentry_append_only",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    execute="append_only_refuse()",
                    func="RETURN NULL;",
                    hash="b99985f13884c7c3baf7e1fa016d76de9b501c6e",
                    level="STATEMENT",
                    operation="UPDATE OR DELETE OR TRUNCATE",
                    pgid="pgtrigger_auditentry_append_only_57a9f",
                    table="marketing_auditentry",
                    when="BEFORE",
                ),
            ),
        ),
    ]
