import django.db.models.deletion
import django.db.models.manager
import django.utils.timezone
import pgtrigger.compiler
import pgtrigger.migrations
from django.conf import settings
from django.db import migrations, models

import marketing.models
from marketing.append_only import CREATE_FUNCTION, DROP_FUNCTION
from marketing.postgres_operations import PostgresOnlySQL, row_security


class Migration(migrations.Migration):
    dependencies = [("marketing", "0012_invitations"), ("pghistory", "0007_auto_20250421_0444")]

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
        # Configuration models' change history (marketing/change_history.py).
        migrations.CreateModel(
            name="ApiKeyEvent",
            fields=[
                ("pgh_id", models.AutoField(primary_key=True, serialize=False)),
                ("pgh_created_at", models.DateTimeField(auto_now_add=True)),
                ("pgh_label", models.TextField(help_text="The event label.")),
                ("id", models.BigIntegerField()),
                ("name", models.CharField(max_length=100)),
                ("prefix", models.CharField(max_length=8)),
                (
                    "scope",
                    models.CharField(
                        choices=[
                            ("server", "Server (full API)"),
                            ("write", "Write (tracking and forms only; safe to embed in a web page)"),
                        ],
                        default="server",
                        max_length=10,
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("revoked_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "abstract": False,
            },
        ),
        migrations.CreateModel(
            name="MembershipEvent",
            fields=[
                ("pgh_id", models.AutoField(primary_key=True, serialize=False)),
                ("pgh_created_at", models.DateTimeField(auto_now_add=True)),
                ("pgh_label", models.TextField(help_text="The event label.")),
                ("id", models.BigIntegerField()),
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
                    "sales_manager",
                    models.BooleanField(
                        default=False,
                        help_text="Sees every rep's handoffs in this organisation and reassigns them (admins always do).",
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "abstract": False,
            },
        ),
        migrations.CreateModel(
            name="OrganizationEvent",
            fields=[
                ("pgh_id", models.AutoField(primary_key=True, serialize=False)),
                ("pgh_created_at", models.DateTimeField(auto_now_add=True)),
                ("pgh_label", models.TextField(help_text="The event label.")),
                ("id", models.BigIntegerField()),
                ("slug", models.SlugField(db_index=False, max_length=64)),
                ("name", models.CharField(max_length=200)),
                (
                    "postal_address",
                    models.TextField(
                        blank=True, help_text="Printed in every marketing email, as anti-spam laws require."
                    ),
                ),
                (
                    "default_time_zone",
                    models.CharField(default="UTC", max_length=64, validators=[marketing.models.validate_time_zone]),
                ),
                (
                    "default_country",
                    models.CharField(
                        default="US",
                        help_text="Used to read phone numbers written without a country code.",
                        max_length=2,
                        validators=[marketing.models.validate_country],
                    ),
                ),
                ("from_name", models.CharField(blank=True, max_length=200)),
                ("from_email", models.EmailField(blank=True, max_length=254)),
                (
                    "frequency_caps",
                    models.JSONField(
                        blank=True,
                        default=dict,
                        help_text='Per channel, e.g. {"email": {"day": 2, "week": 5}, "sms": {"day": 1}}.',
                    ),
                ),
                ("quiet_hours_start", models.TimeField(blank=True, help_text="In the contact's time zone.", null=True)),
                ("quiet_hours_end", models.TimeField(blank=True, null=True)),
                (
                    "allowed_origins",
                    models.JSONField(
                        blank=True,
                        default=list,
                        help_text='Web origins allowed to call the tracking and form endpoints from a browser, e.g. ["https://www.acme.io"].',
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "abstract": False,
            },
        ),
        migrations.CreateModel(
            name="PropertyDefinitionEvent",
            fields=[
                ("pgh_id", models.AutoField(primary_key=True, serialize=False)),
                ("pgh_created_at", models.DateTimeField(auto_now_add=True)),
                ("pgh_label", models.TextField(help_text="The event label.")),
                ("id", models.BigIntegerField()),
                (
                    "subject",
                    models.CharField(
                        choices=[("contact", "Contact"), ("company", "Company"), ("event", "Event")], max_length=10
                    ),
                ),
                ("key", models.CharField(max_length=100)),
                ("label", models.CharField(blank=True, max_length=200)),
                (
                    "type",
                    models.CharField(
                        choices=[
                            ("string", "Text"),
                            ("number", "Number"),
                            ("boolean", "Yes/no"),
                            ("datetime", "Date and time"),
                            ("enum", "One of a set"),
                            ("list", "List"),
                        ],
                        max_length=10,
                    ),
                ),
                ("options", models.JSONField(blank=True, default=list, help_text="The allowed values of an enum.")),
                (
                    "source",
                    models.CharField(
                        choices=[("user", "Defined by a user"), ("auto", "Inferred from data")],
                        default="user",
                        max_length=10,
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "abstract": False,
            },
        ),
        migrations.CreateModel(
            name="SegmentEvent",
            fields=[
                ("pgh_id", models.AutoField(primary_key=True, serialize=False)),
                ("pgh_created_at", models.DateTimeField(auto_now_add=True)),
                ("pgh_label", models.TextField(help_text="The event label.")),
                ("id", models.BigIntegerField()),
                ("slug", models.SlugField(db_index=False, max_length=100)),
                ("name", models.CharField(max_length=200)),
                ("description", models.TextField(blank=True)),
                (
                    "kind",
                    models.CharField(
                        choices=[("dynamic", "Dynamic (a rule)"), ("static", "Static (added by hand)")],
                        default="dynamic",
                        max_length=10,
                    ),
                ),
                (
                    "rule",
                    models.JSONField(blank=True, help_text="A JsonLogic rule over contacts (dynamic only).", null=True),
                ),
                (
                    "library_template",
                    models.SlugField(
                        blank=True,
                        db_index=False,
                        help_text="The library template that made it (empty: made by hand).",
                        max_length=100,
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "abstract": False,
            },
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="apikey",
            trigger=pgtrigger.compiler.Trigger(
                name="insert_insert",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "marketing_apikeyevent" ("created_at", "created_by_id", "id", "name", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "prefix", "revoked_at", "scope") VALUES (NEW."created_at", NEW."created_by_id", NEW."id", NEW."name", NEW."org_id", _pgh_attach_context(), NOW(), \'insert\', NEW."id", NEW."prefix", NEW."revoked_at", NEW."scope"); RETURN NULL;',
                    hash="198bc97502d0928b14d92d465e230d0a49354b5f",
                    operation="INSERT",
                    pgid="pgtrigger_insert_insert_3fd5c",
                    table="marketing_apikey",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="apikey",
            trigger=pgtrigger.compiler.Trigger(
                name="update_update",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    condition='WHEN (OLD."created_at" IS DISTINCT FROM (NEW."created_at") OR OLD."created_by_id" IS DISTINCT FROM (NEW."created_by_id") OR OLD."id" IS DISTINCT FROM (NEW."id") OR OLD."name" IS DISTINCT FROM (NEW."name") OR OLD."org_id" IS DISTINCT FROM (NEW."org_id") OR OLD."prefix" IS DISTINCT FROM (NEW."prefix") OR OLD."revoked_at" IS DISTINCT FROM (NEW."revoked_at") OR OLD."scope" IS DISTINCT FROM (NEW."scope"))',
                    func='INSERT INTO "marketing_apikeyevent" ("created_at", "created_by_id", "id", "name", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "prefix", "revoked_at", "scope") VALUES (NEW."created_at", NEW."created_by_id", NEW."id", NEW."name", NEW."org_id", _pgh_attach_context(), NOW(), \'update\', NEW."id", NEW."prefix", NEW."revoked_at", NEW."scope"); RETURN NULL;',
                    hash="8804de325ec0c93b5dc90a42ab130da35c403575",
                    operation="UPDATE",
                    pgid="pgtrigger_update_update_8be73",
                    table="marketing_apikey",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="apikey",
            trigger=pgtrigger.compiler.Trigger(
                name="delete_delete",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "marketing_apikeyevent" ("created_at", "created_by_id", "id", "name", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "prefix", "revoked_at", "scope") VALUES (OLD."created_at", OLD."created_by_id", OLD."id", OLD."name", OLD."org_id", _pgh_attach_context(), NOW(), \'delete\', OLD."id", OLD."prefix", OLD."revoked_at", OLD."scope"); RETURN NULL;',
                    hash="25cc56f8735c99c07200f80673389d350c37dea4",
                    operation="DELETE",
                    pgid="pgtrigger_delete_delete_bc379",
                    table="marketing_apikey",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="membership",
            trigger=pgtrigger.compiler.Trigger(
                name="insert_insert",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "marketing_membershipevent" ("created_at", "id", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "role", "sales_manager", "user_id") VALUES (NEW."created_at", NEW."id", NEW."org_id", _pgh_attach_context(), NOW(), \'insert\', NEW."id", NEW."role", NEW."sales_manager", NEW."user_id"); RETURN NULL;',
                    hash="52aff07be3ec8ec9ccd915d977e641567ec9730f",
                    operation="INSERT",
                    pgid="pgtrigger_insert_insert_4291a",
                    table="marketing_membership",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="membership",
            trigger=pgtrigger.compiler.Trigger(
                name="update_update",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    condition="WHEN (OLD.* IS DISTINCT FROM NEW.*)",
                    func='INSERT INTO "marketing_membershipevent" ("created_at", "id", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "role", "sales_manager", "user_id") VALUES (NEW."created_at", NEW."id", NEW."org_id", _pgh_attach_context(), NOW(), \'update\', NEW."id", NEW."role", NEW."sales_manager", NEW."user_id"); RETURN NULL;',
                    hash="fb67651b89f36f67cd407b25741e6b498618fe76",
                    operation="UPDATE",
                    pgid="pgtrigger_update_update_78b85",
                    table="marketing_membership",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="membership",
            trigger=pgtrigger.compiler.Trigger(
                name="delete_delete",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "marketing_membershipevent" ("created_at", "id", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "role", "sales_manager", "user_id") VALUES (OLD."created_at", OLD."id", OLD."org_id", _pgh_attach_context(), NOW(), \'delete\', OLD."id", OLD."role", OLD."sales_manager", OLD."user_id"); RETURN NULL;',
                    hash="cdf0413e99efe110bdc09fdd0e2eaa8c78da1d39",
                    operation="DELETE",
                    pgid="pgtrigger_delete_delete_ee8b6",
                    table="marketing_membership",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="organization",
            trigger=pgtrigger.compiler.Trigger(
                name="insert_insert",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "marketing_organizationevent" ("allowed_origins", "created_at", "default_country", "default_time_zone", "frequency_caps", "from_email", "from_name", "id", "name", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "postal_address", "quiet_hours_end", "quiet_hours_start", "slug") VALUES (NEW."allowed_origins", NEW."created_at", NEW."default_country", NEW."default_time_zone", NEW."frequency_caps", NEW."from_email", NEW."from_name", NEW."id", NEW."name", _pgh_attach_context(), NOW(), \'insert\', NEW."id", NEW."postal_address", NEW."quiet_hours_end", NEW."quiet_hours_start", NEW."slug"); RETURN NULL;',
                    hash="32340bdf0ab24351f939776191c800d5162e061a",
                    operation="INSERT",
                    pgid="pgtrigger_insert_insert_55525",
                    table="marketing_organization",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="organization",
            trigger=pgtrigger.compiler.Trigger(
                name="update_update",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    condition="WHEN (OLD.* IS DISTINCT FROM NEW.*)",
                    func='INSERT INTO "marketing_organizationevent" ("allowed_origins", "created_at", "default_country", "default_time_zone", "frequency_caps", "from_email", "from_name", "id", "name", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "postal_address", "quiet_hours_end", "quiet_hours_start", "slug") VALUES (NEW."allowed_origins", NEW."created_at", NEW."default_country", NEW."default_time_zone", NEW."frequency_caps", NEW."from_email", NEW."from_name", NEW."id", NEW."name", _pgh_attach_context(), NOW(), \'update\', NEW."id", NEW."postal_address", NEW."quiet_hours_end", NEW."quiet_hours_start", NEW."slug"); RETURN NULL;',
                    hash="50122acdc4c5b4033c9557c17f6afa4963bff4bc",
                    operation="UPDATE",
                    pgid="pgtrigger_update_update_dbe25",
                    table="marketing_organization",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="organization",
            trigger=pgtrigger.compiler.Trigger(
                name="delete_delete",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "marketing_organizationevent" ("allowed_origins", "created_at", "default_country", "default_time_zone", "frequency_caps", "from_email", "from_name", "id", "name", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "postal_address", "quiet_hours_end", "quiet_hours_start", "slug") VALUES (OLD."allowed_origins", OLD."created_at", OLD."default_country", OLD."default_time_zone", OLD."frequency_caps", OLD."from_email", OLD."from_name", OLD."id", OLD."name", _pgh_attach_context(), NOW(), \'delete\', OLD."id", OLD."postal_address", OLD."quiet_hours_end", OLD."quiet_hours_start", OLD."slug"); RETURN NULL;',
                    hash="144f00ebb6b320d23dd61829c60094486b5f1601",
                    operation="DELETE",
                    pgid="pgtrigger_delete_delete_4b0ac",
                    table="marketing_organization",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="propertydefinition",
            trigger=pgtrigger.compiler.Trigger(
                name="insert_insert",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "marketing_propertydefinitionevent" ("created_at", "id", "key", "label", "options", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "source", "subject", "type") VALUES (NEW."created_at", NEW."id", NEW."key", NEW."label", NEW."options", NEW."org_id", _pgh_attach_context(), NOW(), \'insert\', NEW."id", NEW."source", NEW."subject", NEW."type"); RETURN NULL;',
                    hash="fe4a6d0abf61a47d1f960852f26785193a977e0a",
                    operation="INSERT",
                    pgid="pgtrigger_insert_insert_bf15e",
                    table="marketing_propertydefinition",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="propertydefinition",
            trigger=pgtrigger.compiler.Trigger(
                name="update_update",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    condition="WHEN (OLD.* IS DISTINCT FROM NEW.*)",
                    func='INSERT INTO "marketing_propertydefinitionevent" ("created_at", "id", "key", "label", "options", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "source", "subject", "type") VALUES (NEW."created_at", NEW."id", NEW."key", NEW."label", NEW."options", NEW."org_id", _pgh_attach_context(), NOW(), \'update\', NEW."id", NEW."source", NEW."subject", NEW."type"); RETURN NULL;',
                    hash="184eb2d39f52a9595d288c8c0cfa91204ea67f89",
                    operation="UPDATE",
                    pgid="pgtrigger_update_update_b3beb",
                    table="marketing_propertydefinition",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="propertydefinition",
            trigger=pgtrigger.compiler.Trigger(
                name="delete_delete",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "marketing_propertydefinitionevent" ("created_at", "id", "key", "label", "options", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "source", "subject", "type") VALUES (OLD."created_at", OLD."id", OLD."key", OLD."label", OLD."options", OLD."org_id", _pgh_attach_context(), NOW(), \'delete\', OLD."id", OLD."source", OLD."subject", OLD."type"); RETURN NULL;',
                    hash="ecccf496e10744f690d6d06d400c32e230268b3e",
                    operation="DELETE",
                    pgid="pgtrigger_delete_delete_0ad1a",
                    table="marketing_propertydefinition",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="segment",
            trigger=pgtrigger.compiler.Trigger(
                name="insert_insert",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "marketing_segmentevent" ("created_at", "description", "id", "kind", "library_template", "name", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "rule", "slug") VALUES (NEW."created_at", NEW."description", NEW."id", NEW."kind", NEW."library_template", NEW."name", NEW."org_id", _pgh_attach_context(), NOW(), \'insert\', NEW."id", NEW."rule", NEW."slug"); RETURN NULL;',
                    hash="774bfae7669429ccc73fafdf98682e29b1d05070",
                    operation="INSERT",
                    pgid="pgtrigger_insert_insert_3b736",
                    table="marketing_segment",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="segment",
            trigger=pgtrigger.compiler.Trigger(
                name="update_update",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    condition='WHEN (OLD."created_at" IS DISTINCT FROM (NEW."created_at") OR OLD."description" IS DISTINCT FROM (NEW."description") OR OLD."id" IS DISTINCT FROM (NEW."id") OR OLD."kind" IS DISTINCT FROM (NEW."kind") OR OLD."library_template" IS DISTINCT FROM (NEW."library_template") OR OLD."name" IS DISTINCT FROM (NEW."name") OR OLD."org_id" IS DISTINCT FROM (NEW."org_id") OR OLD."rule" IS DISTINCT FROM (NEW."rule") OR OLD."slug" IS DISTINCT FROM (NEW."slug"))',
                    func='INSERT INTO "marketing_segmentevent" ("created_at", "description", "id", "kind", "library_template", "name", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "rule", "slug") VALUES (NEW."created_at", NEW."description", NEW."id", NEW."kind", NEW."library_template", NEW."name", NEW."org_id", _pgh_attach_context(), NOW(), \'update\', NEW."id", NEW."rule", NEW."slug"); RETURN NULL;',
                    hash="7a25eb1ebe8bd818c64cea09a1794a583a76d379",
                    operation="UPDATE",
                    pgid="pgtrigger_update_update_1f9f0",
                    table="marketing_segment",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="segment",
            trigger=pgtrigger.compiler.Trigger(
                name="delete_delete",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "marketing_segmentevent" ("created_at", "description", "id", "kind", "library_template", "name", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "rule", "slug") VALUES (OLD."created_at", OLD."description", OLD."id", OLD."kind", OLD."library_template", OLD."name", OLD."org_id", _pgh_attach_context(), NOW(), \'delete\', OLD."id", OLD."rule", OLD."slug"); RETURN NULL;',
                    hash="e078e00f59000cd4c00ea23ca6c79682a766748e",
                    operation="DELETE",
                    pgid="pgtrigger_delete_delete_f1ac4",
                    table="marketing_segment",
                    when="AFTER",
                ),
            ),
        ),
        migrations.AddField(
            model_name="apikeyevent",
            name="created_by",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                related_query_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="apikeyevent",
            name="org",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                related_query_name="+",
                to="marketing.organization",
            ),
        ),
        migrations.AddField(
            model_name="apikeyevent",
            name="pgh_context",
            field=models.ForeignKey(
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="pghistory.context",
            ),
        ),
        migrations.AddField(
            model_name="apikeyevent",
            name="pgh_obj",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="events",
                to="marketing.apikey",
            ),
        ),
        migrations.AddField(
            model_name="membershipevent",
            name="org",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                related_query_name="+",
                to="marketing.organization",
            ),
        ),
        migrations.AddField(
            model_name="membershipevent",
            name="pgh_context",
            field=models.ForeignKey(
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="pghistory.context",
            ),
        ),
        migrations.AddField(
            model_name="membershipevent",
            name="pgh_obj",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="events",
                to="marketing.membership",
            ),
        ),
        migrations.AddField(
            model_name="membershipevent",
            name="user",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                related_query_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="organizationevent",
            name="pgh_context",
            field=models.ForeignKey(
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="pghistory.context",
            ),
        ),
        migrations.AddField(
            model_name="organizationevent",
            name="pgh_obj",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="events",
                to="marketing.organization",
            ),
        ),
        migrations.AddField(
            model_name="propertydefinitionevent",
            name="org",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                related_query_name="+",
                to="marketing.organization",
            ),
        ),
        migrations.AddField(
            model_name="propertydefinitionevent",
            name="pgh_context",
            field=models.ForeignKey(
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="pghistory.context",
            ),
        ),
        migrations.AddField(
            model_name="propertydefinitionevent",
            name="pgh_obj",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="events",
                to="marketing.propertydefinition",
            ),
        ),
        migrations.AddField(
            model_name="segmentevent",
            name="org",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                related_query_name="+",
                to="marketing.organization",
            ),
        ),
        migrations.AddField(
            model_name="segmentevent",
            name="pgh_context",
            field=models.ForeignKey(
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="pghistory.context",
            ),
        ),
        migrations.AddField(
            model_name="segmentevent",
            name="pgh_obj",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="events",
                to="marketing.segment",
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="apikeyevent",
            trigger=pgtrigger.compiler.Trigger(
                name="apikeyevent_append_only",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    execute="append_only_refuse()",
                    func="RETURN NULL;",
                    hash="ee957ab75d82a4139158590135f1671c2f8e8b59",
                    level="STATEMENT",
                    operation="UPDATE OR DELETE OR TRUNCATE",
                    pgid="pgtrigger_apikeyevent_append_only_73fa5",
                    table="marketing_apikeyevent",
                    when="BEFORE",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="membershipevent",
            trigger=pgtrigger.compiler.Trigger(
                name="membershipevent_append_only",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    execute="append_only_refuse()",
                    func="RETURN NULL;",
                    hash="6a6677098bbe91bb14e0885538c39cf0065a121b",
                    level="STATEMENT",
                    operation="UPDATE OR DELETE OR TRUNCATE",
                    pgid="pgtrigger_membershipevent_append_only_2d73d",
                    table="marketing_membershipevent",
                    when="BEFORE",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="organizationevent",
            trigger=pgtrigger.compiler.Trigger(
                name="organizationevent_append_only",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    execute="append_only_refuse()",
                    func="RETURN NULL;",
                    hash="90c7b6fd3a040d23624a4f4253d8c7e926f7bc08",
                    level="STATEMENT",
                    operation="UPDATE OR DELETE OR TRUNCATE",
                    pgid="pgtrigger_organizationevent_append_only_8aa67",
                    table="marketing_organizationevent",
                    when="BEFORE",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="propertydefinitionevent",
            trigger=pgtrigger.compiler.Trigger(
                name="propertydefinitionevent_append_only",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    execute="append_only_refuse()",
                    func="RETURN NULL;",
                    hash="0f186d6cdbdaffb7f0ed7b2bddf64de5b04c0ac6",
                    level="STATEMENT",
                    operation="UPDATE OR DELETE OR TRUNCATE",
                    pgid="pgtrigger_propertydefinitionevent_append_only_ac4c1",
                    table="marketing_propertydefinitionevent",
                    when="BEFORE",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="segmentevent",
            trigger=pgtrigger.compiler.Trigger(
                name="segmentevent_append_only",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    execute="append_only_refuse()",
                    func="RETURN NULL;",
                    hash="61779bedce9bedeaabc7db77fe38e49c7ac88fba",
                    level="STATEMENT",
                    operation="UPDATE OR DELETE OR TRUNCATE",
                    pgid="pgtrigger_segmentevent_append_only_befea",
                    table="marketing_segmentevent",
                    when="BEFORE",
                ),
            ),
        ),
        # One list of every configuration model's history, for the console (pghistory's aggregate).
        migrations.CreateModel(
            name="ChangeEvent",
            fields=[],
            options={
                "verbose_name": "change",
                "verbose_name_plural": "change history",
                "proxy": True,
                "indexes": [],
                "constraints": [],
            },
            bases=("pghistory.events",),
            managers=[("no_objects", django.db.models.manager.Manager())],
        ),
        # Each org sees its own audit entries and history.
        row_security(
            "marketing_auditentry",
            "marketing_apikeyevent",
            "marketing_membershipevent",
            "marketing_propertydefinitionevent",
            "marketing_segmentevent",
        ),
    ]
