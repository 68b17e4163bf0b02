import django.db.models.deletion
import django.utils.timezone
import pgtrigger.compiler
import pgtrigger.migrations
from django.conf import settings
from django.db import migrations, models

from marketing.postgres_operations import row_security


class Migration(migrations.Migration):
    dependencies = [
        ("workflows", "0005_console_indexes"),
        ("marketing", "0013_audit_history"),
        ("pghistory", "0007_auto_20250421_0444"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.CreateModel(
            name="ScheduledJobEvent",
            fields=[
                ("pgh_id", models.AutoField(primary_key=True, serialize=False)),
                ("pgh_created_at", models.DateTimeField(auto_now_add=True)),
                ("pgh_label", models.TextField(help_text="The event label.")),
                ("id", models.BigIntegerField()),
                ("name", models.CharField(max_length=200)),
                (
                    "kind",
                    models.CharField(
                        choices=[("once", "Once"), ("recurring", "Every interval"), ("cron", "Cron expression")],
                        max_length=10,
                    ),
                ),
                ("run_at", models.DateTimeField(blank=True, help_text="For once.", null=True)),
                ("every_seconds", models.PositiveIntegerField(blank=True, help_text="For every interval.", null=True)),
                (
                    "cron",
                    models.CharField(
                        blank=True, help_text='For cron, e.g. "0 9 * * 1" (Mondays 09:00).', max_length=100
                    ),
                ),
                ("time_zone", models.CharField(default="UTC", max_length=64)),
                ("enabled", models.BooleanField(default=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "abstract": False,
            },
        ),
        migrations.CreateModel(
            name="WorkflowEvent",
            fields=[
                ("pgh_id", models.AutoField(primary_key=True, serialize=False)),
                ("pgh_created_at", models.DateTimeField(auto_now_add=True)),
                ("pgh_label", models.TextField(help_text="The event label.")),
                ("id", models.BigIntegerField()),
                ("slug", models.SlugField(db_index=False, max_length=100)),
                ("name", models.CharField(max_length=200)),
                ("description", models.TextField(blank=True)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("draft", "Draft (never published)"),
                            ("active", "Active"),
                            ("paused", "Paused"),
                            ("archived", "Archived"),
                        ],
                        default="draft",
                        max_length=10,
                    ),
                ),
                (
                    "draft_definition",
                    models.JSONField(default=dict, help_text="The definition being edited (docs/workflows.md)."),
                ),
                ("trigger_type", models.CharField(blank=True, max_length=40)),
                ("trigger_event", models.CharField(blank=True, max_length=100)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "abstract": False,
            },
        ),
        migrations.CreateModel(
            name="WorkflowTemplateEvent",
            fields=[
                ("pgh_id", models.AutoField(primary_key=True, serialize=False)),
                ("pgh_created_at", models.DateTimeField(auto_now_add=True)),
                ("pgh_label", models.TextField(help_text="The event label.")),
                ("id", models.BigIntegerField()),
                ("slug", models.SlugField(db_index=False, max_length=100)),
                ("name", models.CharField(max_length=200)),
                ("description", models.TextField(blank=True)),
                (
                    "category",
                    models.CharField(
                        choices=[
                            ("social", "Social"),
                            ("campaign", "Campaign"),
                            ("lead_nurture", "Lead nurture"),
                            ("engagement", "Engagement"),
                            ("reporting", "Reporting"),
                        ],
                        max_length=20,
                    ),
                ),
                ("tags", models.JSONField(blank=True, default=list)),
                (
                    "trigger",
                    models.JSONField(blank=True, default=dict, help_text="The trigger the definition starts with."),
                ),
                ("definition", models.JSONField()),
                (
                    "status",
                    models.CharField(
                        choices=[("draft", "Draft"), ("active", "Active"), ("archived", "Archived")],
                        default="active",
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
            name="WorkflowVersionEvent",
            fields=[
                ("pgh_id", models.AutoField(primary_key=True, serialize=False)),
                ("pgh_created_at", models.DateTimeField(auto_now_add=True)),
                ("pgh_label", models.TextField(help_text="The event label.")),
                ("id", models.BigIntegerField()),
                ("number", models.PositiveIntegerField()),
                ("definition", models.JSONField()),
                ("published_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                "abstract": False,
            },
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="scheduledjob",
            trigger=pgtrigger.compiler.Trigger(
                name="insert_insert",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "workflows_scheduledjobevent" ("created_at", "cron", "enabled", "every_seconds", "id", "kind", "name", "org_id", "periodic_task_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "run_at", "segment_id", "time_zone", "workflow_id") VALUES (NEW."created_at", NEW."cron", NEW."enabled", NEW."every_seconds", NEW."id", NEW."kind", NEW."name", NEW."org_id", NEW."periodic_task_id", _pgh_attach_context(), NOW(), \'insert\', NEW."id", NEW."run_at", NEW."segment_id", NEW."time_zone", NEW."workflow_id"); RETURN NULL;',
                    hash="a4b82ec4ef13ba4ce2b00a3a5d1a65415a5a136b",
                    operation="INSERT",
                    pgid="pgtrigger_insert_insert_d32b7",
                    table="workflows_scheduledjob",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="scheduledjob",
            trigger=pgtrigger.compiler.Trigger(
                name="update_update",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    condition='WHEN (OLD."created_at" IS DISTINCT FROM (NEW."created_at") OR OLD."cron" IS DISTINCT FROM (NEW."cron") OR OLD."enabled" IS DISTINCT FROM (NEW."enabled") OR OLD."every_seconds" IS DISTINCT FROM (NEW."every_seconds") OR OLD."id" IS DISTINCT FROM (NEW."id") OR OLD."kind" IS DISTINCT FROM (NEW."kind") OR OLD."name" IS DISTINCT FROM (NEW."name") OR OLD."org_id" IS DISTINCT FROM (NEW."org_id") OR OLD."periodic_task_id" IS DISTINCT FROM (NEW."periodic_task_id") OR OLD."run_at" IS DISTINCT FROM (NEW."run_at") OR OLD."segment_id" IS DISTINCT FROM (NEW."segment_id") OR OLD."time_zone" IS DISTINCT FROM (NEW."time_zone") OR OLD."workflow_id" IS DISTINCT FROM (NEW."workflow_id"))',
                    func='INSERT INTO "workflows_scheduledjobevent" ("created_at", "cron", "enabled", "every_seconds", "id", "kind", "name", "org_id", "periodic_task_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "run_at", "segment_id", "time_zone", "workflow_id") VALUES (NEW."created_at", NEW."cron", NEW."enabled", NEW."every_seconds", NEW."id", NEW."kind", NEW."name", NEW."org_id", NEW."periodic_task_id", _pgh_attach_context(), NOW(), \'update\', NEW."id", NEW."run_at", NEW."segment_id", NEW."time_zone", NEW."workflow_id"); RETURN NULL;',
                    hash="252cfa47046ba1b6c8c4e2ec35165af5b5211c95",
                    operation="UPDATE",
                    pgid="pgtrigger_update_update_828b5",
                    table="workflows_scheduledjob",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="scheduledjob",
            trigger=pgtrigger.compiler.Trigger(
                name="delete_delete",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "workflows_scheduledjobevent" ("created_at", "cron", "enabled", "every_seconds", "id", "kind", "name", "org_id", "periodic_task_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "run_at", "segment_id", "time_zone", "workflow_id") VALUES (OLD."created_at", OLD."cron", OLD."enabled", OLD."every_seconds", OLD."id", OLD."kind", OLD."name", OLD."org_id", OLD."periodic_task_id", _pgh_attach_context(), NOW(), \'delete\', OLD."id", OLD."run_at", OLD."segment_id", OLD."time_zone", OLD."workflow_id"); RETURN NULL;',
                    hash="c36a22e14f04e5261224ddb9a06ea3cb974e6281",
                    operation="DELETE",
                    pgid="pgtrigger_delete_delete_1e490",
                    table="workflows_scheduledjob",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="workflow",
            trigger=pgtrigger.compiler.Trigger(
                name="insert_insert",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "workflows_workflowevent" ("created_at", "created_by_id", "description", "draft_definition", "id", "live_version_id", "name", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "slug", "status", "template_id", "trigger_event", "trigger_type") VALUES (NEW."created_at", NEW."created_by_id", NEW."description", NEW."draft_definition", NEW."id", NEW."live_version_id", NEW."name", NEW."org_id", _pgh_attach_context(), NOW(), \'insert\', NEW."id", NEW."slug", NEW."status", NEW."template_id", NEW."trigger_event", NEW."trigger_type"); RETURN NULL;',
                    hash="4359b111b6d17219ea1683a5956b596c037a70a6",
                    operation="INSERT",
                    pgid="pgtrigger_insert_insert_92e8e",
                    table="workflows_workflow",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="workflow",
            trigger=pgtrigger.compiler.Trigger(
                name="update_update",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    condition='WHEN (OLD."created_at" IS DISTINCT FROM (NEW."created_at") OR OLD."created_by_id" IS DISTINCT FROM (NEW."created_by_id") OR OLD."description" IS DISTINCT FROM (NEW."description") OR OLD."draft_definition" IS DISTINCT FROM (NEW."draft_definition") OR OLD."id" IS DISTINCT FROM (NEW."id") OR OLD."live_version_id" IS DISTINCT FROM (NEW."live_version_id") OR OLD."name" IS DISTINCT FROM (NEW."name") OR OLD."org_id" IS DISTINCT FROM (NEW."org_id") OR OLD."slug" IS DISTINCT FROM (NEW."slug") OR OLD."status" IS DISTINCT FROM (NEW."status") OR OLD."template_id" IS DISTINCT FROM (NEW."template_id") OR OLD."trigger_event" IS DISTINCT FROM (NEW."trigger_event") OR OLD."trigger_type" IS DISTINCT FROM (NEW."trigger_type"))',
                    func='INSERT INTO "workflows_workflowevent" ("created_at", "created_by_id", "description", "draft_definition", "id", "live_version_id", "name", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "slug", "status", "template_id", "trigger_event", "trigger_type") VALUES (NEW."created_at", NEW."created_by_id", NEW."description", NEW."draft_definition", NEW."id", NEW."live_version_id", NEW."name", NEW."org_id", _pgh_attach_context(), NOW(), \'update\', NEW."id", NEW."slug", NEW."status", NEW."template_id", NEW."trigger_event", NEW."trigger_type"); RETURN NULL;',
                    hash="be95c573e344d65edd0e177191ab5ec9821916a5",
                    operation="UPDATE",
                    pgid="pgtrigger_update_update_35e99",
                    table="workflows_workflow",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="workflow",
            trigger=pgtrigger.compiler.Trigger(
                name="delete_delete",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "workflows_workflowevent" ("created_at", "created_by_id", "description", "draft_definition", "id", "live_version_id", "name", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "slug", "status", "template_id", "trigger_event", "trigger_type") VALUES (OLD."created_at", OLD."created_by_id", OLD."description", OLD."draft_definition", OLD."id", OLD."live_version_id", OLD."name", OLD."org_id", _pgh_attach_context(), NOW(), \'delete\', OLD."id", OLD."slug", OLD."status", OLD."template_id", OLD."trigger_event", OLD."trigger_type"); RETURN NULL;',
                    hash="a20f8991798ffdc1dc030a90f1dce31585e6535f",
                    operation="DELETE",
                    pgid="pgtrigger_delete_delete_1d570",
                    table="workflows_workflow",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="workflowtemplate",
            trigger=pgtrigger.compiler.Trigger(
                name="insert_insert",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "workflows_workflowtemplateevent" ("category", "created_at", "definition", "description", "id", "name", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "slug", "status", "tags", "trigger") VALUES (NEW."category", NEW."created_at", NEW."definition", NEW."description", NEW."id", NEW."name", NEW."org_id", _pgh_attach_context(), NOW(), \'insert\', NEW."id", NEW."slug", NEW."status", NEW."tags", NEW."trigger"); RETURN NULL;',
                    hash="9858402dec821fd4f58e05286cd62e1df99eb7c2",
                    operation="INSERT",
                    pgid="pgtrigger_insert_insert_aa01f",
                    table="workflows_workflowtemplate",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="workflowtemplate",
            trigger=pgtrigger.compiler.Trigger(
                name="update_update",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    condition='WHEN (OLD."category" IS DISTINCT FROM (NEW."category") OR OLD."created_at" IS DISTINCT FROM (NEW."created_at") OR OLD."definition" IS DISTINCT FROM (NEW."definition") OR OLD."description" IS DISTINCT FROM (NEW."description") OR OLD."id" IS DISTINCT FROM (NEW."id") OR OLD."name" IS DISTINCT FROM (NEW."name") OR OLD."org_id" IS DISTINCT FROM (NEW."org_id") OR OLD."slug" IS DISTINCT FROM (NEW."slug") OR OLD."status" IS DISTINCT FROM (NEW."status") OR OLD."tags" IS DISTINCT FROM (NEW."tags") OR OLD."trigger" IS DISTINCT FROM (NEW."trigger"))',
                    func='INSERT INTO "workflows_workflowtemplateevent" ("category", "created_at", "definition", "description", "id", "name", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "slug", "status", "tags", "trigger") VALUES (NEW."category", NEW."created_at", NEW."definition", NEW."description", NEW."id", NEW."name", NEW."org_id", _pgh_attach_context(), NOW(), \'update\', NEW."id", NEW."slug", NEW."status", NEW."tags", NEW."trigger"); RETURN NULL;',
                    hash="9f0a400696070aeca558ccb091ef13ea05963b4a",
                    operation="UPDATE",
                    pgid="pgtrigger_update_update_02149",
                    table="workflows_workflowtemplate",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="workflowtemplate",
            trigger=pgtrigger.compiler.Trigger(
                name="delete_delete",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "workflows_workflowtemplateevent" ("category", "created_at", "definition", "description", "id", "name", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "slug", "status", "tags", "trigger") VALUES (OLD."category", OLD."created_at", OLD."definition", OLD."description", OLD."id", OLD."name", OLD."org_id", _pgh_attach_context(), NOW(), \'delete\', OLD."id", OLD."slug", OLD."status", OLD."tags", OLD."trigger"); RETURN NULL;',
                    hash="36865984198a0c07c31dd1cc0c85d7d5e7cd60ce",
                    operation="DELETE",
                    pgid="pgtrigger_delete_delete_bf61d",
                    table="workflows_workflowtemplate",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="workflowversion",
            trigger=pgtrigger.compiler.Trigger(
                name="insert_insert",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "workflows_workflowversionevent" ("definition", "id", "number", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "published_at", "published_by_id", "workflow_id") VALUES (NEW."definition", NEW."id", NEW."number", NEW."org_id", _pgh_attach_context(), NOW(), \'insert\', NEW."id", NEW."published_at", NEW."published_by_id", NEW."workflow_id"); RETURN NULL;',
                    hash="4f2b914de9baf4b8d6089010cb7144b4d04ee615",
                    operation="INSERT",
                    pgid="pgtrigger_insert_insert_c22c5",
                    table="workflows_workflowversion",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="workflowversion",
            trigger=pgtrigger.compiler.Trigger(
                name="update_update",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    condition="WHEN (OLD.* IS DISTINCT FROM NEW.*)",
                    func='INSERT INTO "workflows_workflowversionevent" ("definition", "id", "number", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "published_at", "published_by_id", "workflow_id") VALUES (NEW."definition", NEW."id", NEW."number", NEW."org_id", _pgh_attach_context(), NOW(), \'update\', NEW."id", NEW."published_at", NEW."published_by_id", NEW."workflow_id"); RETURN NULL;',
                    hash="772cccc737fd6a0954f982e31316d56eccabec66",
                    operation="UPDATE",
                    pgid="pgtrigger_update_update_9800c",
                    table="workflows_workflowversion",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="workflowversion",
            trigger=pgtrigger.compiler.Trigger(
                name="delete_delete",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "workflows_workflowversionevent" ("definition", "id", "number", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "published_at", "published_by_id", "workflow_id") VALUES (OLD."definition", OLD."id", OLD."number", OLD."org_id", _pgh_attach_context(), NOW(), \'delete\', OLD."id", OLD."published_at", OLD."published_by_id", OLD."workflow_id"); RETURN NULL;',
                    hash="4d222bb96d3e200512c19fcf87502c7dd13d5375",
                    operation="DELETE",
                    pgid="pgtrigger_delete_delete_dcac7",
                    table="workflows_workflowversion",
                    when="AFTER",
                ),
            ),
        ),
        migrations.AddField(
            model_name="scheduledjobevent",
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
            model_name="scheduledjobevent",
            name="periodic_task",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                related_query_name="+",
                to="django_celery_beat.periodictask",
            ),
        ),
        migrations.AddField(
            model_name="scheduledjobevent",
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
            model_name="scheduledjobevent",
            name="pgh_obj",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="events",
                to="workflows.scheduledjob",
            ),
        ),
        migrations.AddField(
            model_name="scheduledjobevent",
            name="segment",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                help_text="Whose members are enrolled at each run.",
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                related_query_name="+",
                to="marketing.segment",
            ),
        ),
        migrations.AddField(
            model_name="scheduledjobevent",
            name="workflow",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                related_query_name="+",
                to="workflows.workflow",
            ),
        ),
        migrations.AddField(
            model_name="workflowevent",
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
            model_name="workflowevent",
            name="live_version",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                related_query_name="+",
                to="workflows.workflowversion",
            ),
        ),
        migrations.AddField(
            model_name="workflowevent",
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
            model_name="workflowevent",
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
            model_name="workflowevent",
            name="pgh_obj",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="events",
                to="workflows.workflow",
            ),
        ),
        migrations.AddField(
            model_name="workflowevent",
            name="template",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                related_query_name="+",
                to="workflows.workflowtemplate",
            ),
        ),
        migrations.AddField(
            model_name="workflowtemplateevent",
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
            model_name="workflowtemplateevent",
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
            model_name="workflowtemplateevent",
            name="pgh_obj",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="events",
                to="workflows.workflowtemplate",
            ),
        ),
        migrations.AddField(
            model_name="workflowversionevent",
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
            model_name="workflowversionevent",
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
            model_name="workflowversionevent",
            name="pgh_obj",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="events",
                to="workflows.workflowversion",
            ),
        ),
        migrations.AddField(
            model_name="workflowversionevent",
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
            model_name="workflowversionevent",
            name="workflow",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                related_query_name="+",
                to="workflows.workflow",
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="scheduledjobevent",
            trigger=pgtrigger.compiler.Trigger(
                name="scheduledjobevent_append_only",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    execute="append_only_refuse()",
                    func="RETURN NULL;",
                    hash="64d9e5b7ed57892da616bfbf9f4ba69338f39767",
                    level="STATEMENT",
                    operation="UPDATE OR DELETE OR TRUNCATE",
                    pgid="pgtrigger_scheduledjobevent_append_only_cff4a",
                    table="workflows_scheduledjobevent",
                    when="BEFORE",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="workflowevent",
            trigger=pgtrigger.compiler.Trigger(
                name="workflowevent_append_only",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    execute="append_only_refuse()",
                    func="RETURN NULL;",
                    hash="db6b04e7210b8f50f17da1fb95228d08486fa2dc",
                    level="STATEMENT",
                    operation="UPDATE OR DELETE OR TRUNCATE",
                    pgid="pgtrigger_workflowevent_append_only_9924f",
                    table="workflows_workflowevent",
                    when="BEFORE",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="workflowtemplateevent",
            trigger=pgtrigger.compiler.Trigger(
                name="workflowtemplateevent_append_only",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    execute="append_only_refuse()",
                    func="RETURN NULL;",
                    hash="cddca37c182c61121f44a84b5150829d660c235d",
                    level="STATEMENT",
                    operation="UPDATE OR DELETE OR TRUNCATE",
                    pgid="pgtrigger_workflowtemplateevent_append_only_19f11",
                    table="workflows_workflowtemplateevent",
                    when="BEFORE",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="workflowversionevent",
            trigger=pgtrigger.compiler.Trigger(
                name="workflowversionevent_append_only",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    execute="append_only_refuse()",
                    func="RETURN NULL;",
                    hash="c814f7830fc877243eaaee775864de65c1b1bf3d",
                    level="STATEMENT",
                    operation="UPDATE OR DELETE OR TRUNCATE",
                    pgid="pgtrigger_workflowversionevent_append_only_d9dd2",
                    table="workflows_workflowversionevent",
                    when="BEFORE",
                ),
            ),
        ),
        # The history is tenant data like the rows it copies: each org sees its own.
        row_security(
            "workflows_workflowevent",
            "workflows_workflowversionevent",
            "workflows_workflowtemplateevent",
            "workflows_scheduledjobevent",
        ),
    ]
