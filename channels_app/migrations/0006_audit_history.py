import django.db.models.deletion
import django.utils.timezone
import pgtrigger.compiler
import pgtrigger.migrations
from django.conf import settings
from django.db import migrations, models

from marketing.postgres_operations import row_security


class Migration(migrations.Migration):
    dependencies = [
        ("channels_app", "0005_console_indexes"),
        ("channels_app", "0006_message_topics"),
        ("compliance", "0003_preference_topics"),
        ("marketing", "0013_audit_history"),
        ("pghistory", "0007_auto_20250421_0444"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="DestinationEvent",
            fields=[
                ("pgh_id", models.AutoField(primary_key=True, serialize=False)),
                ("pgh_created_at", models.DateTimeField(auto_now_add=True)),
                ("pgh_label", models.TextField(help_text="The event label.")),
                ("id", models.BigIntegerField()),
                ("slug", models.SlugField(db_index=False, max_length=100)),
                ("name", models.CharField(max_length=200)),
                (
                    "channel",
                    models.CharField(
                        choices=[("slack", "Slack"), ("webhook", "Webhook"), ("social", "Social post")], max_length=10
                    ),
                ),
                ("active", models.BooleanField(default=True, help_text="Messages to an inactive destination fail.")),
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
        migrations.CreateModel(
            name="MessageTemplateEvent",
            fields=[
                ("pgh_id", models.AutoField(primary_key=True, serialize=False)),
                ("pgh_created_at", models.DateTimeField(auto_now_add=True)),
                ("pgh_label", models.TextField(help_text="The event label.")),
                ("id", models.BigIntegerField()),
                ("slug", models.SlugField(db_index=False, max_length=100)),
                ("name", models.CharField(max_length=200)),
                (
                    "channel",
                    models.CharField(
                        choices=[
                            ("email", "Email"),
                            ("sms", "SMS"),
                            ("push", "Web push"),
                            ("slack", "Slack"),
                            ("webhook", "Webhook"),
                            ("social", "Social post"),
                        ],
                        max_length=10,
                    ),
                ),
                (
                    "purpose",
                    models.CharField(
                        choices=[
                            ("marketing", "Marketing (needs consent; unsubscribe and postal address added)"),
                            ("transactional", "Transactional (receipts, notifications)"),
                        ],
                        default="marketing",
                        max_length=15,
                    ),
                ),
                ("variants", models.JSONField(default=list)),
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
        migrations.CreateModel(
            name="TemplateVersionEvent",
            fields=[
                ("pgh_id", models.AutoField(primary_key=True, serialize=False)),
                ("pgh_created_at", models.DateTimeField(auto_now_add=True)),
                ("pgh_label", models.TextField(help_text="The event label.")),
                ("id", models.BigIntegerField()),
                ("number", models.PositiveIntegerField()),
                ("variants", models.JSONField()),
                ("published_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                "abstract": False,
            },
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="destination",
            trigger=pgtrigger.compiler.Trigger(
                name="insert_insert",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "channels_app_destinationevent" ("active", "channel", "created_at", "id", "library_template", "name", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "slug") VALUES (NEW."active", NEW."channel", NEW."created_at", NEW."id", NEW."library_template", NEW."name", NEW."org_id", _pgh_attach_context(), NOW(), \'insert\', NEW."id", NEW."slug"); RETURN NULL;',
                    hash="b0b21430d834ed60a3fd0f80c031805f6887cf91",
                    operation="INSERT",
                    pgid="pgtrigger_insert_insert_a3074",
                    table="channels_app_destination",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="destination",
            trigger=pgtrigger.compiler.Trigger(
                name="update_update",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    condition='WHEN (OLD."active" IS DISTINCT FROM (NEW."active") OR OLD."channel" IS DISTINCT FROM (NEW."channel") OR OLD."created_at" IS DISTINCT FROM (NEW."created_at") OR OLD."id" IS DISTINCT FROM (NEW."id") OR OLD."library_template" IS DISTINCT FROM (NEW."library_template") OR OLD."name" IS DISTINCT FROM (NEW."name") OR OLD."org_id" IS DISTINCT FROM (NEW."org_id") OR OLD."slug" IS DISTINCT FROM (NEW."slug"))',
                    func='INSERT INTO "channels_app_destinationevent" ("active", "channel", "created_at", "id", "library_template", "name", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "slug") VALUES (NEW."active", NEW."channel", NEW."created_at", NEW."id", NEW."library_template", NEW."name", NEW."org_id", _pgh_attach_context(), NOW(), \'update\', NEW."id", NEW."slug"); RETURN NULL;',
                    hash="87f4271d8b6c124b56dc5c2d1d4ec6e9bdda6260",
                    operation="UPDATE",
                    pgid="pgtrigger_update_update_d585f",
                    table="channels_app_destination",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="destination",
            trigger=pgtrigger.compiler.Trigger(
                name="delete_delete",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "channels_app_destinationevent" ("active", "channel", "created_at", "id", "library_template", "name", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "slug") VALUES (OLD."active", OLD."channel", OLD."created_at", OLD."id", OLD."library_template", OLD."name", OLD."org_id", _pgh_attach_context(), NOW(), \'delete\', OLD."id", OLD."slug"); RETURN NULL;',
                    hash="d65e04463df2ae8e977e6de97e820830a9b85ca1",
                    operation="DELETE",
                    pgid="pgtrigger_delete_delete_f194b",
                    table="channels_app_destination",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="messagetemplate",
            trigger=pgtrigger.compiler.Trigger(
                name="insert_insert",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "channels_app_messagetemplateevent" ("channel", "created_at", "id", "library_template", "live_version_id", "name", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "purpose", "slug", "topic_id", "variants") VALUES (NEW."channel", NEW."created_at", NEW."id", NEW."library_template", NEW."live_version_id", NEW."name", NEW."org_id", _pgh_attach_context(), NOW(), \'insert\', NEW."id", NEW."purpose", NEW."slug", NEW."topic_id", NEW."variants"); RETURN NULL;',
                    hash="876e9e7eb48e2d46d601484d32915043c93be5b5",
                    operation="INSERT",
                    pgid="pgtrigger_insert_insert_ae49d",
                    table="channels_app_messagetemplate",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="messagetemplate",
            trigger=pgtrigger.compiler.Trigger(
                name="update_update",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    condition='WHEN (OLD."channel" IS DISTINCT FROM (NEW."channel") OR OLD."created_at" IS DISTINCT FROM (NEW."created_at") OR OLD."id" IS DISTINCT FROM (NEW."id") OR OLD."library_template" IS DISTINCT FROM (NEW."library_template") OR OLD."live_version_id" IS DISTINCT FROM (NEW."live_version_id") OR OLD."name" IS DISTINCT FROM (NEW."name") OR OLD."org_id" IS DISTINCT FROM (NEW."org_id") OR OLD."purpose" IS DISTINCT FROM (NEW."purpose") OR OLD."slug" IS DISTINCT FROM (NEW."slug") OR OLD."topic_id" IS DISTINCT FROM (NEW."topic_id") OR OLD."variants" IS DISTINCT FROM (NEW."variants"))',
                    func='INSERT INTO "channels_app_messagetemplateevent" ("channel", "created_at", "id", "library_template", "live_version_id", "name", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "purpose", "slug", "topic_id", "variants") VALUES (NEW."channel", NEW."created_at", NEW."id", NEW."library_template", NEW."live_version_id", NEW."name", NEW."org_id", _pgh_attach_context(), NOW(), \'update\', NEW."id", NEW."purpose", NEW."slug", NEW."topic_id", NEW."variants"); RETURN NULL;',
                    hash="de6b6a2677c51b4531269472a6ecd770de7c8e25",
                    operation="UPDATE",
                    pgid="pgtrigger_update_update_69e38",
                    table="channels_app_messagetemplate",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="messagetemplate",
            trigger=pgtrigger.compiler.Trigger(
                name="delete_delete",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "channels_app_messagetemplateevent" ("channel", "created_at", "id", "library_template", "live_version_id", "name", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "purpose", "slug", "topic_id", "variants") VALUES (OLD."channel", OLD."created_at", OLD."id", OLD."library_template", OLD."live_version_id", OLD."name", OLD."org_id", _pgh_attach_context(), NOW(), \'delete\', OLD."id", OLD."purpose", OLD."slug", OLD."topic_id", OLD."variants"); RETURN NULL;',
                    hash="7762ab5534a7b661cc860cd0c4ebf1af2749d374",
                    operation="DELETE",
                    pgid="pgtrigger_delete_delete_16210",
                    table="channels_app_messagetemplate",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="templateversion",
            trigger=pgtrigger.compiler.Trigger(
                name="insert_insert",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "channels_app_templateversionevent" ("id", "number", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "published_at", "published_by_id", "template_id", "variants") VALUES (NEW."id", NEW."number", NEW."org_id", _pgh_attach_context(), NOW(), \'insert\', NEW."id", NEW."published_at", NEW."published_by_id", NEW."template_id", NEW."variants"); RETURN NULL;',
                    hash="0131666c64caf41e903168e0a36be0a27c49c3c6",
                    operation="INSERT",
                    pgid="pgtrigger_insert_insert_49d76",
                    table="channels_app_templateversion",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="templateversion",
            trigger=pgtrigger.compiler.Trigger(
                name="update_update",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    condition="WHEN (OLD.* IS DISTINCT FROM NEW.*)",
                    func='INSERT INTO "channels_app_templateversionevent" ("id", "number", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "published_at", "published_by_id", "template_id", "variants") VALUES (NEW."id", NEW."number", NEW."org_id", _pgh_attach_context(), NOW(), \'update\', NEW."id", NEW."published_at", NEW."published_by_id", NEW."template_id", NEW."variants"); RETURN NULL;',
                    hash="9daea0cf6da333c795bcf2ef3f5c8936170472f7",
                    operation="UPDATE",
                    pgid="pgtrigger_update_update_f89bb",
                    table="channels_app_templateversion",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="templateversion",
            trigger=pgtrigger.compiler.Trigger(
                name="delete_delete",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "channels_app_templateversionevent" ("id", "number", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "published_at", "published_by_id", "template_id", "variants") VALUES (OLD."id", OLD."number", OLD."org_id", _pgh_attach_context(), NOW(), \'delete\', OLD."id", OLD."published_at", OLD."published_by_id", OLD."template_id", OLD."variants"); RETURN NULL;',
                    hash="a08894029f22cbf9a6e52fd82a09d6c66acebf75",
                    operation="DELETE",
                    pgid="pgtrigger_delete_delete_c6d70",
                    table="channels_app_templateversion",
                    when="AFTER",
                ),
            ),
        ),
        migrations.AddField(
            model_name="destinationevent",
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
            model_name="destinationevent",
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
            model_name="destinationevent",
            name="pgh_obj",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="events",
                to="channels_app.destination",
            ),
        ),
        migrations.AddField(
            model_name="messagetemplateevent",
            name="live_version",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                related_query_name="+",
                to="channels_app.templateversion",
            ),
        ),
        migrations.AddField(
            model_name="messagetemplateevent",
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
            model_name="messagetemplateevent",
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
            model_name="messagetemplateevent",
            name="pgh_obj",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="events",
                to="channels_app.messagetemplate",
            ),
        ),
        migrations.AddField(
            model_name="messagetemplateevent",
            name="topic",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                help_text="Marketing only: contacts who left this topic in the preference centre do not get it.",
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                related_query_name="+",
                to="compliance.subscriptiontype",
            ),
        ),
        migrations.AddField(
            model_name="templateversionevent",
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
            model_name="templateversionevent",
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
            model_name="templateversionevent",
            name="pgh_obj",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="events",
                to="channels_app.templateversion",
            ),
        ),
        migrations.AddField(
            model_name="templateversionevent",
            name="published_by",
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
            model_name="templateversionevent",
            name="template",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                related_query_name="+",
                to="channels_app.messagetemplate",
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="destinationevent",
            trigger=pgtrigger.compiler.Trigger(
                name="destinationevent_append_only",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    execute="append_only_refuse()",
                    func="RETURN NULL;",
                    hash="e7096791f86b7c0fa46f64b3c3dc24444ae6c90a",
                    level="STATEMENT",
                    operation="UPDATE OR DELETE OR TRUNCATE",
                    pgid="pgtrigger_destinationevent_append_only_724f9",
                    table="channels_app_destinationevent",
                    when="BEFORE",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="messagetemplateevent",
            trigger=pgtrigger.compiler.Trigger(
                name="messagetemplateevent_append_only",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    execute="append_only_refuse()",
                    func="RETURN NULL;",
                    hash="19e18b8fa1b1596df7a3872e261a12b07341e962",
                    level="STATEMENT",
                    operation="UPDATE OR DELETE OR TRUNCATE",
                    pgid="pgtrigger_messagetemplateevent_append_only_45bfd",
                    table="channels_app_messagetemplateevent",
                    when="BEFORE",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="templateversionevent",
            trigger=pgtrigger.compiler.Trigger(
                name="templateversionevent_append_only",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    execute="append_only_refuse()",
                    func="RETURN NULL;",
                    hash="e164c318a61975c565bea4890e3f6aa860b58bae",
                    level="STATEMENT",
                    operation="UPDATE OR DELETE OR TRUNCATE",
                    pgid="pgtrigger_templateversionevent_append_only_81dd8",
                    table="channels_app_templateversionevent",
                    when="BEFORE",
                ),
            ),
        ),
        # The history is tenant data like the rows it copies: each org sees its own.
        row_security(
            "channels_app_messagetemplateevent", "channels_app_templateversionevent", "channels_app_destinationevent"
        ),
    ]
