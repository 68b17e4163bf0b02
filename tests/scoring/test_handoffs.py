"""The handoff services: assignment strategies, one open handoff per contact, the SLA, the rep's
moves and who may make them, the nurture sweep, notifications and the workflow action."""

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone
from django_scopes import scopes_disabled
from guardian.shortcuts import get_perms

from channels_app.models import Message, Suppression
from marketing.models import Contact, Event, LeadStatus, LifecycleStage, Membership, Role
from marketing.tenancy import org_context
from scoring.handoffs import (
    HandoffRequest,
    SlaState,
    handoff_accept,
    handoff_assign,
    handoff_convert,
    handoff_create,
    handoff_is_manager,
    handoff_notify,
    handoff_reject,
    handoff_sla_state,
    handoffs_create,
    handoffs_nurtured,
    handoffs_overdue_notify,
    handoffs_visible_to,
    policy_for,
)
from scoring.models import Handoff, HandoffPolicy
from tests.factories import ContactFactory, MembershipFactory
from tests.workflows.conftest import drain, publish  # noqa: F401  fixtures

NOW = timezone.now().replace(microsecond=0)


@pytest.fixture
def reps(org, member_factory):
    """Three sales reps of ``org``, in id order."""
    return [member_factory(org, Role.SALES, username=f"rep{i}") for i in range(3)]


@pytest.fixture
def manager(org, member_factory):
    return member_factory(org, Role.ADMIN, username="boss")


def make_contact(org, **fields):
    return ContactFactory(org=org, **fields)


def hand(org, contact=None, **kwargs):
    return handoff_create(
        org=org, contact=contact or make_contact(org), reason=kwargs.pop("reason", "manual"), **kwargs
    )


# Assignment ---------------------------------------------------------------------------------------


def test_the_default_policy_is_round_robin_over_sales_members_in_order(org, reps, member_factory):
    member_factory(org, Role.MARKETER, username="not-sales")
    assignees = [hand(org).assignee for _ in range(7)]
    assert assignees == [reps[0], reps[1], reps[2], reps[0], reps[1], reps[2], reps[0]]
    policy = HandoffPolicy.objects.get(org=org)
    assert policy.strategy == HandoffPolicy.Strategy.ROUND_ROBIN and policy.rr_cursor == 7


def test_round_robin_over_the_policys_reps_skips_users_who_are_no_sales_members(org, reps, other_org, member_factory):
    outsider = member_factory(other_org, Role.SALES, username="elsewhere")
    marketer = member_factory(org, Role.MARKETER, username="mara")
    policy = policy_for(org=org)
    policy.reps.set([reps[2], reps[0], outsider, marketer])
    assert [hand(org).assignee for _ in range(4)] == [reps[0], reps[2], reps[0], reps[2]]


def test_territory_by_country_with_the_star_fallback(org, reps):
    policy = policy_for(org=org)
    policy.strategy = HandoffPolicy.Strategy.TERRITORY
    policy.territories = {"DE": [reps[0].pk], "FR": [reps[1].pk, reps[2].pk], "*": [reps[2].pk]}
    policy.save()
    assert hand(org, make_contact(org, country="DE")).assignee == reps[0]
    french = [hand(org, make_contact(org, country="FR")).assignee for _ in range(2)]
    assert set(french) == {reps[1], reps[2]}  # round-robin among the territory's reps
    assert hand(org, make_contact(org, country="US")).assignee == reps[2]
    assert hand(org, make_contact(org, country="")).assignee == reps[2]


def test_skill_by_product_interest_falls_back_to_round_robin(org, reps):
    policy = policy_for(org=org)
    policy.strategy = HandoffPolicy.Strategy.SKILL
    policy.skills = {"analytics": [reps[1].pk], "email": [reps[2].pk]}
    policy.save()
    assert hand(org, make_contact(org, properties={"product_interest": "analytics"})).assignee == reps[1]
    assert hand(org, make_contact(org, properties={"product_interest": "email"})).assignee == reps[2]
    fallback = hand(org, make_contact(org, properties={"product_interest": "crm"})).assignee
    assert fallback in reps
    assert hand(org, make_contact(org)).assignee in reps


