"""The sales handoff queue: who gets a contact, by when, and what the rep does with it.

``handoff_create`` is what scoring rules (``demo_requested``), threshold crossings, the
``handoff_to_sales`` workflow action, the nurture sweep and the API call. It assigns a rep by the
org's ``HandoffPolicy`` (round-robin, territory, skill or workload), sets the SLA, gives the rep
django-guardian object permissions on the item, and tells the rep after commit (an email through
the outbox, and a Slack post to the policy's destination).

A rep then accepts, rejects (back to nurture, with a reason) or converts the handoff. Each of
those is permission-checked: the assignee (through the guardian object permission the item was
created with) or a manager: a superuser, an admin of the handoff's org, or a member whose
membership of that org says ``sales_manager`` (an org admin sets it on the member's page). Being
a manager is per org, like the role: a manager in one org is a plain rep in another. Neither the
role backend's ``scoring.*`` wildcard (it grants "view" on every scoring model to sales reps too)
nor Django's global ``scoring.view_all_handoffs`` permission (it would hold in every org) makes
a manager.

A server API key acts for its org as a whole, like a manager: it may act on any of the org's
handoffs (``api_key=`` instead of ``user=``).
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, F, OuterRef, Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from guardian.core import ObjectPermissionChecker
from guardian.shortcuts import assign_perm, get_objects_for_user, remove_perm
from guardian.utils import get_user_obj_perms_model

from channels_app.outbox import notice_enqueue
from marketing.celery import enqueue_on_commit
from marketing.identity import merge_handler
from marketing.models import ApiKey, Contact, LeadStatus, LifecycleStage, Membership, Organization, Role, User
from marketing.tenancy import current_membership
from scoring.models import Handoff, HandoffPolicy
from scoring.selectors import scoring_model_get

logger = logging.getLogger(__name__)

LIVE = (Handoff.Status.OPEN, Handoff.Status.ACCEPTED)
REP_ROLES = (Role.SALES, Role.ADMIN)
OBJECT_PERMS = ("view_handoff", "change_handoff")
# An open handoff is "due soon" when less than this is left of its SLA.
DUE_SOON = timedelta(hours=4)
# Stages a contact is nurtured in (marketing's); the nurture sweep hands these over.
NURTURE_STAGES = (LifecycleStage.LEAD, LifecycleStage.MQL)
# Stages a rejection takes back to "lead"; later stages (opportunity, customer) are left alone.
REJECT_RESETS = (LifecycleStage.SUBSCRIBER, LifecycleStage.LEAD, LifecycleStage.MQL, LifecycleStage.SQL)
# Stages a conversion may raise to "opportunity" (a customer is never downgraded).
CONVERT_RAISES = (*REJECT_RESETS, LifecycleStage.OTHER)
NURTURE_BATCH = 500


class HandoffStateError(ValidationError):
    """The handoff is not in a state that allows this (e.g. accepting a rejected one)."""


# Selection of reps ------------------------------------------------------------------------------


def eligible_reps(*, org: Organization, user_ids=None):
    """Users who may be assigned ``org``'s handoffs: its members with role sales or admin
    (optionally only among ``user_ids``), by id."""
    members = Membership.objects.filter(org=org, role__in=REP_ROLES)
    users = User.objects.filter(is_active=True, pk__in=members.values("user_id"))
    if user_ids is not None:
        users = users.filter(pk__in=[int(u) for u in user_ids if str(u).isdigit()])
    return users.order_by("pk")


def _policy_reps(org: Organization, policy: HandoffPolicy):
    """The policy's reps; a policy without reps means every sales member of the org, so a new
    rep joins the rotation without editing the policy."""
    chosen = list(policy.reps.values_list("pk", flat=True))
    if chosen:
        return eligible_reps(org=org, user_ids=chosen)
    sales = Membership.objects.filter(org=org, role=Role.SALES).values("user_id")
    return User.objects.filter(is_active=True, pk__in=sales).order_by("pk")


def _mapped(mapping: dict, key: str) -> list:
    ids = mapping.get(key) if key else None
    return ids if isinstance(ids, list) else []


class Assigner:
    """Picks reps by the policy's strategy for any number of handoffs made together: each list of
    reps is read once, and the round-robin cursor and the workload counts move in memory and are
    written back by ``save()``. The caller holds the policy row locked (``select_for_update``)
    until it commits, so two concurrent batches never take the same turn."""

    def __init__(self, *, org: Organization, policy: HandoffPolicy) -> None:
        self.org, self.policy = org, policy
        self._reps: dict[tuple | None, list[User]] = {}
        self._load: dict[int, int] | None = None
        self._cursor = policy.rr_cursor

    def reps(self, user_ids: list | None = None) -> list[User]:
        """Eligible reps among ``user_ids``; None: the policy's own reps."""
        key = tuple(user_ids) if user_ids is not None else None
        if key not in self._reps:
            queryset = _policy_reps(self.org, self.policy) if key is None else eligible_reps(org=self.org, user_ids=key)
            self._reps[key] = list(queryset)
        return self._reps[key]

    def choose(self, contact: Contact) -> User | None:
        """The rep for ``contact`` (None when the org has no eligible rep)."""
        policy = self.policy
        if policy.strategy == HandoffPolicy.Strategy.TERRITORY:
            country = (contact.country or "").upper()
            for key in (country, "*"):
                if reps := self.reps(_mapped(policy.territories or {}, key)):
                    return self._round_robin(reps)
        elif policy.strategy == HandoffPolicy.Strategy.SKILL:
            value = (contact.properties or {}).get(policy.skill_property) if policy.skill_property else None
            for item in value if isinstance(value, list) else [value]:
                if reps := self.reps(_mapped(policy.skills or {}, str(item) if item else "")):
                    return self._round_robin(reps)
        elif policy.strategy == HandoffPolicy.Strategy.WORKLOAD:
            return self._least_loaded()
        return self._round_robin(self.reps())

    def _round_robin(self, candidates: list[User]) -> User | None:
        if not candidates:
            return None
        chosen = candidates[self._cursor % len(candidates)]
        self._cursor = (self._cursor + 1) % 1_000_000  # stays in the column; order is kept mod len
        return chosen

    def _least_loaded(self) -> User | None:
        reps = self.reps()
        if self._load is None:
            live = Handoff.objects.filter(org=self.org, status__in=LIVE, assignee__in=reps)
            self._load = dict.fromkeys((r.pk for r in reps), 0)
            self._load.update(live.values("assignee").annotate(n=Count("pk")).values_list("assignee", "n"))
        if not reps:
            return None
        chosen = min(reps, key=lambda rep: (self._load[rep.pk], rep.pk))
        self._load[chosen.pk] += 1
        return chosen

    def save(self) -> None:
        if self._cursor != self.policy.rr_cursor:
            self.policy.rr_cursor = self._cursor
            HandoffPolicy.objects.filter(pk=self.policy.pk).update(rr_cursor=self._cursor)


