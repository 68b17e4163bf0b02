"""The sales queue in the console: each rep sees and acts on their own handoffs only, managers on
all; accept / reject / convert as CSRF-protected POSTs; the detail page; the handoff policy."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled

from marketing.models import Event, Membership, Role
from marketing.tenancy import org_context
from scoring.handoffs import handoff_create, policy_for
from scoring.models import Handoff, HandoffPolicy
from tests.factories import ContactFactory, MembershipFactory

CHANGELIST = "admin:scoring_handoff_changelist"


def client_for(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def change_url(handoff) -> str:
    return reverse("admin:scoring_handoff_change", args=[handoff.pk])


def move_url(handoff, move: str) -> str:
    return reverse(f"admin:scoring_handoff_{move}", args=[handoff.pk])


@pytest.fixture
def reps(org, member_factory):
    return [member_factory(org, Role.SALES, username=f"rep{i}") for i in range(2)]


@pytest.fixture
def manager(org, member_factory):
    return member_factory(org, Role.ADMIN, username="boss")


@pytest.fixture
def queue(org, reps):
    """rep0's handoff and rep1's handoff."""
    ana = ContactFactory(org=org, first_name="Ana", last_name="Lima")
    bo = ContactFactory(org=org, first_name="Bo", last_name="Berg")
    return handoff_create(org=org, contact=ana, reason="demo_request"), handoff_create(
        org=org, contact=bo, reason="threshold"
    )


def listed(client, **params) -> list[int]:
    response = client.get(reverse(CHANGELIST), params)
    assert response.status_code == 200
    return sorted(h.pk for h in response.context["cl"].result_list)


def test_a_rep_sees_only_their_own_queue_a_manager_sees_all(org, reps, manager, queue):
    mine, theirs = queue
    rep = client_for(reps[0])
    assert listed(rep) == [mine.pk]
    page = rep.get(reverse(CHANGELIST)).content.decode()
    assert "Ana Lima" in page and "Bo Berg" not in page
    assert rep.get(change_url(theirs)).status_code == 404
    assert rep.get(change_url(mine)).status_code == 200
    assert listed(client_for(manager)) == sorted([mine.pk, theirs.pk])


def test_a_rep_cannot_act_on_another_reps_item(org, reps, queue):
    _, theirs = queue
    rep = client_for(reps[0])
    for move in ("accept", "convert"):
        assert rep.post(move_url(theirs, move)).status_code == 404
    assert rep.post(move_url(theirs, "reject"), {"reason": "mine now"}).status_code == 404
    # Nor through a list action naming its id: the rows come from the rep's own queryset.
    rep.post(reverse(CHANGELIST), {"action": "accept_selected", "_selected_action": [theirs.pk]})
    theirs.refresh_from_db()
    assert theirs.status == Handoff.Status.OPEN


def test_the_rep_accepts_then_converts_from_the_page(org, reps, queue):
    mine, _ = queue
    rep = client_for(reps[0])
    assert rep.get(move_url(mine, "accept")).status_code == 405  # POST only
    assert rep.post(move_url(mine, "accept")).status_code == 302
    mine.refresh_from_db()
    assert mine.status == Handoff.Status.ACCEPTED
    rep.post(move_url(mine, "convert"))
    mine.refresh_from_db()
    assert mine.status == Handoff.Status.CONVERTED
    page = rep.get(change_url(mine)).content.decode()
    assert 'action="' + move_url(mine, "accept") not in page  # no buttons on a closed handoff


def test_reject_needs_a_reason(org, reps, queue):
    mine, _ = queue
    rep = client_for(reps[0])
    response = rep.post(move_url(mine, "reject"), {"reason": ""}, follow=True)
    assert "Say why" in response.content.decode()
    mine.refresh_from_db()
    assert mine.status == Handoff.Status.OPEN
    rep.post(move_url(mine, "reject"), {"reason": "no budget until Q3"})
    mine.refresh_from_db()
    assert (mine.status, mine.rejection_reason) == (Handoff.Status.REJECTED, "no budget until Q3")
    assert Event.objects.filter(contact=mine.contact, type="handoff_rejected").exists()


def test_the_moves_are_csrf_protected(org, reps, queue):
    mine, _ = queue
    strict = client_for(reps[0], enforce_csrf_checks=True)
    assert strict.post(move_url(mine, "accept")).status_code == 403
    mine.refresh_from_db()
    assert mine.status == Handoff.Status.OPEN
    page = strict.get(change_url(mine)).content.decode()
    assert "csrfmiddlewaretoken" in page and move_url(mine, "accept") in page


def test_a_manager_acts_on_any_item_and_rejects_in_bulk(org, reps, manager, queue):
    mine, theirs = queue
    boss = client_for(manager)
    boss.post(move_url(theirs, "accept"))
    theirs.refresh_from_db()
    assert theirs.status == Handoff.Status.ACCEPTED
    form = boss.post(reverse(CHANGELIST), {"action": "reject_selected", "_selected_action": [mine.pk, theirs.pk]})
    assert form.status_code == 200 and "reason" in form.content.decode()
    boss.post(
        reverse(CHANGELIST),
        {"action": "reject_selected", "_selected_action": [mine.pk, theirs.pk], "apply": "1", "reason": "not a fit"},
    )
    assert set(Handoff.objects.values_list("status", flat=True)) == {Handoff.Status.REJECTED}


def test_a_rep_accepts_and_converts_in_bulk_and_another_reps_item_is_refused(org, reps, queue):
    mine, theirs = queue
    rep = client_for(reps[0])
    # rep0 cannot select rep1's item through the list (it is not in their queryset); ids forged
    # into the form are dropped by the changelist's queryset.
    rep.post(reverse(CHANGELIST), {"action": "accept_selected", "_selected_action": [mine.pk, theirs.pk]})
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.status, theirs.status) == (Handoff.Status.ACCEPTED, Handoff.Status.OPEN)

    done = rep.post(reverse(CHANGELIST), {"action": "convert_selected", "_selected_action": [mine.pk]}, follow=True)
    assert "Marked converted: 1 handoff(s)." in done.content.decode()
    mine.refresh_from_db()
    assert mine.status == Handoff.Status.CONVERTED
    assert Handoff.objects.get(pk=theirs.pk).status == Handoff.Status.OPEN


def test_the_page_shows_the_breakdown_and_recent_activity(org, reps, queue):
    from scoring.models import ScoreLedger, ScoringModel, ScoringRule

    mine, _ = queue
    model = ScoringModel.objects.create(org=org, slug="default", name="Default", is_default=True)
    rule = ScoringRule.objects.create(org=org, model=model, name="Pricing page", event_type="page_viewed", points=15)
    now = timezone.now()
    for i in range(25):
        Event.objects.create(
            org=org,
            contact=mine.contact,
            type=f"page_viewed_{i:02d}",
            occurred_at=now - timedelta(minutes=i),
            message_id=f"m{i}",
        )
    ScoreLedger.objects.create(
        org=org, contact=mine.contact, model=model, delta=15, score_after=115, reason="rule", rule=rule
    )
    page = client_for(reps[0]).get(change_url(mine)).content.decode()
    assert "Pricing page" in page
    assert "page_viewed_00" in page and "page_viewed_19" in page and "page_viewed_20" not in page  # the last 20


def test_filters_and_the_coloured_sla_state(org, reps, manager, queue):
    mine, theirs = queue
    Handoff.objects.filter(pk=theirs.pk).update(sla_due_at=timezone.now() - timedelta(hours=1))
    boss = client_for(manager)
    assert listed(boss, sla="overdue") == [theirs.pk]
    assert listed(boss, sla="on_time") == [mine.pk]
    assert listed(boss, reason="demo_request") == [mine.pk]
    assert listed(boss, assignee=str(reps[1].pk)) == [theirs.pk]
    Handoff.objects.filter(pk=mine.pk).update(assignee=None)
    assert listed(boss, assignee="none") == [mine.pk]
    page = boss.get(reverse(CHANGELIST)).content.decode()
    assert "Overdue</strong>" in page and "#c62828" in page


def test_the_queue_is_one_page_without_n_plus_one(org, reps, manager, django_assert_max_num_queries):
    for _ in range(20):
        handoff_create(org=org, contact=ContactFactory(org=org), reason="threshold")
    boss = client_for(manager)
    boss.get(reverse(CHANGELIST))
    with django_assert_max_num_queries(25):
        boss.get(reverse(CHANGELIST))


def test_members_without_a_scoring_role_may_not_enter(org, member_factory, queue):
    compliance = client_for(member_factory(org, Role.COMPLIANCE, username="cora"))
    assert compliance.get(reverse(CHANGELIST)).status_code == 403


def test_the_policy_is_for_managers_and_lists_only_org_reps(org, other_org, reps, manager, member_factory):
    stranger = member_factory(other_org, Role.SALES, username="stranger")
    policy = policy_for(org=org)
    url = reverse("admin:scoring_handoffpolicy_change", args=[policy.pk])
    rep = client_for(reps[0])
    rep.post(url, {"strategy": "workload", "sla_hours": 1, "skill_property": "x", "territories": "{}", "skills": "{}"})
    policy.refresh_from_db()
    assert policy.strategy == HandoffPolicy.Strategy.ROUND_ROBIN
    boss = client_for(manager)
    form = boss.get(url).context["adminform"].form
    assert set(form.fields["reps"].queryset) == {*reps, manager}
    bad = boss.post(
        url,
        {"strategy": "territory", "sla_hours": 4, "territories": f'{{"DE": [{stranger.pk}]}}', "skills": "{}"},
    )
    assert bad.status_code == 200 and "not sales reps or admins" in bad.content.decode()
    good = boss.post(
        url,
        {
            "strategy": "territory",
            "reps": [reps[0].pk],
            "sla_hours": 4,
            "territories": f'{{"DE": [{reps[1].pk}], "*": [{reps[0].pk}]}}',
            "skills": "{}",
            "skill_property": "product_interest",
        },
    )
    assert good.status_code == 302
    policy.refresh_from_db()
    assert (policy.strategy, policy.sla_hours, policy.territories["DE"]) == ("territory", 4, [reps[1].pk])
    assert boss.get(reverse("admin:scoring_handoffpolicy_add")).status_code == 403  # one per org


def test_a_manager_reassigns_and_the_permissions_move(org, reps, manager, queue, member_factory):
    mine, _ = queue
    assert client_for(reps[0]).post(move_url(mine, "assign"), {"assignee": reps[1].pk}).status_code == 403
    marketer = member_factory(org, Role.MARKETER, username="mara")
    boss = client_for(manager)
    boss.post(move_url(mine, "assign"), {"assignee": marketer.pk})  # not a rep: refused
    mine.refresh_from_db()
    assert mine.assignee == reps[0]
    boss.post(move_url(mine, "assign"), {"assignee": reps[1].pk})
    mine.refresh_from_db()
    assert mine.assignee == reps[1]
    assert client_for(reps[0]).get(change_url(mine)).status_code == 404
    assert client_for(reps[1]).get(change_url(mine)).status_code == 200


def test_a_sales_manager_in_one_org_is_a_plain_rep_in_another(org, other_org, reps, queue, member_factory):
    """The manager flag is the membership's: an org admin sets it on the member's page, and it
    counts only in that org."""
    lead = member_factory(org, Role.SALES, username="lead")
    with scopes_disabled():
        MembershipFactory(org=other_org, user=lead, role=Role.SALES)
    colleague = member_factory(other_org, Role.SALES, username="colleague")
    with org_context(other_org):
        own_b = handoff_create(org=other_org, contact=ContactFactory(org=other_org), reason="manual")
        theirs_b = handoff_create(org=other_org, contact=ContactFactory(org=other_org), reason="manual")
    assert (own_b.assignee, theirs_b.assignee) == (lead, colleague)

    membership = Membership.objects.get(org=org, user=lead)
    admin_a = client_for(member_factory(org, Role.ADMIN, username="admin-a"))
    page = admin_a.get(reverse("admin:marketing_membership_change", args=[membership.pk])).content.decode()
    assert 'name="sales_manager"' in page
    admin_a.post(
        reverse("admin:marketing_membership_change", args=[membership.pk]),
        {"role": Role.SALES, "sales_manager": "on"},
    )
    membership.refresh_from_db()
    assert membership.sales_manager

    client = client_for(lead)
    assert listed(client) == sorted(h.pk for h in queue)  # org A, the first by name: every rep's
    client.post(reverse("admin:org_switch"), {"org": other_org.pk})
    assert listed(client) == [own_b.pk]
    assert client.get(change_url(theirs_b)).status_code == 404
    assert client.post(move_url(own_b, "assign"), {"assignee": colleague.pk}).status_code == 403
    client.post(reverse(CHANGELIST), {"action": "accept_selected", "_selected_action": [theirs_b.pk]})
    with org_context(other_org):
        own_b.refresh_from_db()
        theirs_b.refresh_from_db()
    assert (own_b.assignee, theirs_b.status) == (lead, Handoff.Status.OPEN)


def test_a_queue_row_opens_the_handoff_titled_with_the_contacts_name(org, reps, queue):
    mine, _ = queue
    rep = client_for(reps[0])
    page = rep.get(reverse(CHANGELIST)).content.decode()
    assert f'href="{change_url(mine)}"' in page  # the row's link is the handoff's page
    assert reverse("admin:marketing_contact_change", args=[mine.contact_id]) not in page
    detail = rep.get(change_url(mine))
    assert detail.context["title"] == "Handoff: Ana Lima"
    # The contact is one click further, from the handoff's page.
    assert reverse("admin:marketing_contact_change", args=[mine.contact_id]) in detail.content.decode()
