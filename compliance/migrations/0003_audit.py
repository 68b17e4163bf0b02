import django.db.models.deletion
import pgtrigger.compiler
import pgtrigger.migrations
from django.conf import settings
from django.db import migrations, models

import compliance.models
from marketing.postgres_operations import row_security


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0002_consent_outlives_contact_and_requests"),
        ("compliance", "0003_consent_regimes"),
        ("compliance", "0003_preference_topics"),
        ("compliance", "0003_retention"),
        ("marketing", "0013_audit_history"),
        ("pghistory", "0007_auto_20250421_0444"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ConsentRegimeEvent",
            fields=[
                ("pgh_id", models.AutoField(primary_key=True, serialize=False)),
                ("pgh_created_at", models.DateTimeField(auto_now_add=True)),
                ("pgh_label", models.TextField(help_text="The event label.")),
                ("id", models.BigIntegerField()),
                (
                    "email_marketing",
                    models.CharField(
                        choices=[
                            ("opt_in", "Opt-in: not until the person agrees (GDPR)"),
                            ("opt_out", "Opt-out: allowed until the person says no (CCPA)"),
                        ],
                        default="opt_in",
                        help_text="Marketing emails.",
                        max_length=10,
                        verbose_name="Email marketing",
                    ),
                ),
                (
                    "sms",
                    models.CharField(
                        choices=[
                            ("opt_in", "Opt-in: not until the person agrees (GDPR)"),
                            ("opt_out", "Opt-out: allowed until the person says no (CCPA)"),
                        ],
                        default="opt_in",
                        help_text="Marketing text messages.",
                        max_length=10,
                        verbose_name="SMS marketing",
                    ),
                ),
                (
                    "push",
                    models.CharField(
                        choices=[
                            ("opt_in", "Opt-in: not until the person agrees (GDPR)"),
                            ("opt_out", "Opt-out: allowed until the person says no (CCPA)"),
                        ],
                        default="opt_in",
                        help_text="Marketing web-push notifications.",
                        max_length=10,
                        verbose_name="Web push",
                    ),
                ),
                (
                    "tracking",
                    models.CharField(
                        choices=[
                            ("opt_in", "Opt-in: not until the person agrees (GDPR)"),
                            ("opt_out", "Opt-out: allowed until the person says no (CCPA)"),
                        ],
                        default="opt_out",
                        help_text="Storing page views, app events, email opens and clicks.",
                        max_length=10,
                        verbose_name="Tracking",
                    ),
                ),
                (
                    "profiling",
                    models.CharField(
                        choices=[
                            ("opt_in", "Opt-in: not until the person agrees (GDPR)"),
                            ("opt_out", "Opt-out: allowed until the person says no (CCPA)"),
                        ],
                        default="opt_out",
                        help_text="Lead scoring and the predicted chance to convert.",
                        max_length=10,
                        verbose_name="Profiling",
                    ),
                ),
                (
                    "sale_sharing",
                    models.CharField(
                        choices=[
                            ("opt_in", "Opt-in: not until the person agrees (GDPR)"),
                            ("opt_out", "Opt-out: allowed until the person says no (CCPA)"),
                        ],
                        default="opt_out",
                        help_text="Sending a contact's data to third parties: webhooks and webhook destinations.",
                        max_length=10,
                        verbose_name="Sale or sharing of data",
                    ),
                ),
                (
                    "double_opt_in",
                    models.BooleanField(
                        default=True,
                        help_text="Consent ticked on a public form counts once the person confirms it by email.",
                        verbose_name="Double opt-in for forms",
                    ),
                ),
            ],
            options={
                "abstract": False,
            },
        ),
        migrations.CreateModel(
            name="RetentionPolicyEvent",
            fields=[
                ("pgh_id", models.AutoField(primary_key=True, serialize=False)),
                ("pgh_created_at", models.DateTimeField(auto_now_add=True)),
                ("pgh_label", models.TextField(help_text="The event label.")),
                ("id", models.BigIntegerField()),
                ("kind", models.CharField(choices=compliance.models._data_kinds, max_length=20)),
                (
                    "days",
                    models.PositiveIntegerField(
                        blank=True,
                        help_text="Rows older than this many days are purged; empty keeps them forever.",
                        null=True,
                    ),
                ),
            ],
            options={
                "abstract": False,
            },
        ),
        migrations.CreateModel(
            name="SubscriptionTypeEvent",
            fields=[
                ("pgh_id", models.AutoField(primary_key=True, serialize=False)),
                ("pgh_created_at", models.DateTimeField(auto_now_add=True)),
                ("pgh_label", models.TextField(help_text="The event label.")),
                ("id", models.BigIntegerField()),
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
            ],
            options={
                "abstract": False,
            },
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="consentregime",
            trigger=pgtrigger.compiler.Trigger(
                name="insert_insert",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "compliance_consentregimeevent" ("double_opt_in", "email_marketing", "id", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "profiling", "push", "sale_sharing", "sms", "tracking") VALUES (NEW."double_opt_in", NEW."email_marketing", NEW."id", NEW."org_id", _pgh_attach_context(), NOW(), \'insert\', NEW."id", NEW."profiling", NEW."push", NEW."sale_sharing", NEW."sms", NEW."tracking"); RETURN NULL;',
                    hash="8b67bcd7f7d4e33350e0c47fb309420f8a9b97b2",
                    operation="INSERT",
                    pgid="pgtrigger_insert_insert_7d2e3",
                    table="compliance_consentregime",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="consentregime",
            trigger=pgtrigger.compiler.Trigger(
                name="update_update",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    condition='WHEN (OLD."double_opt_in" IS DISTINCT FROM (NEW."double_opt_in") OR OLD."email_marketing" IS DISTINCT FROM (NEW."email_marketing") OR OLD."id" IS DISTINCT FROM (NEW."id") OR OLD."org_id" IS DISTINCT FROM (NEW."org_id") OR OLD."profiling" IS DISTINCT FROM (NEW."profiling") OR OLD."push" IS DISTINCT FROM (NEW."push") OR OLD."sale_sharing" IS DISTINCT FROM (NEW."sale_sharing") OR OLD."sms" IS DISTINCT FROM (NEW."sms") OR OLD."tracking" IS DISTINCT FROM (NEW."tracking"))',
                    func='INSERT INTO "compliance_consentregimeevent" ("double_opt_in", "email_marketing", "id", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "profiling", "push", "sale_sharing", "sms", "tracking") VALUES (NEW."double_opt_in", NEW."email_marketing", NEW."id", NEW."org_id", _pgh_attach_context(), NOW(), \'update\', NEW."id", NEW."profiling", NEW."push", NEW."sale_sharing", NEW."sms", NEW."tracking"); RETURN NULL;',
                    hash="574c60c65cc9b8fd6ae5b1286eebedb73adbaf5c",
                    operation="UPDATE",
                    pgid="pgtrigger_update_update_1c7f7",
                    table="compliance_consentregime",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="consentregime",
            trigger=pgtrigger.compiler.Trigger(
                name="delete_delete",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "compliance_consentregimeevent" ("double_opt_in", "email_marketing", "id", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "profiling", "push", "sale_sharing", "sms", "tracking") VALUES (OLD."double_opt_in", OLD."email_marketing", OLD."id", OLD."org_id", _pgh_attach_context(), NOW(), \'delete\', OLD."id", OLD."profiling", OLD."push", OLD."sale_sharing", OLD."sms", OLD."tracking"); RETURN NULL;',
                    hash="eb68b47af9b69434e299c6e5dc64cf49bdb720a5",
                    operation="DELETE",
                    pgid="pgtrigger_delete_delete_416d3",
                    table="compliance_consentregime",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="retentionpolicy",
            trigger=pgtrigger.compiler.Trigger(
                name="insert_insert",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "compliance_retentionpolicyevent" ("days", "id", "kind", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "updated_by_id") VALUES (NEW."days", NEW."id", NEW."kind", NEW."org_id", _pgh_attach_context(), NOW(), \'insert\', NEW."id", NEW."updated_by_id"); RETURN NULL;',
                    hash="8b2a8476ac4d0cf77b5c47763775b33cef5abb58",
                    operation="INSERT",
                    pgid="pgtrigger_insert_insert_4c799",
                    table="compliance_retentionpolicy",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="retentionpolicy",
            trigger=pgtrigger.compiler.Trigger(
                name="update_update",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    condition='WHEN (OLD."days" IS DISTINCT FROM (NEW."days") OR OLD."id" IS DISTINCT FROM (NEW."id") OR OLD."kind" IS DISTINCT FROM (NEW."kind") OR OLD."org_id" IS DISTINCT FROM (NEW."org_id") OR OLD."updated_by_id" IS DISTINCT FROM (NEW."updated_by_id"))',
                    func='INSERT INTO "compliance_retentionpolicyevent" ("days", "id", "kind", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "updated_by_id") VALUES (NEW."days", NEW."id", NEW."kind", NEW."org_id", _pgh_attach_context(), NOW(), \'update\', NEW."id", NEW."updated_by_id"); RETURN NULL;',
                    hash="65438425573d13acde82dfa5944ff0375b2757ff",
                    operation="UPDATE",
                    pgid="pgtrigger_update_update_63d45",
                    table="compliance_retentionpolicy",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="retentionpolicy",
            trigger=pgtrigger.compiler.Trigger(
                name="delete_delete",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "compliance_retentionpolicyevent" ("days", "id", "kind", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "updated_by_id") VALUES (OLD."days", OLD."id", OLD."kind", OLD."org_id", _pgh_attach_context(), NOW(), \'delete\', OLD."id", OLD."updated_by_id"); RETURN NULL;',
                    hash="f68b18a19d77583e838fbf1d8488997b04aa52a2",
                    operation="DELETE",
                    pgid="pgtrigger_delete_delete_02e6c",
                    table="compliance_retentionpolicy",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="subscriptiontype",
            trigger=pgtrigger.compiler.Trigger(
                name="insert_insert",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "compliance_subscriptiontypeevent" ("active", "created_at", "description", "id", "name", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "purpose") VALUES (NEW."active", NEW."created_at", NEW."description", NEW."id", NEW."name", NEW."org_id", _pgh_attach_context(), NOW(), \'insert\', NEW."id", NEW."purpose"); RETURN NULL;',
                    hash="8d5fe2b1f093e82ac628f24a9236726b789254ed",
                    operation="INSERT",
                    pgid="pgtrigger_insert_insert_46992",
                    table="compliance_subscriptiontype",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="subscriptiontype",
            trigger=pgtrigger.compiler.Trigger(
                name="update_update",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    condition="WHEN (OLD.* IS DISTINCT FROM NEW.*)",
                    func='INSERT INTO "compliance_subscriptiontypeevent" ("active", "created_at", "description", "id", "name", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "purpose") VALUES (NEW."active", NEW."created_at", NEW."description", NEW."id", NEW."name", NEW."org_id", _pgh_attach_context(), NOW(), \'update\', NEW."id", NEW."purpose"); RETURN NULL;',
                    hash="457b4b9edbdee405496e86a6155284cdcebcd5fc",
                    operation="UPDATE",
                    pgid="pgtrigger_update_update_a4ec1",
                    table="compliance_subscriptiontype",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="subscriptiontype",
            trigger=pgtrigger.compiler.Trigger(
                name="delete_delete",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "compliance_subscriptiontypeevent" ("active", "created_at", "description", "id", "name", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "purpose") VALUES (OLD."active", OLD."created_at", OLD."description", OLD."id", OLD."name", OLD."org_id", _pgh_attach_context(), NOW(), \'delete\', OLD."id", OLD."purpose"); RETURN NULL;',
                    hash="5e4a270db11bbd7524d8650a452307547900001f",
                    operation="DELETE",
                    pgid="pgtrigger_delete_delete_d1a56",
                    table="compliance_subscriptiontype",
                    when="AFTER",
                ),
            ),
        ),
        migrations.AddField(
            model_name="consentregimeevent",
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
            model_name="consentregimeevent",
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
            model_name="consentregimeevent",
            name="pgh_obj",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="events",
                to="compliance.consentregime",
            ),
        ),
        migrations.AddField(
            model_name="retentionpolicyevent",
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
            model_name="retentionpolicyevent",
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
            model_name="retentionpolicyevent",
            name="pgh_obj",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="events",
                to="compliance.retentionpolicy",
            ),
        ),
        migrations.AddField(
            model_name="retentionpolicyevent",
            name="updated_by",
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
            model_name="subscriptiontypeevent",
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
            model_name="subscriptiontypeevent",
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
            model_name="subscriptiontypeevent",
            name="pgh_obj",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="events",
                to="compliance.subscriptiontype",
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="consentregimeevent",
            trigger=pgtrigger.compiler.Trigger(
                name="consentregimeevent_append_only",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    execute="append_only_refuse()",
                    func="RETURN NULL;",
                    hash="c623c6e53b62300e87c0d7d2c8ff5f8456ebd75e",
                    level="STATEMENT",
                    operation="UPDATE OR DELETE OR TRUNCATE",
                    pgid="pgtrigger_consentregimeevent_append_only_e627a",
                    table="compliance_consentregimeevent",
                    when="BEFORE",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="retentionpolicyevent",
            trigger=pgtrigger.compiler.Trigger(
                name="retentionpolicyevent_append_only",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    execute="append_only_refuse()",
                    func="RETURN NULL;",
                    hash="84e683eb0f0ab0c11812bf1d41f2d71dc24f52e3",
                    level="STATEMENT",
                    operation="UPDATE OR DELETE OR TRUNCATE",
                    pgid="pgtrigger_retentionpolicyevent_append_only_4cbf5",
                    table="compliance_retentionpolicyevent",
                    when="BEFORE",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="subscriptiontypeevent",
            trigger=pgtrigger.compiler.Trigger(
                name="subscriptiontypeevent_append_only",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    execute="append_only_refuse()",
                    func="RETURN NULL;",
                    hash="3c84cd4beb840bbf5781d9799945fbffbbc7b82c",
                    level="STATEMENT",
                    operation="UPDATE OR DELETE OR TRUNCATE",
                    pgid="pgtrigger_subscriptiontypeevent_append_only_4ed8e",
                    table="compliance_subscriptiontypeevent",
                    when="BEFORE",
                ),
            ),
        ),
        # The history is tenant data like the rows it copies: each org sees its own.
        row_security(
            "compliance_consentregimeevent", "compliance_subscriptiontypeevent", "compliance_retentionpolicyevent"
        ),
    ]