def test_workload_picks_the_rep_with_fewest_open_or_accepted(org, reps):
    assert [hand(org).assignee for _ in range(2)] == reps[:2]  # round-robin
    busy = hand(org)  # rep2
    policy = policy_for(org=org)
    policy.strategy = HandoffPolicy.Strategy.WORKLOAD
    policy.save()
    # Each has one; ties go by id.
    assert hand(org).assignee == reps[0]
    # rep0 has 2, rep1 1, rep2 1: rep1 (lower id of the two).
    assert hand(org).assignee == reps[1]
    # Closed handoffs do not count: rep2's one is converted, so rep2 has none now.
    handoff_convert(handoff=busy, user=reps[2])
    assert hand(org).assignee == reps[2]


def test_no_eligible_rep_leaves_the_handoff_unassigned(org):
    handoff = hand(org)
    assert handoff is not None and handoff.assignee is None


def test_a_batch_of_handoffs_takes_turns_skips_live_contacts_and_costs_a_fixed_number_of_queries(
    org, reps, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    taken = make_contact(org)
    hand(org, taken)  # rep0; the cursor moves to rep1
    contacts = [make_contact(org) for _ in range(7)]
    requests = [HandoffRequest(contact=c, reason="demo_request", detail="demo_requested") for c in contacts]
    requests.insert(2, HandoffRequest(contact=contacts[0], reason="threshold"))  # the first request counts
    requests.append(HandoffRequest(contact=taken, reason="threshold"))  # already in the queue
    with django_capture_on_commit_callbacks() as callbacks, django_assert_max_num_queries(20):
        made = handoffs_create(org=org, requests=requests, now=NOW)
    assert [h.contact for h in made] == contacts
    assert {h.reason for h in made} == {"demo_request"}
    assert [h.assignee for h in made] == [reps[1], reps[2], reps[0], reps[1], reps[2], reps[0], reps[1]]
    assert HandoffPolicy.objects.get(org=org).rr_cursor == 8
    for handoff in made:
        assert set(get_perms(handoff.assignee, handoff)) == {"view_handoff", "change_handoff"}
        assert get_perms(reps[(reps.index(handoff.assignee) + 1) % 3], handoff) == []
    assert len(callbacks) == 1  # one notice task for the batch
    assert Handoff.objects.filter(org=org, contact=taken).count() == 1


def test_a_live_handoff_the_batch_did_not_see_makes_it_go_one_at_a_time(org, reps, monkeypatch):
    """A live handoff made outside the policy lock (a merge moving one over) meets the batch's
    insert as a unique violation: the batch then makes its handoffs one at a time, and only the
    contact that already has one goes without."""
    import scoring.handoffs as handoffs

    taken, free = make_contact(org), [make_contact(org) for _ in range(2)]
    existing = hand(org, taken)
    monkeypatch.setattr(handoffs, "_live_contacts", lambda org, contact_ids: set())  # as if unseen
    requests = [HandoffRequest(contact=c, reason="threshold") for c in [free[0], taken, free[1]]]

    made = handoffs_create(org=org, requests=requests, now=NOW)

    assert [h.contact for h in made] == free
    assert list(Handoff.objects.filter(org=org, contact=taken)) == [existing]
    assert all(h.pk and h.assignee for h in made)


def test_a_batch_under_the_workload_strategy_evens_out_as_it_goes(org, reps):
    policy = policy_for(org=org)
    policy.strategy = HandoffPolicy.Strategy.WORKLOAD
    policy.save()
    hand(org)
    hand(org)  # rep0 and rep1 have one each
    made = handoffs_create(
        org=org, requests=[HandoffRequest(contact=make_contact(org), reason="manual") for _ in range(4)]
    )
    assert [h.assignee for h in made] == [reps[2], reps[0], reps[1], reps[2]]


# One open handoff, SLA, permissions granted ------------------------------------------------------


def test_one_open_handoff_per_contact(org, reps):
    contact = make_contact(org)
    first = hand(org, contact)
    assert hand(org, contact) is None
    handoff_accept(handoff=first, user=first.assignee)
    assert hand(org, contact) is None  # accepted still counts
    handoff_reject(handoff=first, user=first.assignee, reason="no budget this year")
    assert hand(org, contact) is not None


def test_sla_due_is_now_plus_the_policy_hours_and_the_state_moves(org, reps):
    policy = policy_for(org=org)
    policy.sla_hours = 8
    policy.save()
    handoff = hand(org, now=NOW)
    assert handoff.sla_due_at == NOW + timedelta(hours=8)
    assert handoff_sla_state(handoff, now=NOW) == SlaState.ON_TIME
    assert handoff_sla_state(handoff, now=NOW + timedelta(hours=5)) == SlaState.DUE_SOON
    assert handoff_sla_state(handoff, now=NOW + timedelta(hours=9)) == SlaState.OVERDUE
    accepted = handoff_accept(handoff=handoff, user=handoff.assignee, now=NOW + timedelta(hours=9))
    assert handoff_sla_state(accepted) == SlaState.MISSED


def test_the_assignee_gets_object_permissions_and_only_theirs(org, reps, manager):
    mine, theirs = hand(org), hand(org)
    assert set(get_perms(reps[0], mine)) == {"view_handoff", "change_handoff"}
    assert get_perms(reps[0], theirs) == []
    assert list(handoffs_visible_to(user=reps[0], org=org)) == [mine]
    assert set(handoffs_visible_to(user=manager, org=org)) == {mine, theirs}


def test_the_membership_makes_a_sales_manager_not_a_global_permission(org, reps):
    assert not handoff_is_manager(user=reps[0], org=org)  # the role's scoring.* wildcard is not enough
    reps[0].user_permissions.add(Permission.objects.get(codename="view_all_handoffs"))
    reps[0] = type(reps[0]).objects.get(pk=reps[0].pk)  # permission caches
    assert not handoff_is_manager(user=reps[0], org=org)  # a global grant would reach every org
    Membership.objects.filter(org=org, user=reps[0]).update(sales_manager=True)
    assert handoff_is_manager(user=reps[0], org=org)


def test_a_sales_manager_in_one_org_is_a_plain_rep_in_another(org, other_org, reps, member_factory):
    """Manager in org A, sales rep in org B: in B they see and act on their own handoffs only."""
    lead = member_factory(org, Role.SALES, username="lead")
    Membership.objects.filter(org=org, user=lead).update(sales_manager=True)
    with scopes_disabled():
        MembershipFactory(org=other_org, user=lead, role=Role.SALES)
    colleague = member_factory(other_org, Role.SALES, username="colleague")
    in_a = [hand(org) for _ in range(4)]  # round-robin: one each for rep0..rep2 and the lead
    with org_context(other_org):
        own, theirs = hand(other_org), hand(other_org)
        assert (own.assignee, theirs.assignee) == (lead, colleague)

        assert list(handoffs_visible_to(user=lead, org=other_org)) == [own]
        assert not handoff_is_manager(user=lead, org=other_org)
        with pytest.raises(PermissionDenied, match="Only a sales manager"):
            handoff_assign(handoff=own, assignee=colleague, user=lead)
        with pytest.raises(PermissionDenied, match="assigned rep or a sales manager"):
            handoff_accept(handoff=theirs, user=lead)
        theirs.refresh_from_db()
        assert (theirs.assignee, theirs.status) == (colleague, Handoff.Status.OPEN)

    assert set(handoffs_visible_to(user=lead, org=org)) == set(in_a)
    assert handoff_assign(handoff=in_a[0], assignee=reps[1], user=lead).assignee == reps[1]


# The rep's moves ---------------------------------------------------------------------------------


def test_accept_then_convert(org, reps):
    contact = make_contact(org, lifecycle_stage=LifecycleStage.MQL)
    handoff = hand(org, contact)
    handoff = handoff_accept(handoff=handoff, user=reps[0], now=NOW)
    assert (handoff.status, handoff.accepted_at) == (Handoff.Status.ACCEPTED, NOW)
    contact.refresh_from_db()
    assert (contact.lifecycle_stage, contact.lead_status, contact.owner) == (
        LifecycleStage.SQL,
        LeadStatus.IN_PROGRESS,
        reps[0],
    )
    with pytest.raises(ValidationError, match="cannot be accept"):
        handoff_accept(handoff=handoff, user=reps[0])
    handoff = handoff_convert(handoff=handoff, user=reps[0], now=NOW)
    assert handoff.status == Handoff.Status.CONVERTED and handoff.closed_at == NOW
    contact.refresh_from_db()
    assert (contact.lifecycle_stage, contact.lead_status) == (LifecycleStage.OPPORTUNITY, LeadStatus.QUALIFIED)
    event = Event.objects.get(contact=contact, type="handoff_converted")
    assert event.properties["handoff_id"] == handoff.pk
    with pytest.raises(ValidationError):
        handoff_reject(handoff=handoff, user=reps[0], reason="too late")


def test_reject_needs_a_reason_goes_back_to_nurture_and_records_the_event(org, reps):
    contact = make_contact(org, lifecycle_stage=LifecycleStage.MQL)
    handoff = hand(org, contact)
    with pytest.raises(ValidationError) as error:
        handoff_reject(handoff=handoff, user=reps[0], reason="   ")
    assert "reason" in error.value.message_dict
    handoff.refresh_from_db()
    assert handoff.status == Handoff.Status.OPEN
    handoff = handoff_reject(handoff=handoff, user=reps[0], reason="Student, no budget", now=NOW)
    assert (handoff.status, handoff.rejection_reason, handoff.closed_at) == (
        Handoff.Status.REJECTED,
        "Student, no budget",
        NOW,
    )
    contact.refresh_from_db()
    assert (contact.lifecycle_stage, contact.lead_status) == (LifecycleStage.LEAD, LeadStatus.UNQUALIFIED)
    event = Event.objects.get(contact=contact, type="handoff_rejected")
    assert event.properties["rejection_reason"] == "Student, no budget" and event.source == "scoring"


def test_a_customer_is_not_downgraded_by_a_rejection(org, reps):
    contact = make_contact(org, lifecycle_stage=LifecycleStage.CUSTOMER)
    handoff_reject(handoff=hand(org, contact), user=reps[0], reason="already a customer")
    contact.refresh_from_db()
    assert contact.lifecycle_stage == LifecycleStage.CUSTOMER


def test_another_rep_may_not_act_a_manager_may(org, reps, manager, member_factory):
    handoff = hand(org)  # rep0's
    marketer = member_factory(org, Role.MARKETER, username="mara")
    for outsider in (reps[1], marketer):
        for move, extra in ((handoff_accept, {}), (handoff_reject, {"reason": "x"}), (handoff_convert, {})):
            with pytest.raises(PermissionDenied, match="assigned rep or a sales manager"):
                move(handoff=handoff, user=outsider, **extra)
    handoff.refresh_from_db()
    assert handoff.status == Handoff.Status.OPEN
    assert handoff_accept(handoff=handoff, user=manager).status == Handoff.Status.ACCEPTED


def test_a_rep_who_left_sales_may_no_longer_act(org, reps):
    from marketing.models import Membership

    handoff = hand(org)
    Membership.objects.filter(org=org, user=reps[0]).update(role=Role.ANALYST)
    with pytest.raises(PermissionDenied):
        handoff_accept(handoff=handoff, user=reps[0])


# Nurture sweep and reminders ---------------------------------------------------------------------


def test_nurtured_contacts_are_handed_off_once(org, reps):
    policy = policy_for(org=org)
    policy.nurture_days = 30
    policy.save()
    old = NOW - timedelta(days=40)
    nurtured = make_contact(org, created_at=old, lifecycle_stage=LifecycleStage.LEAD)
    make_contact(org, created_at=NOW - timedelta(days=10))  # too new
    make_contact(org, created_at=old, lifecycle_stage=LifecycleStage.CUSTOMER)  # not in a lead stage
    already = make_contact(org, created_at=old, lifecycle_stage=LifecycleStage.MQL)
    hand(org, already)
    rejected_recently = make_contact(org, created_at=old)
    rejected = hand(org, rejected_recently)
    handoff_reject(handoff=rejected, user=rejected.assignee, reason="call back later")
    Contact.objects.filter(pk=rejected_recently.pk).update(lifecycle_stage=LifecycleStage.LEAD)

    made = handoffs_nurtured(org=org, now=NOW)
    assert [h.contact for h in made] == [nurtured]
    assert made[0].reason == Handoff.Reason.NURTURED
    assert handoffs_nurtured(org=org, now=NOW) == []
    # A full nurture period after the rejection, it goes again.
    later = handoffs_nurtured(org=org, now=NOW + timedelta(days=31))
    assert rejected_recently in [h.contact for h in later]


def test_no_nurture_days_no_sweep(org, reps):
    make_contact(org, created_at=NOW - timedelta(days=400))
    assert handoffs_nurtured(org=org, now=NOW) == []


def test_overdue_handoffs_remind_the_rep_once(org, reps, django_capture_on_commit_callbacks):
    from django.core.cache import cache

    cache.clear()
    handoff = hand(org, now=NOW - timedelta(hours=30))
    hand(org, now=NOW)  # not overdue
    mail.outbox.clear()
    assert handoffs_overdue_notify(org=org, now=NOW) == 1
    assert handoffs_overdue_notify(org=org, now=NOW) == 0
    [reminder] = Message.objects.filter(content__subject__startswith="Overdue lead")
    assert reminder.to == handoff.assignee.email and reminder.purpose == "transactional"


def test_handoff_notices_are_transactional_outbox_messages_with_a_log_line(
    org, reps, django_capture_on_commit_callbacks, eager_tasks, caplog
):
    contact = make_contact(org, first_name="Ana", last_name="Lima", email="ana@example.com")
    with caplog.at_level("INFO", logger="channels_app.outbox"), django_capture_on_commit_callbacks(execute=True):
        handoff = hand(org, contact)
    [message] = Message.objects.all()
    assert (message.contact_id, message.purpose, message.channel) == (None, "transactional", "email")
    assert message.to == reps[0].email and message.content["recipient_user"] == reps[0].pk
    assert message.content["subject"].startswith("New lead for you: Ana Lima")
    assert message.status == "sent"  # no consent asked of a rep; sent through the outbox
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("notice queued")]
    assert f"message={message.pk}" in line and f"to={reps[0].email}" in line
    assert "Hello" not in line  # the body stays in the outbox, not in the log
    handoff_notify(handoff_id=handoff.pk, org_id=org.pk)  # a redelivered task: the same message
    assert Message.objects.count() == 1