def policy_for(*, org: Organization) -> HandoffPolicy:
    """The org's policy, created with the defaults (round-robin over its sales members, 24 h SLA)
    the first time it is needed."""
    policy, _ = HandoffPolicy.objects.get_or_create(org=org)
    return policy


# Creating ---------------------------------------------------------------------------------------


@dataclass
class HandoffRequest:
    """One contact to hand to sales, and why (see ``handoffs_create``)."""

    contact: Contact
    reason: str
    model: object = None  # the ScoringModel whose score is quoted
    score: int | None = None  # default: the contact's score
    source_event: object = None
    detail: str = ""


def handoff_create(
    *, org, contact, reason: str, model=None, score: int | None = None, source_event=None, detail: str = "", now=None
) -> Handoff | None:
    """Hands ``contact`` to sales, unless an open or accepted handoff exists (then None).
    ``handoffs_create`` for one contact."""
    request = HandoffRequest(
        contact=contact, reason=reason, model=model, score=score, source_event=source_event, detail=detail
    )
    made = handoffs_create(org=org, requests=[request], now=now)
    return made[0] if made else None


def handoffs_create(*, org, requests: list[HandoffRequest], now=None) -> list[Handoff]:
    """Hands each requested contact to sales, unless it has an open or accepted handoff (then
    that request is skipped; of two requests for one contact the first counts). Returns the
    handoffs made.

    Runs in the caller's transaction (a savepoint of it), with a fixed number of queries for any
    number of requests (scoring hands off a whole dispatch batch at once): the policy row is
    locked for the round-robin turns, the handoffs are inserted together, each assignee gets
    guardian's view/change permissions on theirs, and the notices go out after commit as one
    task, so a rolled-back caller notifies nobody.
    """
    now = now or timezone.now()
    wanted: dict[int, HandoffRequest] = {}
    for request in requests:
        wanted.setdefault(request.contact.pk, request)
    if not wanted or not (wanted.keys() - _live_contacts(org, wanted)):
        return []
    policy_for(org=org)
    try:
        with transaction.atomic():
            policy = HandoffPolicy.objects.select_for_update().get(org=org)
            # Again under the lock: a concurrent batch may have handed some of them off meanwhile.
            live = _live_contacts(org, wanted)
            assigner = Assigner(org=org, policy=policy)
            made = [
                Handoff(
                    org=org,
                    contact=request.contact,
                    model=request.model,
                    reason=request.reason,
                    detail=(request.detail or "")[:300],
                    score=request.contact.score if request.score is None else request.score,
                    assignee=assigner.choose(request.contact),
                    sla_due_at=now + timedelta(hours=policy.sla_hours),
                    source_event=request.source_event,
                    created_at=now,
                )
                for contact_id, request in wanted.items()
                if contact_id not in live
            ]
            Handoff.objects.bulk_create(made)
            assigner.save()
            _grant_all(made)  # commits with the handoffs: never an item its rep cannot see
    except IntegrityError:  # a live handoff made outside the policy lock (a merge): one at a time
        if len(wanted) == 1:
            return []
        return [h for r in wanted.values() for h in handoffs_create(org=org, requests=[r], now=now)]
    for handoff in made:
        if handoff.assignee is None:
            logger.warning("handoff unassigned org=%s handoff=%s: no eligible sales rep", org.slug, handoff.pk)
        logger.info(
            "handoff created org=%s handoff=%s contact=%s reason=%s assignee=%s",
            org.slug,
            handoff.pk,
            handoff.contact_id,
            handoff.reason,
            handoff.assignee_id,
        )
    if made:
        # A task, not inline: scoring hands off from the event dispatch, which must not wait on SMTP.
        enqueue_on_commit(
            handoffs_notify_task,
            handoff_ids=[h.pk for h in made],
            org_id=org.pk,
            destination=policy.notify_destination,
        )
    return made


