"""The engine, step type by step type, on a simulated clock (the engine takes ``now``)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from django_scopes import scopes_disabled

from marketing.models import Tag
from tests.factories import ContactFactory
from tests.workflows.conftest import only_instance
from workflows.engine import advance_batch
from workflows.models import Approval, AutomationExecution, WorkflowInstance, WorkflowStepRun
from workflows.services import (
    approval_decide,
    instances_cancel,
    instances_pause,
    instances_resume,
    instances_retry,
    workflow_enrol,
)

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # a Monday


def enrol(workflow, *contacts, key="k", now=T0, data=None):
    return workflow_enrol(
        workflow=workflow,
        contact_ids=[c.pk for c in contacts],
        trigger_type="manual",
        trigger_key=key,
        trigger_data=data,
        now=now,
    )


def path(instance) -> list[str]:
    return list(
        WorkflowStepRun.objects.filter(instance=instance, status="completed")
        .order_by("id")
        .values_list("step_id", flat=True)
    )


def test_condition_takes_the_branch_the_rule_chooses(org, publish, drain):
    workflow = publish(
        [
            {
                "id": "c",
                "type": "condition",
                "condition": {"==": [{"var": "country"}, "DE"]},
                "true_next": "de",
                "false_next": "other",
            },
            {"id": "de", "type": "action", "action": "log", "config": {"message": "de"}, "next": None},
            {"id": "other", "type": "action", "action": "log", "config": {"message": "other"}, "next": None},
        ]
    )
    german, french = ContactFactory(org=org, country="DE"), ContactFactory(org=org, country="FR")
    enrol(workflow, german, french)
    drain(T0)
    assert path(WorkflowInstance.objects.get(contact=german)) == ["c", "de"]
    assert path(WorkflowInstance.objects.get(contact=french)) == ["c", "other"]


def test_switch_picks_the_first_case_that_holds_else_the_default(org, publish, drain):
    workflow = publish(
        [
            {
                "id": "s",
                "type": "switch",
                "cases": [
                    {"when": {">": [{"var": "score"}, 500]}, "next": "hot"},
                    {"when": {">": [{"var": "score"}, 100]}, "next": "warm"},
                ],
                "default_next": "cold",
            },
            *(
                {"id": name, "type": "action", "action": "log", "config": {"message": name}, "next": None}
                for name in ("hot", "warm", "cold")
            ),
        ]
    )
    contacts = {score: ContactFactory(org=org, score=score) for score in (900, 300, 5)}
    enrol(workflow, *contacts.values())
    drain(T0)
    assert [path(WorkflowInstance.objects.get(contact=c))[-1] for c in contacts.values()] == ["hot", "warm", "cold"]


def test_split_is_deterministic_per_contact_and_follows_the_weights(org, publish, drain):
    workflow = publish(
        [
            {
                "id": "ab",
                "type": "split",
                "branches": [{"name": "A", "weight": 80, "next": "a"}, {"name": "B", "weight": 20, "next": "b"}],
            },
            {"id": "a", "type": "action", "action": "log", "config": {"message": "a"}, "next": None},
            {"id": "b", "type": "action", "action": "log", "config": {"message": "b"}, "next": None},
        ],
        settings={"reenrollment": "always"},
    )
    contacts = [ContactFactory(org=org) for _ in range(400)]
    enrol(workflow, *contacts, key="first")
    drain(T0)
    enrol(workflow, *contacts, key="second")
    drain(T0)
    arms = {}
    for instance in WorkflowInstance.objects.filter(workflow=workflow):
        arms.setdefault(instance.contact_id, set()).add(instance.context["steps"]["ab"]["result"]["branch"])
    assert all(len(seen) == 1 for seen in arms.values())  # same arm both times
    share_a = sum("A" in seen for seen in arms.values()) / len(arms)
    assert 0.72 < share_a < 0.88


def test_delay_by_duration_waits_then_goes_on(org, contact, publish, drain):
    workflow = publish(
        [
            {"id": "wait", "type": "delay", "config": {"duration": "P2D"}, "next": "after"},
            {"id": "after", "type": "action", "action": "log", "config": {"message": "later"}, "next": None},
        ]
    )
    enrol(workflow, contact)
    drain(T0)
    instance = only_instance(workflow)
    assert (instance.status, instance.current_step, instance.wake_at) == ("waiting", "wait", T0 + timedelta(days=2))
    drain(T0 + timedelta(days=1))
    assert only_instance(workflow).status == "waiting"
    drain(T0 + timedelta(days=2, seconds=1))
    instance = only_instance(workflow)
    assert instance.status == "completed"
    delay_run = WorkflowStepRun.objects.get(instance=instance, step_id="wait")
    assert delay_run.duration_ms == (2 * 86400 + 1) * 1000  # time in step, from entering to leaving


def test_delay_until_a_datetime_and_until_the_next_local_weekday_morning(org, publish, drain):
    until = publish(
        [{"id": "d", "type": "delay", "config": {"until": "2026-12-24T18:00:00+00:00"}, "next": None}], slug="until"
    )
    local = publish(
        [
            {
                "id": "d",
                "type": "delay",
                "config": {"until_local_time": "09:00", "weekdays": ["mon", "tue", "wed", "thu", "fri"]},
                "next": None,
            }
        ],
        slug="local",
    )
    tokyo = ContactFactory(org=org, time_zone="Asia/Tokyo")
    friday_evening = datetime(2026, 12, 4, 20, 0, tzinfo=UTC)  # Saturday 05:00 in Tokyo
    enrol(until, tokyo, now=friday_evening)
    enrol(local, tokyo, now=friday_evening)
    drain(friday_evening)
    assert only_instance(until).wake_at == datetime(2026, 12, 24, 18, 0, tzinfo=UTC)
    assert only_instance(local).wake_at == datetime(2026, 12, 7, 0, 0, tzinfo=UTC)  # Monday 09:00 in Tokyo


def test_wait_for_event_resumes_on_a_matching_event_or_times_out(org, publish, drain, eager_tasks):
    from marketing.dispatch import dispatch_batch_run
    from marketing.ingestion import events_ingest, events_validate
    from marketing.models import DispatchBatch

    workflow = publish(
        [
            {
                "id": "w",
                "type": "wait_for_event",
                "event": "email_clicked",
                "filter": {"==": [{"var": "event.properties.link"}, "pricing"]},
                "timeout": "P3D",
                "next": "clicked",
                "timeout_next": "gave_up",
            },
            {"id": "clicked", "type": "action", "action": "log", "config": {"message": "clicked"}, "next": None},
            {"id": "gave_up", "type": "action", "action": "log", "config": {"message": "timeout"}, "next": None},
        ]
    )
    clicker, silent = ContactFactory(org=org, email="c@example.com"), ContactFactory(org=org, email="s@example.com")
    now = datetime.now(UTC)
    enrol(workflow, clicker, silent, now=now)
    drain(now)
    items = [
        {"type": "email_clicked", "email": "c@example.com", "properties": {"link": "blog"}},  # filtered out
        {"type": "email_clicked", "email": "c@example.com", "properties": {"link": "pricing"}},
    ]
    parsed, errors = events_validate(items)
    events_ingest(org=org, items=parsed, errors=errors, source="api")
    for batch in DispatchBatch.objects.all():
        dispatch_batch_run(batch_id=batch.pk)
    drain()
    clicked = WorkflowInstance.objects.get(contact=clicker)
    assert path(clicked) == ["w", "clicked"]
    assert clicked.context["steps"]["w"]["result"]["event"]["properties"] == {"link": "pricing"}
    assert WorkflowInstance.objects.get(contact=silent).status == "waiting"
    drain(now + timedelta(days=3, seconds=1))
    assert path(WorkflowInstance.objects.get(contact=silent)) == ["w", "gave_up"]


def test_approval_waits_for_a_person_and_times_out(org, publish, drain, marketer):
    workflow = publish(
        [
            {
                "id": "ok",
                "type": "approval",
                "approvers": {"role": "marketer"},
                "timeout": "P1D",
                "approved_next": "yes",
                "rejected_next": "no",
                "timeout_next": "late",
            },
            *(
                {"id": name, "type": "action", "action": "log", "config": {"message": name}, "next": None}
                for name in ("yes", "no", "late")
            ),
        ]
    )
    approve, reject, ignore = (ContactFactory(org=org) for _ in range(3))
    now = datetime.now(UTC)
    enrol(workflow, approve, reject, ignore, now=now)
    drain(now)
    assert Approval.objects.filter(status="pending").count() == 3
    approval_decide(approval=Approval.objects.get(instance__contact=approve), approved=True, by=marketer)
    approval_decide(
        approval=Approval.objects.get(instance__contact=reject), approved=False, by=marketer, note="off-brand"
    )
    drain()
    assert path(WorkflowInstance.objects.get(contact=approve))[-1] == "yes"
    assert path(WorkflowInstance.objects.get(contact=reject))[-1] == "no"
    drain(now + timedelta(days=1, seconds=1))
    assert path(WorkflowInstance.objects.get(contact=ignore))[-1] == "late"
    assert Approval.objects.get(instance__contact=ignore).status == "expired"


@pytest.mark.parametrize(("mode", "expected_tags"), [("all", {"fast", "slow"}), ("any", {"fast"})])
def test_parallel_branches_meet_at_a_merge(org, contact, publish, drain, mode, expected_tags):
    workflow = publish(
        [
            {"id": "fork", "type": "parallel", "branches": ["fast", "pause"]},
            {"id": "fast", "type": "action", "action": "add_tag", "config": {"tags": ["fast"]}, "next": "join"},
            {"id": "pause", "type": "delay", "config": {"duration": "PT1H"}, "next": "slow"},
            {"id": "slow", "type": "action", "action": "add_tag", "config": {"tags": ["slow"]}, "next": "join"},
            {"id": "join", "type": "merge", "mode": mode, "next": "done"},
            {"id": "done", "type": "action", "action": "log", "config": {"message": "joined"}, "next": None},
        ]
    )
    enrol(workflow, contact)
    drain(T0)
    instance = only_instance(workflow)
    assert instance.status == ("waiting" if mode == "all" else "completed")
    drain(T0 + timedelta(hours=1, seconds=1))
    instance = only_instance(workflow)
    assert instance.status == "completed", instance.error
    assert set(contact.tags.values_list("name", flat=True)) == expected_tags
    assert path(instance).count("done") == 1


def test_loop_runs_its_body_once_per_item_up_to_max(org, publish, drain):
    workflow = publish(
        [
            {
                "id": "each",
                "type": "loop",
                "over": "workflow.trigger.products",
                "as": "product",
                "max": 3,
                "body_next": "tag",
                "next": "end",
            },
            {"id": "tag", "type": "action", "action": "add_tag", "config": {"tags": ["looped"]}, "next": "remember"},
            {
                "id": "remember",
                "type": "action",
                "action": "set_variable",
                "config": {"name": "last", "value_from": "workflow.vars.product"},
                "next": "each",
            },
            {"id": "end", "type": "action", "action": "log", "config": {"message": "done"}, "next": None},
        ]
    )
    contact = ContactFactory(org=org)
    enrol(workflow, contact, data={"products": ["a", "b", "c", "d"]})
    drain(T0)
    instance = only_instance(workflow)
    assert instance.status == "completed", instance.error
    assert path(instance).count("tag") == 3
    assert instance.context["vars"]["last"] == "c"
    keys = set(
        WorkflowStepRun.objects.filter(instance=instance, step_id="tag").values_list("idempotency_key", flat=True)
    )
    assert len(keys) == 3  # a new visit, a new idempotency key


def test_goal_step_and_goal_rule_end_the_run(org, publish, drain, eager_tasks):
    workflow = publish(
        [
            {"id": "wait", "type": "delay", "config": {"duration": "P7D"}, "next": "goal"},
            {"id": "goal", "type": "goal", "next": "nudge"},
            {"id": "nudge", "type": "action", "action": "log", "config": {"message": "nudge"}, "next": None},
        ],
        settings={"goal": {"in": ["customer", {"var": "lifecycle_stage"}]}},
    )
    converts, stays = ContactFactory(org=org, lifecycle_stage="lead"), ContactFactory(org=org, lifecycle_stage="lead")
    enrol(workflow, converts, stays)
    drain(T0)
    WorkflowInstance.objects.filter(contact=converts).update(wake_at=T0)  # as an event of the contact does
    type(converts).objects.filter(pk=converts.pk).update(lifecycle_stage="customer")
    drain(T0 + timedelta(minutes=1))
    assert WorkflowInstance.objects.get(contact=converts).result == "goal_reached"
    drain(T0 + timedelta(days=8))
    assert WorkflowInstance.objects.get(contact=stays).result == "completed"
    assert path(WorkflowInstance.objects.get(contact=stays)) == ["wait", "goal", "nudge"]


def test_stop_ends_the_run_with_its_reason(org, contact, publish, drain):
    workflow = publish([{"id": "halt", "type": "stop", "reason": "not eligible"}])
    enrol(workflow, contact)
    drain(T0)
    instance = only_instance(workflow)
    assert (instance.status, instance.result) == ("completed", "stopped")
    assert AutomationExecution.objects.get(instance=instance).status == "success"


def test_a_failing_action_retries_with_backoff_then_takes_on_error(org, contact, publish, drain):
    workflow = publish(
        [
            {
                "id": "bad",
                "type": "action",
                "action": "update_field",
                "config": {"field": "country", "value": "Germany"},
                "next": None,
                "on_error": "fallback",
                "retry": {"max_attempts": 2, "backoff": "PT1M"},
            },
            {"id": "fallback", "type": "action", "action": "log", "config": {"message": "fell back"}, "next": None},
        ]
    )
    enrol(workflow, contact)
    drain(T0)
    instance = only_instance(workflow)
    assert instance.status == "completed"  # a validation error is permanent: no retry, straight to on_error
    assert path(instance) == ["bad", "fallback"]
    assert "country" in instance.context["steps"]["bad"]["result"]["error"]


def test_a_retryable_failure_backs_off_then_fails_the_run_without_on_error(org, contact, publish, drain, monkeypatch):
    from workflows.actions import RetryableError
    from workflows.actions.builtin import Log

    def flaky(self, ctx):
        raise RetryableError("provider busy")

    monkeypatch.setattr(Log, "run", flaky)
    workflow = publish(
        [
            {
                "id": "call",
                "type": "action",
                "action": "log",
                "config": {"message": "x"},
                "next": None,
                "retry": {"max_attempts": 3, "backoff": "PT10S"},
            }
        ]
    )
    enrol(workflow, contact)
    drain(T0)
    first = only_instance(workflow)
    assert first.status == "waiting"
    assert T0 + timedelta(seconds=5) <= first.wake_at <= T0 + timedelta(seconds=15)  # 10 s ± jitter
    drain(T0 + timedelta(seconds=16))
    second = only_instance(workflow)
    assert T0 + timedelta(seconds=26) <= second.wake_at <= T0 + timedelta(seconds=46)  # 20 s ± jitter, doubled
    drain(T0 + timedelta(minutes=5))
    instance = only_instance(workflow)
    assert instance.status == "failed"
    assert "after 3 attempts" in instance.error
    runs = WorkflowStepRun.objects.filter(instance=instance).order_by("attempt")
    assert [(r.attempt, r.status) for r in runs] == [(1, "retrying"), (2, "retrying"), (3, "failed")]
    assert len({r.idempotency_key for r in runs}) == 1  # retries of one visit share the key

    monkeypatch.undo()
    assert instances_retry(instances=WorkflowInstance.objects.filter(pk=instance.pk)) == 1
    retried = only_instance(workflow)
    assert retried.status == "waiting" and retried.wake_at <= timezone.now()  # due at once, on the real clock
    drain(retried.wake_at)
    assert only_instance(workflow).status == "completed"


def test_pause_resume_and_cancel(org, publish, drain):
    workflow = publish(
        [
            {"id": "wait", "type": "delay", "config": {"duration": "PT1H"}, "next": "end"},
            {"id": "end", "type": "action", "action": "log", "config": {"message": "end"}, "next": None},
        ]
    )
    a, b = ContactFactory(org=org), ContactFactory(org=org)
    enrol(workflow, a, b)
    drain(T0)
    instances_pause(instances=WorkflowInstance.objects.filter(contact=a))
    instances_cancel(instances=WorkflowInstance.objects.filter(contact=b))
    drain(T0 + timedelta(hours=2))
    assert WorkflowInstance.objects.get(contact=a).status == "paused"
    assert WorkflowInstance.objects.get(contact=b).status == "cancelled"
    instances_resume(instances=WorkflowInstance.objects.filter(contact=a))
    drain(T0 + timedelta(hours=2))
    assert WorkflowInstance.objects.get(contact=a).status == "completed"
    assert AutomationExecution.objects.get(instance__contact=b).status == "cancelled"


@pytest.mark.parametrize(
    ("policy", "cap", "expected"),
    [("never", None, 1), ("after_exit", None, 1), ("always", None, 3), ("always", 2, 2)],
)
def test_reenrolment_policy_and_the_per_contact_cap(org, contact, publish, policy, cap, expected):
    settings = {"reenrollment": policy, **({"max_active_per_contact": cap} if cap else {})}
    workflow = publish(
        [{"id": "wait", "type": "delay", "config": {"duration": "P1D"}, "next": None}], settings=settings
    )
    for key in ("a", "b", "c"):
        enrol(workflow, contact, key=key)
    assert WorkflowInstance.objects.filter(workflow=workflow).count() == expected


def test_after_exit_allows_a_new_run_once_the_last_one_ended(org, contact, publish, drain):
    workflow = publish(
        [{"id": "log", "type": "action", "action": "log", "config": {"message": "x"}, "next": None}],
        settings={"reenrollment": "after_exit"},
    )
    assert enrol(workflow, contact, key="a") == 1
    assert enrol(workflow, contact, key="b") == 0  # the first is still active
    drain(T0)
    assert enrol(workflow, contact, key="c") == 1
    assert enrol(workflow, contact, key="c") == 0  # the same trigger key never enrols twice


def test_an_internal_side_effect_rolls_back_with_a_crashed_batch(org, contact, publish, monkeypatch):
    """The claim, the action's writes and the step runs share a transaction: if the batch dies
    before commit (a killed worker), nothing of it remains and the run is due again."""
    workflow = publish(
        [{"id": "tag", "type": "action", "action": "add_tag", "config": {"tags": ["once"]}, "next": None}]
    )
    enrol(workflow, contact)

    def die(*args, **kwargs):
        raise SystemExit("worker killed")

    monkeypatch.setattr("workflows.engine.update_rows", die)
    with pytest.raises(SystemExit):
        advance_batch(now=T0)
    monkeypatch.undo()
    with scopes_disabled():
        assert not Tag.objects.filter(name="once").exists() or not contact.tags.exists()
    assert WorkflowStepRun.objects.count() == 0
    assert only_instance(workflow).status == "pending"
    advance_batch(now=T0)
    assert list(contact.tags.values_list("name", flat=True)) == ["once"]
    assert WorkflowStepRun.objects.count() == 1


def test_instances_of_several_orgs_run_in_one_batch_each_in_its_own_scope(org, other_org, publish):
    from marketing.tenancy import org_context
    from workflows.services import workflow_create, workflow_publish

    mine = publish([{"id": "t", "type": "action", "action": "add_tag", "config": {"tags": ["x"]}, "next": None}])
    a = ContactFactory(org=org)
    enrol(mine, a)
    with org_context(other_org):
        theirs = workflow_create(
            org=other_org,
            name="o",
            slug="o",
            definition={
                "trigger": {"type": "manual"},
                "steps": [{"id": "t", "type": "action", "action": "add_tag", "config": {"tags": ["x"]}, "next": None}],
            },
        )
        workflow_publish(workflow=theirs)
        theirs.refresh_from_db()
        b = ContactFactory(org=other_org)
        enrol(theirs, b)
    assert advance_batch(now=T0) == 2
    made = {}
    for each in (org, other_org):
        with org_context(each):
            made[each.pk] = list(Tag.objects.filter(name="x").values_list("org_id", flat=True))
    assert made == {org.pk: [org.pk], other_org.pk: [other_org.pk]}  # each tag made in its own org


def test_a_merge_moves_the_merged_contacts_runs_to_the_kept_contact(org, publish):
    from marketing.identity import contact_merge

    workflow = publish(
        [{"id": "wait", "type": "delay", "config": {"duration": "P1D"}, "next": None}],
        settings={"reenrollment": "always"},
    )
    kept, gone = ContactFactory(org=org), ContactFactory(org=org)
    enrol(workflow, kept, key="shared")
    enrol(workflow, gone, key="shared")
    enrol(workflow, gone, key="own")
    contact_merge(org=org, kept=kept, gone=gone, reason="test")
    runs = {i.trigger_key: i.status for i in WorkflowInstance.objects.filter(workflow=workflow)}
    assert runs == {"shared": "pending", f"shared:merged-{gone.pk}": "cancelled", "own": "pending"}
    assert set(WorkflowInstance.objects.values_list("contact_id", flat=True)) == {kept.pk}


def test_only_the_approvers_role_or_an_admin_may_decide(org, publish, drain, member_factory):
    from django.core.exceptions import ValidationError

    from marketing.models import Role

    workflow = publish(
        [
            {
                "id": "ok",
                "type": "approval",
                "approvers": {"role": "marketer"},
                "approved_next": None,
                "rejected_next": None,
                "timeout_next": None,
            }
        ]
    )
    enrol(workflow, ContactFactory(org=org), now=datetime.now(UTC))
    drain()
    approval = Approval.objects.get()
    with pytest.raises(ValidationError, match="marketer role"):
        approval_decide(approval=approval, approved=True, by=member_factory(org, Role.ANALYST, username="ann"))
    approval_decide(approval=approval, approved=True, by=member_factory(org, Role.ADMIN, username="ada"))
    assert Approval.objects.get().status == "approved"
