"""Workflow analytics: totals, and per step the runs, failures and median time in the step."""

from datetime import timedelta

from tests.factories import ContactFactory
from tests.workflows.test_engine import T0, enrol
from workflows.selectors import workflow_analytics


def test_analytics_count_runs_and_take_the_median_time_in_each_step(org, publish, drain):
    workflow = publish(
        [
            {"id": "wait", "type": "delay", "config": {"until": (T0 + timedelta(hours=1)).isoformat()}, "next": "log"},
            {"id": "log", "type": "action", "action": "log", "config": {"message": "x"}, "next": None},
        ],
        settings={"reenrollment": "always"},
    )
    for minutes in (0, 10, 30):  # enrolled at different times: 60, 50 and 30 minutes in the delay
        enrol(workflow, ContactFactory(org=org), key=f"k{minutes}", now=T0 + timedelta(minutes=minutes))
        drain(T0 + timedelta(minutes=minutes))
    enrol(workflow, ContactFactory(org=org), key="later", now=T0 + timedelta(hours=2))  # not started yet
    drain(T0 + timedelta(hours=1))

    stats = workflow_analytics(workflow=workflow)
    assert (stats["enrolled"], stats["completed"], stats["active"], stats["failed"]) == (4, 3, 1, 0)
    assert stats["steps"]["wait"] == {"runs": 3, "failed": 0, "median_s": 3000.0}
    assert stats["steps"]["log"]["runs"] == 3 and stats["steps"]["log"]["median_s"] == 0.0