def _live_contacts(org: Organization, contact_ids) -> set[int]:
    """Those of ``contact_ids`` with an open or accepted handoff."""
    live = Handoff.objects.filter(org=org, contact_id__in=list(contact_ids), status__in=LIVE)
    return set(live.values_list("contact_id", flat=True))


def _grant_all(handoffs: list[Handoff]) -> None:
    """Guardian's view/change object permissions for each new handoff's assignee: one insert for
    them all (guardian's own bulk assignment looks up what the user already holds, per user and
    permission, which a new handoff cannot have)."""
    assigned = [h for h in handoffs if h.assignee is not None]
    if not assigned:
        return
    content_type = ContentType.objects.get_for_model(Handoff)
    permissions = Permission.objects.filter(content_type=content_type, codename__in=OBJECT_PERMS)
    get_user_obj_perms_model().objects.bulk_create(
        [
            get_user_obj_perms_model()(
                permission=permission, user=handoff.assignee, content_type=content_type, object_pk=str(handoff.pk)
            )
            for permission in permissions
            for handoff in assigned
        ],
        ignore_conflicts=True,
    )


def _grant(handoff: Handoff, user: User) -> None:
    for perm in OBJECT_PERMS:
        assign_perm(perm, user, handoff)


def handoff_assign(*, handoff: Handoff, assignee: User, user: User) -> Handoff:
    """Gives ``handoff`` to another rep (a manager's move): the object permissions move with it."""
    if not handoff_is_manager(user=user, org=handoff.org):
        raise PermissionDenied("Only a sales manager may reassign a handoff.")
    if not eligible_reps(org=handoff.org, user_ids=[assignee.pk]).exists():
        raise ValidationError({"assignee": f"{assignee} is not a sales rep or admin of this organisation."})
    with transaction.atomic():
        previous = handoff.assignee
        Handoff.objects.filter(pk=handoff.pk).update(assignee=assignee)
        handoff.assignee = assignee
        if previous is not None and previous.pk != assignee.pk:
            for perm in OBJECT_PERMS:
                remove_perm(perm, previous, handoff)
        _grant(handoff, assignee)
    enqueue_on_commit(handoff_notify_task, handoff_id=handoff.pk, org_id=handoff.org_id, destination="")
    return handoff


# Notifying --------------------------------------------------------------------------------------