def test_a_suppressed_rep_address_blocks_the_notice(org, reps, django_capture_on_commit_callbacks, eager_tasks):
    Suppression.objects.create(org=org, channel="email", address=reps[0].email, reason="hard_bounce")
    with django_capture_on_commit_callbacks(execute=True):
        hand(org)
    [message] = Message.objects.all()
    assert message.status == "blocked" and message.error == "suppressed: hard bounce"
    assert mail.outbox == []


# Notifications -----------------------------------------------------------------------------------


def test_the_rep_is_emailed_after_commit_with_the_contact_and_a_console_link(
    org, reps, settings, django_capture_on_commit_callbacks, eager_tasks
):
    settings.SITE_URL = "https://console.example"
    contact = make_contact(org, first_name="Ana", last_name="Lima", email="ana@example.com")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        handoff = hand(org, contact, reason="demo_request", detail="asked for a demo")
    assert mail.outbox == []  # nothing before commit
    with django_capture_on_commit_callbacks(execute=True):  # the notice's own send, after its commit
        for callback in callbacks:
            callback()
    [email] = mail.outbox
    assert email.to == [reps[0].email]
    assert "Ana Lima <ana@example.com>" in email.subject
    assert f"https://console.example/admin/scoring/handoff/{handoff.pk}/change/" in email.body
    assert "asked for a demo" in email.body


