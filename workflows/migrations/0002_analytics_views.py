"""Two read-only SQL views for analytics (docs/workflows.md, "Analytics views"):

- ``v_automation_performance``: per workflow, its finished runs (``AutomationExecution``):
  executions, successes, failures, cancelled, success rate and average duration.
- ``v_workflow_timeline``: per instance, its times and status and each step run's times as a
  JSON array ordered by time.

The SQL differs per database (``jsonb_agg`` on PostgreSQL, ``json_group_array`` on SQLite), so
the views are made in a RunPython that picks it by vendor. It is written out here, not imported,
so that this migration keeps making the same views whatever the code becomes. On PostgreSQL 15+
the views are ``security_invoker``: row-level security on the tables applies to who reads them.

A later migration that changes the type of, or drops, a column these views read must drop the
views first and create them again after (PostgreSQL refuses to alter a column a view uses).
"""

from django.db import migrations

DROP = [
    "DROP VIEW IF EXISTS v_workflow_timeline",
    "DROP VIEW IF EXISTS v_automation_performance",
]

PERFORMANCE_SELECT = """
SELECT w.id AS workflow_id,
       w.org_id AS org_id,
       w.name AS name,
       COUNT(e.id) AS executions,
       COUNT(CASE WHEN e.status = 'success' THEN 1 END) AS successes,
       COUNT(CASE WHEN e.status = 'failure' THEN 1 END) AS failures,
       COUNT(CASE WHEN e.status = 'cancelled' THEN 1 END) AS cancelled,
       {success_rate} AS success_rate,
       {avg_duration} AS avg_duration_ms
FROM workflows_workflow w
LEFT JOIN workflows_automationexecution e ON e.workflow_id = w.id AND e.org_id = w.org_id
GROUP BY w.id, w.org_id, w.name
"""

POSTGRES = [
    "CREATE OR REPLACE VIEW v_automation_performance{options} AS"
    + PERFORMANCE_SELECT.format(
        success_rate="ROUND(COUNT(CASE WHEN e.status = 'success' THEN 1 END)::numeric "
        "/ NULLIF(COUNT(e.id), 0), 4)::double precision",
        avg_duration="ROUND(AVG(e.duration_ms))::bigint",
    ),
    """CREATE OR REPLACE VIEW v_workflow_timeline{options} AS
SELECT i.id AS instance_id,
       i.workflow_id AS workflow_id,
       i.org_id AS org_id,
       i.contact_id AS contact_id,
       i.started_at AS started_at,
       i.finished_at AS finished_at,
       i.status AS status,
       COALESCE((
           SELECT jsonb_agg(
                      jsonb_build_object(
                          'step', r.step_id,
                          'started_at', to_char(r.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                          'completed_at', to_char(r.completed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                          'status', r.status
                      )
                      ORDER BY r.started_at, r.completed_at, r.id
                  )
           FROM workflows_workflowsteprun r
           WHERE r.instance_id = i.id
       ), '[]'::jsonb) AS steps
FROM workflows_workflowinstance i
""",
]

SQLITE = [
    "CREATE VIEW IF NOT EXISTS v_automation_performance AS"
    + PERFORMANCE_SELECT.format(
        success_rate="ROUND(CAST(COUNT(CASE WHEN e.status = 'success' THEN 1 END) AS REAL) "
        "/ NULLIF(COUNT(e.id), 0), 4)",
        avg_duration="CAST(ROUND(AVG(e.duration_ms)) AS INTEGER)",
    ),
    # SQLite before 3.44 has no ORDER BY inside an aggregate; it aggregates in the order of the
    # ordered subquery.
    """CREATE VIEW IF NOT EXISTS v_workflow_timeline AS
SELECT i.id AS instance_id,
       i.workflow_id AS workflow_id,
       i.org_id AS org_id,
       i.contact_id AS contact_id,
       i.started_at AS started_at,
       i.finished_at AS finished_at,
       i.status AS status,
       (
           SELECT json_group_array(
                      json_object(
                          'step', r.step_id,
                          'started_at', strftime('%Y-%m-%dT%H:%M:%fZ', r.started_at),
                          'completed_at', strftime('%Y-%m-%dT%H:%M:%fZ', r.completed_at),
                          'status', r.status
                      )
                  )
           FROM (
               SELECT step_id, started_at, completed_at, status
               FROM workflows_workflowsteprun
               WHERE instance_id = i.id
               ORDER BY started_at, completed_at, id
           ) r
       ) AS steps
FROM workflows_workflowinstance i
""",
]


def create_views(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor == "postgresql":
        options = " WITH (security_invoker = true)" if connection.pg_version >= 150000 else ""
        statements = [sql.replace("{options}", options) for sql in POSTGRES]
    elif connection.vendor == "sqlite":
        # Django remakes a table on SQLite to alter it (create a copy, drop, rename the copy);
        # with a view reading the table, SQLite 3.26+ re-checks every view at the rename and
        # fails ("error in view v_workflow_timeline: no such table"). The legacy rename skips
        # that check. Set here for the rest of this migrate run, which covers new databases
        # (and every test database); see docs/workflows.md for later runs.
        schema_editor.execute("PRAGMA legacy_alter_table = ON", None)
        statements = SQLITE
    else:
        raise NotImplementedError(f"The analytics views have no SQL for {connection.vendor}.")
    for sql in statements:
        schema_editor.execute(sql, None)  # no parameters: "%" in the SQL is literal


def drop_views(apps, schema_editor):
    for sql in DROP:
        schema_editor.execute(sql, None)


class Migration(migrations.Migration):
    dependencies = [
        ("workflows", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(create_views, drop_views, elidable=False),
    ]