def handoff_console_url(handoff_id: int) -> str:
    """The handoff's page in the console, as an absolute URL (for emails and Slack)."""
    try:
        path = reverse("admin:scoring_handoff_change", args=[handoff_id])
    except NoReverseMatch:  # the console is not mounted (a worker without the admin)
        path = f"/admin/scoring/handoff/{handoff_id}/change/"
    return f"{settings.SITE_URL}{path}"


@shared_task(name="scoring.handoffs.handoff_notify", acks_late=True)
def handoff_notify_task(*, handoff_id: int, org_id: int, destination: str = "") -> None:
    """``handoff_notify`` in a worker, after the handoff committed."""
    handoff_notify(handoff_id=handoff_id, org_id=org_id, destination=destination)


@shared_task(name="scoring.handoffs.handoffs_notify", acks_late=True)
def handoffs_notify_task(*, handoff_ids: list[int], org_id: int, destination: str = "") -> None:
    """``handoff_notify`` for each handoff made together, in a worker, after they committed."""
    for handoff_id in handoff_ids:
        handoff_notify(handoff_id=handoff_id, org_id=org_id, destination=destination)


def handoff_notify(*, handoff_id: int, org_id: int, destination: str = "") -> None:
    """Tells the assignee of a new handoff by email and, if ``destination`` names a Slack
    destination, posts it there. Called after commit; a failure is logged, never raised (the
    handoff exists and is in the queue either way).

    The rep's email is an outbox message with no contact (``notice_enqueue``: transactional, so
    suppression applies and consent does not), visible in the console's outbox. The Slack post
    goes through the Slack provider's guarded webhook client (the SSRF guard, no retries),
    without an outbox row: the org need not have a template for it. A failed Slack
    post is logged and not retried; the email and the queue remain.
    """
    from marketing.tenancy import org_context

    org = Organization.objects.filter(pk=org_id).first()
    if org is None:  # deleted since (the task outlived it)
        return
    with org_context(org):
        handoff = Handoff.objects.select_related("contact", "assignee").filter(pk=handoff_id).first()
        if handoff is None:
            return
        contact, rep = handoff.contact, handoff.assignee
        who = str(contact)
        link = handoff_console_url(handoff.pk)
        text = (
            f"{who} was handed to sales ({handoff.get_reason_display().lower()}), score {handoff.score}. "
            f"Accept by {handoff.sla_due_at:%Y-%m-%d %H:%M} UTC: {link}"
        )
        if rep is not None and rep.email:
            notice_enqueue(
                org=org,
                to=rep.email,
                user=rep,
                subject=f"New lead for you: {who}",
                text=f"Hello {rep.get_full_name() or rep.username},\n\n{text}\n"
                + (f"\nWhy: {handoff.detail}\n" if handoff.detail else ""),
                key=f"handoff-{handoff.pk}-to-{rep.pk}",
            )
        if destination:
            assigned = f"{text} (assigned to {rep.username if rep else 'nobody yet'})"
            _slack_post(org, destination, text=assigned, key=f"handoff-{handoff.pk}")


def _slack_post(org: Organization, slug: str, *, text: str, key: str) -> bool:
    """Posts ``text`` to the org's active Slack destination ``slug``; False (logged) on failure."""
    from channels_app.models import Channel, Destination
    from channels_app.providers import PermanentError, TransientError
    from channels_app.providers.slack import GuardedWebhookClient

    target = Destination.objects.filter(org=org, slug=slug, channel=Channel.SLACK, active=True).first()
    if target is None:
        logger.warning("handoff slack skipped org=%s destination=%s: no active Slack destination", org.slug, slug)
        return False
    try:
        GuardedWebhookClient(target.url, idempotency_key=key).send(text=text)
    except (PermanentError, TransientError) as exc:
        logger.warning("handoff slack failed org=%s destination=%s error=%s", org.slug, slug, exc)
        return False
    return True


# Acting on a handoff ----------------------------------------------------------------------------


def handoff_is_manager(*, user: User, org: Organization) -> bool:
    """Whether ``user`` sees and acts on every handoff of ``org``: a superuser, an admin of the
    org, or a member of the org whose membership is flagged ``sales_manager``. Only the membership
    of ``org`` counts, never a global permission: a manager in one org is not one in another."""
    if user is None or not user.is_active:
        return False
    if user.is_superuser:
        return True
    membership = current_membership()  # the request's, loaded once by the tenancy middleware
    if membership is None or membership.user_id != user.pk or membership.org_id != org.pk:
        membership = Membership.objects.filter(org=org, user=user).only("role", "sales_manager").first()
    if membership is None:
        return False
    return membership.role == Role.ADMIN or membership.sales_manager


