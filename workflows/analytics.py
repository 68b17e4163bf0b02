"""Read access to the analytics views (migration ``0002_analytics_views``), one org at a time.

The views have no Django models (nothing writes them, and a model would only add an unmanaged
table Django keeps asking about); these selectors read them with plain SQL and always filter on
``org_id``, so a caller cannot forget the tenant. See docs/workflows.md, "Analytics views".
"""

import json
from datetime import UTC, datetime
from typing import Any

from django.db import connection

TIMELINE_LIMIT = 500


def _org_id(org) -> int:
    return org if isinstance(org, int) else org.pk


def _moment(value) -> datetime | None:
    """A datetime column as an aware UTC datetime (SQLite hands views' columns back as text)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _rows(sql: str, params: list[Any]) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        columns = [c[0] for c in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def automation_performance(*, org, workflow_id: int | None = None) -> list[dict]:
    """Per workflow of ``org`` (by name): ``executions`` (finished runs), ``successes``,
    ``failures``, ``cancelled``, ``success_rate`` (successes / executions, 0–1, None without
    runs) and ``avg_duration_ms`` (None without runs), from ``v_automation_performance``."""
    sql = (
        "SELECT workflow_id, name, executions, successes, failures, cancelled, success_rate, avg_duration_ms "
        "FROM v_automation_performance WHERE org_id = %s"
    )
    params: list[Any] = [_org_id(org)]
    if workflow_id is not None:
        sql += " AND workflow_id = %s"
        params.append(workflow_id)
    rows = _rows(sql + " ORDER BY name, workflow_id", params)
    for row in rows:
        for key in ("executions", "successes", "failures", "cancelled"):
            row[key] = int(row[key] or 0)
        row["success_rate"] = float(row["success_rate"]) if row["success_rate"] is not None else None
        row["avg_duration_ms"] = int(row["avg_duration_ms"]) if row["avg_duration_ms"] is not None else None
    return rows


def workflow_timeline(
    *,
    org,
    workflow_id: int | None = None,
    instance_id: int | None = None,
    contact_id: int | None = None,
    status: str | None = None,
    limit: int = TIMELINE_LIMIT,
) -> list[dict]:
    """Runs of ``org`` from ``v_workflow_timeline``, newest first: ``instance_id``,
    ``workflow_id``, ``contact_id``, ``started_at``, ``finished_at``, ``status`` and ``steps`` —
    each step run as ``{"step", "started_at", "completed_at", "status"}`` in time order."""
    sql = (
        "SELECT instance_id, workflow_id, contact_id, started_at, finished_at, status, steps "
        "FROM v_workflow_timeline WHERE org_id = %s"
    )
    params: list[Any] = [_org_id(org)]
    for column, value in (
        ("workflow_id", workflow_id),
        ("instance_id", instance_id),
        ("contact_id", contact_id),
        ("status", status),
    ):
        if value is not None:
            sql += f" AND {column} = %s"  # column names are ours; values are parameters
            params.append(value)
    sql += " ORDER BY instance_id DESC LIMIT %s"
    params.append(max(1, min(limit, TIMELINE_LIMIT)))
    rows = _rows(sql, params)
    for row in rows:
        row["started_at"], row["finished_at"] = _moment(row["started_at"]), _moment(row["finished_at"])
        steps = row["steps"]
        row["steps"] = json.loads(steps) if isinstance(steps, str | bytes) else (steps or [])
    return rows
