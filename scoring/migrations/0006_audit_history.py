import django.db.models.deletion
import pgtrigger.compiler
import pgtrigger.migrations
from django.conf import settings
from django.db import migrations, models

from marketing.postgres_operations import row_security


class Migration(migrations.Migration):
    dependencies = [
        ("scoring", "0005_handoff_sla_label"),
        ("marketing", "0013_audit_history"),
        ("pghistory", "0007_auto_20250421_0444"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="HandoffPolicyEvent",
            fields=[
                ("pgh_id", models.AutoField(primary_key=True, serialize=False)),
                ("pgh_created_at", models.DateTimeField(auto_now_add=True)),
                ("pgh_label", models.TextField(help_text="The event label.")),
                ("id", models.BigIntegerField()),
                (
                    "strategy",
                    models.CharField(
                        choices=[
                            ("round_robin", "Round-robin"),
                            ("territory", "Territory (country → reps)"),
                            ("skill", "Skill (product interest → reps)"),
                            ("workload", "Workload (fewest open)"),
                        ],
                        default="round_robin",
                        max_length=12,
                    ),
                ),
                ("territories", models.JSONField(blank=True, default=dict)),
                ("skills", models.JSONField(blank=True, default=dict)),
                ("skill_property", models.CharField(blank=True, default="product_interest", max_length=100)),
                ("sla_hours", models.PositiveIntegerField(default=24)),
                (
                    "nurture_days",
                    models.PositiveIntegerField(
                        blank=True,
                        help_text="Hand off contacts nurtured this long (in a lead stage); empty: never.",
                        null=True,
                    ),
                ),
                (
                    "notify_destination",
                    models.SlugField(
                        blank=True,
                        db_index=False,
                        help_text="A Slack destination told of each new handoff (besides the rep's email).",
                        max_length=100,
                    ),
                ),
            ],
            options={
                "abstract": False,
            },
        ),
        migrations.CreateModel(
            name="ScoringModelEvent",
            fields=[
                ("pgh_id", models.AutoField(primary_key=True, serialize=False)),
                ("pgh_created_at", models.DateTimeField(auto_now_add=True)),
                ("pgh_label", models.TextField(help_text="The event label.")),
                ("id", models.BigIntegerField()),
                ("slug", models.SlugField(db_index=False, max_length=100)),
                ("name", models.CharField(max_length=200)),
                (
                    "is_default",
                    models.BooleanField(default=False, help_text="Mirrored on Contact.score; one per organisation."),
                ),
                ("base", models.IntegerField(default=100, help_text="Every contact's score before any rule.")),
                ("minimum", models.IntegerField(default=0)),
                ("maximum", models.IntegerField(default=1000)),
                (
                    "decay_factor",
                    models.FloatField(
                        default=0.95, help_text="What (score − base) is multiplied by per window without activity."
                    ),
                ),
                ("decay_window_days", models.PositiveIntegerField(default=30)),
                ("thresholds", models.JSONField(blank=True, default=list)),
                ("active", models.BooleanField(default=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "abstract": False,
            },
        ),
        migrations.CreateModel(
            name="ScoringRuleEvent",
            fields=[
                ("pgh_id", models.AutoField(primary_key=True, serialize=False)),
                ("pgh_created_at", models.DateTimeField(auto_now_add=True)),
                ("pgh_label", models.TextField(help_text="The event label.")),
                ("id", models.BigIntegerField()),
                ("name", models.CharField(max_length=200)),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("behaviour", "Behaviour (an event)"),
                            ("fit", "Fit (contact and company properties)"),
                        ],
                        default="behaviour",
                        max_length=10,
                    ),
                ),
                (
                    "event_type",
                    models.CharField(blank=True, help_text="Behaviour rules: the event's type.", max_length=100),
                ),
                (
                    "condition",
                    models.JSONField(
                        blank=True,
                        help_text="A JsonLogic rule over the contact (and the event); empty: always.",
                        null=True,
                    ),
                ),
                ("points", models.IntegerField(help_text="Negative to take points off.")),
                ("cap_count", models.PositiveIntegerField(blank=True, null=True)),
                (
                    "cap_period",
                    models.CharField(
                        blank=True, choices=[("day", "Day"), ("week", "Week"), ("month", "Month")], max_length=5
                    ),
                ),
                ("creates_handoff", models.BooleanField(default=False)),
                ("active", models.BooleanField(default=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "abstract": False,
            },
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="handoffpolicy",
            trigger=pgtrigger.compiler.Trigger(
                name="insert_insert",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "scoring_handoffpolicyevent" ("id", "notify_destination", "nurture_days", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "skill_property", "skills", "sla_hours", "strategy", "territories") VALUES (NEW."id", NEW."notify_destination", NEW."nurture_days", NEW."org_id", _pgh_attach_context(), NOW(), \'insert\', NEW."id", NEW."skill_property", NEW."skills", NEW."sla_hours", NEW."strategy", NEW."territories"); RETURN NULL;',
                    hash="594cf917078b51b4536ddf47a4231e1e08c75907",
                    operation="INSERT",
                    pgid="pgtrigger_insert_insert_094df",
                    table="scoring_handoffpolicy",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="handoffpolicy",
            trigger=pgtrigger.compiler.Trigger(
                name="update_update",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    condition='WHEN (OLD."id" IS DISTINCT FROM (NEW."id") OR OLD."notify_destination" IS DISTINCT FROM (NEW."notify_destination") OR OLD."nurture_days" IS DISTINCT FROM (NEW."nurture_days") OR OLD."org_id" IS DISTINCT FROM (NEW."org_id") OR OLD."skill_property" IS DISTINCT FROM (NEW."skill_property") OR OLD."skills" IS DISTINCT FROM (NEW."skills") OR OLD."sla_hours" IS DISTINCT FROM (NEW."sla_hours") OR OLD."strategy" IS DISTINCT FROM (NEW."strategy") OR OLD."territories" IS DISTINCT FROM (NEW."territories"))',
                    func='INSERT INTO "scoring_handoffpolicyevent" ("id", "notify_destination", "nurture_days", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "skill_property", "skills", "sla_hours", "strategy", "territories") VALUES (NEW."id", NEW."notify_destination", NEW."nurture_days", NEW."org_id", _pgh_attach_context(), NOW(), \'update\', NEW."id", NEW."skill_property", NEW."skills", NEW."sla_hours", NEW."strategy", NEW."territories"); RETURN NULL;',
                    hash="dc7f7af3f83445bfa8d4ca3fddd9baff6e2980c7",
                    operation="UPDATE",
                    pgid="pgtrigger_update_update_6ee6e",
                    table="scoring_handoffpolicy",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="handoffpolicy",
            trigger=pgtrigger.compiler.Trigger(
                name="delete_delete",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "scoring_handoffpolicyevent" ("id", "notify_destination", "nurture_days", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "skill_property", "skills", "sla_hours", "strategy", "territories") VALUES (OLD."id", OLD."notify_destination", OLD."nurture_days", OLD."org_id", _pgh_attach_context(), NOW(), \'delete\', OLD."id", OLD."skill_property", OLD."skills", OLD."sla_hours", OLD."strategy", OLD."territories"); RETURN NULL;',
                    hash="0000fa40a4cb58124ce9dba6836270a714cecd9b",
                    operation="DELETE",
                    pgid="pgtrigger_delete_delete_32c20",
                    table="scoring_handoffpolicy",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="scoringmodel",
            trigger=pgtrigger.compiler.Trigger(
                name="insert_insert",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "scoring_scoringmodelevent" ("active", "base", "created_at", "decay_factor", "decay_window_days", "id", "is_default", "maximum", "minimum", "name", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "slug", "thresholds") VALUES (NEW."active", NEW."base", NEW."created_at", NEW."decay_factor", NEW."decay_window_days", NEW."id", NEW."is_default", NEW."maximum", NEW."minimum", NEW."name", NEW."org_id", _pgh_attach_context(), NOW(), \'insert\', NEW."id", NEW."slug", NEW."thresholds"); RETURN NULL;',
                    hash="64b9516245c4414e1bb42fa645fc609485a276be",
                    operation="INSERT",
                    pgid="pgtrigger_insert_insert_b790a",
                    table="scoring_scoringmodel",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="scoringmodel",
            trigger=pgtrigger.compiler.Trigger(
                name="update_update",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    condition='WHEN (OLD."active" IS DISTINCT FROM (NEW."active") OR OLD."base" IS DISTINCT FROM (NEW."base") OR OLD."created_at" IS DISTINCT FROM (NEW."created_at") OR OLD."decay_factor" IS DISTINCT FROM (NEW."decay_factor") OR OLD."decay_window_days" IS DISTINCT FROM (NEW."decay_window_days") OR OLD."id" IS DISTINCT FROM (NEW."id") OR OLD."is_default" IS DISTINCT FROM (NEW."is_default") OR OLD."maximum" IS DISTINCT FROM (NEW."maximum") OR OLD."minimum" IS DISTINCT FROM (NEW."minimum") OR OLD."name" IS DISTINCT FROM (NEW."name") OR OLD."org_id" IS DISTINCT FROM (NEW."org_id") OR OLD."slug" IS DISTINCT FROM (NEW."slug") OR OLD."thresholds" IS DISTINCT FROM (NEW."thresholds"))',
                    func='INSERT INTO "scoring_scoringmodelevent" ("active", "base", "created_at", "decay_factor", "decay_window_days", "id", "is_default", "maximum", "minimum", "name", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "slug", "thresholds") VALUES (NEW."active", NEW."base", NEW."created_at", NEW."decay_factor", NEW."decay_window_days", NEW."id", NEW."is_default", NEW."maximum", NEW."minimum", NEW."name", NEW."org_id", _pgh_attach_context(), NOW(), \'update\', NEW."id", NEW."slug", NEW."thresholds"); RETURN NULL;',
                    hash="351cc500d0047e59afe723ff28cae882e0fde7a9",
                    operation="UPDATE",
                    pgid="pgtrigger_update_update_2839e",
                    table="scoring_scoringmodel",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="scoringmodel",
            trigger=pgtrigger.compiler.Trigger(
                name="delete_delete",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "scoring_scoringmodelevent" ("active", "base", "created_at", "decay_factor", "decay_window_days", "id", "is_default", "maximum", "minimum", "name", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "slug", "thresholds") VALUES (OLD."active", OLD."base", OLD."created_at", OLD."decay_factor", OLD."decay_window_days", OLD."id", OLD."is_default", OLD."maximum", OLD."minimum", OLD."name", OLD."org_id", _pgh_attach_context(), NOW(), \'delete\', OLD."id", OLD."slug", OLD."thresholds"); RETURN NULL;',
                    hash="c4c61d1e2da2aa05b0a1a70b060597cb8690801f",
                    operation="DELETE",
                    pgid="pgtrigger_delete_delete_9326e",
                    table="scoring_scoringmodel",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="scoringrule",
            trigger=pgtrigger.compiler.Trigger(
                name="insert_insert",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "scoring_scoringruleevent" ("active", "cap_count", "cap_period", "condition", "created_at", "creates_handoff", "event_type", "id", "kind", "model_id", "name", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "points") VALUES (NEW."active", NEW."cap_count", NEW."cap_period", NEW."condition", NEW."created_at", NEW."creates_handoff", NEW."event_type", NEW."id", NEW."kind", NEW."model_id", NEW."name", NEW."org_id", _pgh_attach_context(), NOW(), \'insert\', NEW."id", NEW."points"); RETURN NULL;',
                    hash="2c6796273832d39c32e149b8f212f876d329e5ce",
                    operation="INSERT",
                    pgid="pgtrigger_insert_insert_46d5f",
                    table="scoring_scoringrule",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="scoringrule",
            trigger=pgtrigger.compiler.Trigger(
                name="update_update",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    condition='WHEN (OLD."active" IS DISTINCT FROM (NEW."active") OR OLD."cap_count" IS DISTINCT FROM (NEW."cap_count") OR OLD."cap_period" IS DISTINCT FROM (NEW."cap_period") OR OLD."condition" IS DISTINCT FROM (NEW."condition") OR OLD."created_at" IS DISTINCT FROM (NEW."created_at") OR OLD."creates_handoff" IS DISTINCT FROM (NEW."creates_handoff") OR OLD."event_type" IS DISTINCT FROM (NEW."event_type") OR OLD."id" IS DISTINCT FROM (NEW."id") OR OLD."kind" IS DISTINCT FROM (NEW."kind") OR OLD."model_id" IS DISTINCT FROM (NEW."model_id") OR OLD."name" IS DISTINCT FROM (NEW."name") OR OLD."org_id" IS DISTINCT FROM (NEW."org_id") OR OLD."points" IS DISTINCT FROM (NEW."points"))',
                    func='INSERT INTO "scoring_scoringruleevent" ("active", "cap_count", "cap_period", "condition", "created_at", "creates_handoff", "event_type", "id", "kind", "model_id", "name", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "points") VALUES (NEW."active", NEW."cap_count", NEW."cap_period", NEW."condition", NEW."created_at", NEW."creates_handoff", NEW."event_type", NEW."id", NEW."kind", NEW."model_id", NEW."name", NEW."org_id", _pgh_attach_context(), NOW(), \'update\', NEW."id", NEW."points"); RETURN NULL;',
                    hash="51b51215aac20bbe998b29a2afab507971d94fea",
                    operation="UPDATE",
                    pgid="pgtrigger_update_update_3d3ce",
                    table="scoring_scoringrule",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="scoringrule",
            trigger=pgtrigger.compiler.Trigger(
                name="delete_delete",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "scoring_scoringruleevent" ("active", "cap_count", "cap_period", "condition", "created_at", "creates_handoff", "event_type", "id", "kind", "model_id", "name", "org_id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "points") VALUES (OLD."active", OLD."cap_count", OLD."cap_period", OLD."condition", OLD."created_at", OLD."creates_handoff", OLD."event_type", OLD."id", OLD."kind", OLD."model_id", OLD."name", OLD."org_id", _pgh_attach_context(), NOW(), \'delete\', OLD."id", OLD."points"); RETURN NULL;',
                    hash="b7250ce2fbfc068e2401e36033bf203361d29a72",
                    operation="DELETE",
                    pgid="pgtrigger_delete_delete_fed56",
                    table="scoring_scoringrule",
                    when="AFTER",
                ),
            ),
        ),
        migrations.AddField(
            model_name="handoffpolicyevent",
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
            model_name="handoffpolicyevent",
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
            model_name="handoffpolicyevent",
            name="pgh_obj",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="events",
                to="scoring.handoffpolicy",
            ),
        ),
        migrations.AddField(
            model_name="scoringmodelevent",
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
            model_name="scoringmodelevent",
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
            model_name="scoringmodelevent",
            name="pgh_obj",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="events",
                to="scoring.scoringmodel",
            ),
        ),
        migrations.AddField(
            model_name="scoringruleevent",
            name="model",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                related_query_name="+",
                to="scoring.scoringmodel",
            ),
        ),
        migrations.AddField(
            model_name="scoringruleevent",
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
            model_name="scoringruleevent",
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
            model_name="scoringruleevent",
            name="pgh_obj",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="events",
                to="scoring.scoringrule",
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="handoffpolicyevent",
            trigger=pgtrigger.compiler.Trigger(
                name="handoffpolicyevent_append_only",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    execute="append_only_refuse()",
                    func="RETURN NULL;",
                    hash="86724709fe7f40ce81e01e24bb76f6dd4d33af33",
                    level="STATEMENT",
                    operation="UPDATE OR DELETE OR TRUNCATE",
                    pgid="pgtrigger_handoffpolicyevent_append_only_017e2",
                    table="scoring_handoffpolicyevent",
                    when="BEFORE",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="scoringmodelevent",
            trigger=pgtrigger.compiler.Trigger(
                name="scoringmodelevent_append_only",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    execute="append_only_refuse()",
                    func="RETURN NULL;",
                    hash="7e05622d44082a38065aa9d65ba15b2b215f1b9e",
                    level="STATEMENT",
                    operation="UPDATE OR DELETE OR TRUNCATE",
                    pgid="pgtrigger_scoringmodelevent_append_only_dcd8b",
                    table="scoring_scoringmodelevent",
                    when="BEFORE",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="scoringruleevent",
            trigger=pgtrigger.compiler.Trigger(
                name="scoringruleevent_append_only",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    execute="append_only_refuse()",
                    func="RETURN NULL;",
                    hash="6ec2b169559cb4707a8e371d86b85f00d0fb7536",
                    level="STATEMENT",
                    operation="UPDATE OR DELETE OR TRUNCATE",
                    pgid="pgtrigger_scoringruleevent_append_only_dbf5a",
                    table="scoring_scoringruleevent",
                    when="BEFORE",
                ),
            ),
        ),
        # The history is tenant data like the rows it copies: each org sees its own.
        row_security("scoring_scoringmodelevent", "scoring_scoringruleevent", "scoring_handoffpolicyevent"),
    ]