def handoffs_visible_to(*, user: User, org: Organization, queryset=None):
    """The handoffs of ``org`` that ``user`` may see: all for a manager, else those the user holds
    guardian's ``view_handoff`` on (their own)."""
    queryset = Handoff.objects.filter(org=org) if queryset is None else queryset.filter(org=org)
    if handoff_is_manager(user=user, org=org):
        return queryset
    return get_objects_for_user(user, "scoring.view_handoff", klass=queryset, accept_global_perms=False)


def handoff_can_act(*, handoff: Handoff, user: User | None = None, api_key: ApiKey | None = None) -> bool:
    """Whether the caller may accept, reject or convert ``handoff``."""
    if api_key is not None:
        return api_key.org_id == handoff.org_id and api_key.scope == ApiKey.Scope.SERVER and not api_key.revoked_at
    if user is None:
        return False
    if handoff_is_manager(user=user, org=handoff.org):
        return True
    is_rep = Membership.objects.filter(org=handoff.org, user=user, role__in=REP_ROLES).exists()
    return is_rep and ObjectPermissionChecker(user).has_perm("change_handoff", handoff)


def _check(handoff: Handoff, user, api_key, verb: str) -> None:
    if not handoff_can_act(handoff=handoff, user=user, api_key=api_key):
        raise PermissionDenied(f"Only the assigned rep or a sales manager may {verb} this handoff.")


def _locked(handoff: Handoff, allowed: tuple, verb: str) -> Handoff:
    fresh = Handoff.objects.select_for_update().select_related("contact").get(pk=handoff.pk)
    if fresh.status not in allowed:
        raise HandoffStateError(
            {"status": f"A handoff that is {fresh.get_status_display().lower()} cannot be {verb}ed."}
        )
    return fresh


def _record(handoff: Handoff, event_type: str, properties: dict, now: datetime) -> None:
    """Records ``event_type`` on the contact's timeline (and for workflows, through dispatch);
    the message id makes a repeated call store it once."""
    from marketing.ingestion import SystemEvent, events_record

    event = SystemEvent(
        contact_id=handoff.contact_id,
        type=event_type,
        properties={"handoff_id": handoff.pk, "reason": handoff.reason, **properties},
        occurred_at=now,
        message_id=f"{event_type}-{handoff.pk}",
    )
    events_record(org=handoff.org, events=[event], source="scoring")


def handoff_accept(*, handoff: Handoff, user: User | None = None, api_key: ApiKey | None = None, now=None) -> Handoff:
    """The rep takes the contact: status accepted; the contact becomes a sales qualified lead
    (``sql``, lead status in progress) owned by the assignee when it had no owner."""
    _check(handoff, user, api_key, "accept")
    now = now or timezone.now()
    with transaction.atomic():
        handoff = _locked(handoff, (Handoff.Status.OPEN,), "accept")
        handoff.status, handoff.accepted_at = Handoff.Status.ACCEPTED, now
        handoff.save(update_fields=["status", "accepted_at"])
        contact = handoff.contact
        fields = {"lead_status": LeadStatus.IN_PROGRESS}
        if contact.lifecycle_stage in REJECT_RESETS:
            fields["lifecycle_stage"] = LifecycleStage.SQL
        if contact.owner_id is None and handoff.assignee_id:
            fields["owner_id"] = handoff.assignee_id
        Contact.objects.filter(pk=contact.pk).update(updated_at=now, **fields)
        _record(handoff, "handoff_accepted", {"assignee_id": handoff.assignee_id}, now)
    return handoff


