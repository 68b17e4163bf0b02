from workflows.models import WorkflowStepRun
from workflows.services import workflow_enrol_manually

from tests.workflows.conftest import only_instance


def test_a_linear_run_completes(org, contact, publish, drain):
    workflow = publish(
        [
            {"id": "tag", "type": "action", "action": "add_tag", "config": {"tags": ["vip"]}, "next": "check"},
            {
                "id": "check",
                "type": "condition",
                "condition": {"in": ["vip", {"var": "tags"}]},
                "true_next": "log",
                "false_next": None,
            },
            {"id": "log", "type": "action", "action": "log", "config": {"message": "hi"}, "next": None},
        ]
    )
    assert workflow_enrol_manually(workflow=workflow, contact_ids=[contact.pk]) == 1
    drain()
    instance = only_instance(workflow)
    assert instance.status == "completed", instance.error
    assert list(WorkflowStepRun.objects.filter(instance=instance).values_list("step_id", flat=True)) == [
        "tag",
        "check",
        "log",
    ]
    assert instance.context["steps"]["check"]["result"] == {"result": True}