def test_a_rolled_back_handoff_notifies_nobody(org, reps, django_capture_on_commit_callbacks, eager_tasks):
    from django.db import transaction

    with django_capture_on_commit_callbacks(execute=True):
        try:
            with transaction.atomic():
                hand(org)
                raise RuntimeError("the caller failed")
        except RuntimeError:
            pass
    assert mail.outbox == []
    assert not Handoff.objects.exists()


class SlackRecorder(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        SlackRecorder.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def slack_server():
    SlackRecorder.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlackRecorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/services/T/B/x"
    server.shutdown()


def test_the_policys_slack_destination_is_told(
    org, reps, slack_server, settings, django_capture_on_commit_callbacks, eager_tasks
):
    from channels_app.models import Destination

    settings.OUTBOUND_HTTP_ALLOWED_HOSTS = ["127.0.0.1"]
    Destination.objects.create(org=org, slug="sales", name="Sales", channel="slack", url=slack_server)
    policy = policy_for(org=org)
    policy.notify_destination = "sales"
    policy.save()
    contact = make_contact(org, first_name="Ana", last_name="Lima", email="ana@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        hand(org, contact)
    [post] = SlackRecorder.received
    assert "Ana Lima" in post["text"] and "rep0" in post["text"]
    assert len(mail.outbox) == 1  # and the rep's email


def test_a_missing_slack_destination_does_not_fail_the_handoff(
    org, reps, django_capture_on_commit_callbacks, eager_tasks
):
    policy = policy_for(org=org)
    policy.notify_destination = "nowhere"
    policy.save()
    with django_capture_on_commit_callbacks(execute=True):
        handoff = hand(org)
    assert handoff.pk and len(mail.outbox) == 1


# The workflow action ----------------------------------------------------------------------------


def test_handoff_to_sales_action_is_idempotent_per_contact(org, reps):
    from workflows.actions import ActionContext, actions

    action = actions()["handoff_to_sales"]
    assert action.config_schema["additionalProperties"] is False
    contact = make_contact(org)
    ctx = ActionContext(
        org=org, contact=contact, instance=None, step_id="s1", idempotency_key="k1", config={"note": "hot"}, now=NOW
    )
    first = action.run(ctx)
    again = action.run(ctx)
    assert first["created"] is True and again["created"] is False
    assert first["handoff"] == again["handoff"]
    handoff = Handoff.objects.get(pk=first["handoff"])
    assert (handoff.reason, handoff.detail, handoff.assignee) == (Handoff.Reason.WORKFLOW, "hot", reps[0])


def test_handoff_to_sales_in_a_published_workflow(org, reps, publish, drain):  # noqa: F811
    from workflows.services import workflow_enrol_manually

    workflow = publish([{"id": "s1", "type": "action", "action": "handoff_to_sales", "config": {}, "next": None}])
    contact = make_contact(org)
    assert workflow_enrol_manually(workflow=workflow, contact_ids=[contact.pk]) == 1
    drain()
    handoff = Handoff.objects.get(contact=contact)
    assert handoff.reason == Handoff.Reason.WORKFLOW and handoff.assignee == reps[0]


# Merges ------------------------------------------------------------------------------------------


def test_a_merge_moves_the_handoffs_and_keeps_one_live(org, reps):
    from marketing.identity import contact_merge

    kept, gone, third = make_contact(org), make_contact(org), make_contact(org)
    kept_live, gone_live = hand(org, kept), hand(org, gone)
    closed = hand(org, third)
    handoff_reject(handoff=closed, user=closed.assignee, reason="old")
    contact_merge(org=org, kept=kept, gone=gone, reason="test")
    assert set(Handoff.objects.filter(contact=kept)) == {kept_live, gone_live}
    gone_live.refresh_from_db()
    assert gone_live.status == Handoff.Status.REJECTED and f"contact {kept.pk}" in gone_live.rejection_reason
    # A contact without a live handoff takes the other's live one over.
    contact_merge(org=org, kept=third, gone=kept, reason="test")
    kept_live.refresh_from_db()
    assert (kept_live.contact, kept_live.status) == (third, Handoff.Status.OPEN)


def test_the_beat_job_sweeps_every_org_with_a_policy(org, other_org, reps, member_factory):
    from marketing.schedules import SYSTEM_JOBS
    from marketing.tenancy import no_org, org_context
    from scoring.handoffs import handoffs_sweep

    assert SYSTEM_JOBS["scoring: hand off nurtured contacts, remind overdue"][0] == "scoring.handoffs.handoffs_sweep"
    member_factory(other_org, Role.SALES, username="their-rep")
    contacts = {}
    for each in (org, other_org):
        with org_context(each):
            policy = policy_for(org=each)
            policy.nurture_days = 7
            policy.save()
            contacts[each.pk] = make_contact(each, created_at=timezone.now() - timedelta(days=8))
    with no_org():  # beat runs it outside any org
        assert handoffs_sweep()["handed_off"] == 2
    assert Handoff.objects.get().contact == contacts[org.pk]
    with org_context(other_org):
        assert Handoff.objects.get().contact == contacts[other_org.pk]


@pytest.mark.django_db(transaction=True)
def test_concurrent_handoffs_take_distinct_round_robin_turns(org, reps):
    from django.db import connection

    from marketing.tenancy import org_context

    contacts = [make_contact(org) for _ in range(6)]
    policy_for(org=org)
    barrier = threading.Barrier(len(contacts))
    made, errors = [], []

    def create(contact):
        try:
            with org_context(org):
                barrier.wait(timeout=10)
                made.append(handoff_create(org=org, contact=contact, reason="manual"))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(c,)) for c in contacts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    per_rep = {rep.pk: 0 for rep in reps}
    for handoff in made:
        per_rep[handoff.assignee_id] += 1
    assert per_rep == {rep.pk: 2 for rep in reps}
    assert HandoffPolicy.objects.get(org=org).rr_cursor == 6