def handoff_reject(
    *, handoff: Handoff, user: User | None = None, reason: str = "", api_key: ApiKey | None = None, now=None
) -> Handoff:
    """The rep sends the contact back to nurture, saying why (required). The contact returns to
    the ``lead`` stage (not from opportunity or customer) with lead status unqualified, and a
    ``handoff_rejected`` event (with the reason) is recorded for workflows to pick up; the nurture
    sweep may hand it over again after another ``nurture_days``."""
    _check(handoff, user, api_key, "reject")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the contact goes back to nurture."})
    now = now or timezone.now()
    with transaction.atomic():
        handoff = _locked(handoff, LIVE, "reject")
        handoff.status, handoff.rejection_reason, handoff.closed_at = Handoff.Status.REJECTED, reason, now
        handoff.save(update_fields=["status", "rejection_reason", "closed_at"])
        fields = {"lead_status": LeadStatus.UNQUALIFIED}
        if handoff.contact.lifecycle_stage in REJECT_RESETS:
            fields["lifecycle_stage"] = LifecycleStage.LEAD
        Contact.objects.filter(pk=handoff.contact_id).update(updated_at=now, **fields)
        _record(handoff, "handoff_rejected", {"rejection_reason": reason[:500]}, now)
    return handoff


def handoff_convert(*, handoff: Handoff, user: User | None = None, api_key: ApiKey | None = None, now=None) -> Handoff:
    """The rep made a deal of it: status converted, the contact an ``opportunity`` (a customer
    stays a customer; becoming a customer is the purchase's business, not the queue's), lead
    status qualified, and a ``handoff_converted`` event recorded. An open handoff may be converted
    directly (it counts as accepted then)."""
    _check(handoff, user, api_key, "convert")
    now = now or timezone.now()
    with transaction.atomic():
        handoff = _locked(handoff, LIVE, "convert")
        handoff.status, handoff.closed_at = Handoff.Status.CONVERTED, now
        handoff.accepted_at = handoff.accepted_at or now
        handoff.save(update_fields=["status", "closed_at", "accepted_at"])
        fields = {"lead_status": LeadStatus.QUALIFIED}
        if handoff.contact.lifecycle_stage in CONVERT_RAISES:
            fields["lifecycle_stage"] = LifecycleStage.OPPORTUNITY
        if handoff.contact.owner_id is None and handoff.assignee_id:
            fields["owner_id"] = handoff.assignee_id
        Contact.objects.filter(pk=handoff.contact_id).update(updated_at=now, **fields)
        _record(handoff, "handoff_converted", {"assignee_id": handoff.assignee_id}, now)
    return handoff


# Merges -----------------------------------------------------------------------------------------


@merge_handler
def handoffs_merge(org: Organization, kept: Contact, gone: Contact) -> int:
    """Two contacts merged: the merged one's handoffs (and so sales' history) move to the kept one.
    If both have a live handoff, the kept contact's stays and the other is closed as rejected,
    saying so (one live handoff per contact); its rep keeps seeing it in their history."""
    now = timezone.now()
    if Handoff.objects.filter(org=org, contact=kept, status__in=LIVE).exists():
        Handoff.objects.filter(org=org, contact=gone, status__in=LIVE).update(
            status=Handoff.Status.REJECTED,
            closed_at=now,
            rejection_reason=f"Merged into contact {kept.pk}, which has its own open handoff.",
        )
    return Handoff.objects.filter(org=org, contact=gone).update(contact=kept)


# SLA --------------------------------------------------------------------------------------------


class SlaState:
    ON_TIME = "on_time"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"
    MET = "met"
    MISSED = "missed"
    CHOICES = [
        (ON_TIME, "On time"),
        (DUE_SOON, "Due soon"),
        (OVERDUE, "Overdue"),
        (MET, "Answered in time"),
        (MISSED, "Answered late"),
    ]


def handoff_sla_state(handoff: Handoff, *, now: datetime | None = None) -> str:
    """An open handoff is on time, due soon (under ``DUE_SOON`` left) or overdue; an answered one
    met its SLA or missed it (answered = accepted, or closed without accepting)."""
    now = now or timezone.now()
    if handoff.status == Handoff.Status.OPEN:
        if now > handoff.sla_due_at:
            return SlaState.OVERDUE
        return SlaState.DUE_SOON if handoff.sla_due_at - now <= DUE_SOON else SlaState.ON_TIME
    answered = handoff.accepted_at or handoff.closed_at
    return SlaState.MET if answered and answered <= handoff.sla_due_at else SlaState.MISSED


def sla_state_q(state: str, *, now: datetime) -> Q:
    """The handoffs in SLA ``state`` at ``now``, as a filter (for lists and the admin)."""
    open_ = Q(status=Handoff.Status.OPEN)
    if state == SlaState.OVERDUE:
        return open_ & Q(sla_due_at__lt=now)
    if state == SlaState.DUE_SOON:
        return open_ & Q(sla_due_at__gte=now, sla_due_at__lte=now + DUE_SOON)
    if state == SlaState.ON_TIME:
        return open_ & Q(sla_due_at__gt=now + DUE_SOON)
    met = Q(accepted_at__lte=F("sla_due_at")) | Q(accepted_at__isnull=True, closed_at__lte=F("sla_due_at"))
    if state == SlaState.MET:
        return ~open_ & met
    if state == SlaState.MISSED:
        return ~open_ & ~met
    return Q()


# Sweeps (beat) ----------------------------------------------------------------------------------


def handoffs_nurtured(*, org: Organization, now: datetime | None = None, limit: int = NURTURE_BATCH) -> list[Handoff]:
    """Hands over contacts nurtured for the policy's ``nurture_days``: in a lead stage, created at
    least that long ago, and with no handoff that is live or was made or closed within that time
    (a rejected contact gets another full nurture period). The selection is one query; each
    chosen contact then goes through ``handoff_create`` (assignment, permissions, notice)."""
    now = now or timezone.now()
    policy = HandoffPolicy.objects.filter(org=org).first()
    if policy is None or not policy.nurture_days:
        return []
    cutoff = now - timedelta(days=policy.nurture_days)
    recent = Handoff.objects.filter(contact=OuterRef("pk")).filter(
        Q(status__in=LIVE) | Q(created_at__gt=cutoff) | Q(closed_at__gt=cutoff)
    )
    chosen = list(
        Contact.objects.filter(org=org, lifecycle_stage__in=NURTURE_STAGES, created_at__lte=cutoff)
        .exclude(Exists(recent))
        .order_by("created_at", "pk")[:limit]
    )
    model = scoring_model_get(org=org)
    made = []
    for contact in chosen:
        handoff = handoff_create(
            org=org,
            contact=contact,
            reason=Handoff.Reason.NURTURED,
            model=model,
            detail=f"In a lead stage for {policy.nurture_days} days or more",
            now=now,
        )
        if handoff is not None:
            made.append(handoff)
    return made


def handoffs_overdue_notify(*, org: Organization, now: datetime | None = None) -> int:
    """Reminds the assignee of each open handoff past its SLA, once per handoff (a cache key
    remembers the reminder), by email and on the policy's Slack destination."""
    now = now or timezone.now()
    policy = HandoffPolicy.objects.filter(org=org).first()
    overdue = list(
        Handoff.objects.filter(org=org, status=Handoff.Status.OPEN, sla_due_at__lt=now).select_related(
            "contact", "assignee"
        )[:NURTURE_BATCH]
    )
    reminded = 0
    for handoff in overdue:
        if not cache.add(f"handoff-overdue-{handoff.pk}", 1, timeout=7 * 86400):
            continue
        reminded += 1
        text = f"Overdue: {handoff.contact} waits since {handoff.created_at:%Y-%m-%d %H:%M} UTC: "
        text += handoff_console_url(handoff.pk)
        rep = handoff.assignee
        if rep is not None and rep.email:
            notice_enqueue(
                org=org,
                to=rep.email,
                user=rep,
                subject=f"Overdue lead: {handoff.contact}",
                text=text,
                key=f"handoff-overdue-{handoff.pk}-to-{rep.pk}",
            )
        if policy is not None and policy.notify_destination:
            _slack_post(org, policy.notify_destination, text=text, key=f"handoff-overdue-{handoff.pk}")
    return reminded


@shared_task(name="scoring.handoffs.handoffs_sweep")
def handoffs_sweep() -> dict:
    """Beat: for every org with a handoff policy, hands over nurtured contacts and reminds reps of
    overdue handoffs. Which orgs have a policy is a look across orgs, through the system alias
    (docs/tenancy.md, "Workers"); each org's sweep then runs as the app role in its context."""
    from marketing.database_roles import system_alias
    from marketing.tenancy import org_context

    org_ids = HandoffPolicy.objects.with_scopes_disabled().using(system_alias()).values_list("org_id", flat=True)
    made = reminded = 0
    now = timezone.now()
    for org in Organization.objects.filter(pk__in=list(org_ids)).order_by("pk"):
        with org_context(org):
            made += len(handoffs_nurtured(org=org, now=now))
            reminded += handoffs_overdue_notify(org=org, now=now)
    return {"handed_off": made, "reminded": reminded}
