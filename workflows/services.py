"""Writes and business rules of workflows: saving and publishing definitions, enrolling
contacts, pausing, resuming, cancelling and retrying runs, deciding approvals, templates."""

import uuid
from collections.abc import Iterable
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q, Value
from django.db.models.functions import Concat
from django.utils import timezone

from marketing.bulk_sql import update_rows
from marketing.celery import enqueue_on_commit
from marketing.identity import merge_handler
from marketing.models import Membership, Organization, Role, User
from workflows.definitions import definition_errors, settings_of
from workflows.models import (
    ACTIVE_STATUSES,
    Approval,
    AutomationExecution,
    InstanceStatus,
    ScheduledJob,
    Workflow,
    WorkflowInstance,
    WorkflowTemplate,
    WorkflowVersion,
)
from workflows.triggers import triggers

ENROL_CHUNK = 5000


def _run_soon() -> None:
    from workflows.tasks import instances_run_due

    enqueue_on_commit(instances_run_due)


def _check_definition(definition, org: Organization) -> None:
    errors = definition_errors(definition, org=org)
    if errors:
        raise ValidationError({"definition": errors})


def workflow_create(
    *,
    org: Organization,
    name: str,
    slug: str,
    definition: dict,
    description: str = "",
    by: User | None = None,
    template: WorkflowTemplate | None = None,
) -> Workflow:
    """Creates a draft workflow; the definition must validate (errors name the step and field)."""
    _check_definition(definition, org)
    if Workflow.objects.filter(org=org, slug=slug).exists():
        raise ValidationError({"slug": "A workflow with this slug already exists."})
    workflow = Workflow(
        org=org,
        name=name,
        slug=slug,
        description=description,
        draft_definition=definition,
        created_by=by,
        template=template,
    )
    workflow.full_clean(exclude=["live_version", "template", "created_by"])
    workflow.save()
    return workflow


def workflow_update(*, workflow: Workflow, **fields) -> Workflow:
    """Changes the draft (name, description, definition); runs keep their published version."""
    allowed = {"name", "slug", "description", "draft_definition"}
    if unknown := set(fields) - allowed:
        raise ValidationError({name: "Unknown field." for name in sorted(unknown)})
    if "draft_definition" in fields:
        _check_definition(fields["draft_definition"], workflow.org)
    if (
        "slug" in fields
        and Workflow.objects.filter(org=workflow.org, slug=fields["slug"]).exclude(pk=workflow.pk).exists()
    ):
        raise ValidationError({"slug": "A workflow with this slug already exists."})
    for name, value in fields.items():
        setattr(workflow, name, value)
    workflow.save(update_fields=[*fields, "updated_at"])  # never write back a concurrent publish
    return workflow


def workflow_publish(*, workflow: Workflow, by: User | None = None, migrate: dict | None = None) -> WorkflowVersion:
    """Freezes the draft as a new version and makes it live (new runs start on it). Running
    runs finish on their version, unless ``migrate`` is given (``{"map": {old step: new step}}``;
    ``{}`` maps each step to the one with its id): then they move to the new version in the same
    transaction (``instances_move``). A schedule trigger gets its ScheduledJob kept in step."""
    with transaction.atomic():
        workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
        _check_definition(workflow.draft_definition, workflow.org)
        if not_ready := _unready_sends(workflow.draft_definition, workflow.org):
            raise ValidationError({"definition": not_ready})
        definition = workflow.draft_definition
        number = (workflow.versions.order_by("-number").values_list("number", flat=True).first() or 0) + 1
        version = WorkflowVersion.objects.create(
            org=workflow.org, workflow=workflow, number=number, definition=definition, published_by=by
        )
        trigger_config = definition["trigger"]
        workflow.live_version = version
        workflow.trigger_type = trigger_config["type"]
        workflow.trigger_event = triggers()[trigger_config["type"]].event_type(trigger_config)
        if workflow.status in (Workflow.Status.DRAFT, Workflow.Status.ARCHIVED):
            workflow.status = Workflow.Status.ACTIVE
        workflow.save(update_fields=["live_version", "trigger_type", "trigger_event", "status", "updated_at"])
        _schedule_sync(workflow, trigger_config)
        if migrate is not None:
            instances_move(workflow=workflow, version=version, step_map=migrate.get("map") or {}, by=by)
    return version


def instances_move(
    *, workflow: Workflow, version: WorkflowVersion, step_map: dict[str, str], by: User | None = None
) -> dict[str, int]:
    """Moves the running runs of ``workflow``'s older versions to ``version``: each token goes to
    the step ``step_map`` names (or the step with its id), keeping its wait, wake time and
    visits; open approvals follow; the move is recorded on the run. Raises a ValidationError
    naming every step without a target of its type, and then moves nothing.

    Runs a batch holds locked get ``migrate_to`` and move when the engine next claims them
    (this waits for that batch to commit). Call it inside the publish's transaction; returns
    ``{"moved": n, "deferred": n}``.
    """
    from workflows.engine import approvals_move, move_targets, tokens_move

    now = timezone.now()
    older = WorkflowInstance.objects.filter(workflow=workflow, status__in=ACTIVE_STATUSES).exclude(version=version)
    free = list(older.order_by("pk").select_for_update(skip_locked=True, of=("self",)))
    free_ids = {i.pk for i in free}
    # What a batch holds, as last committed: checked now, and again when the move applies.
    held = list(older.exclude(pk__in=free_ids).values_list("pk", "version_id", "tokens"))
    occupied: dict[int, set[str]] = {}
    for version_id, tokens in [(i.version_id, i.tokens) for i in free] + [(v, t) for _, v, t in held]:
        occupied.setdefault(version_id, set()).update(t["step"] for t in tokens)
    definitions = dict(WorkflowVersion.objects.filter(pk__in=list(occupied)).values_list("pk", "definition"))
    old_steps = {pk: {s["id"]: s for s in d["steps"]} for pk, d in definitions.items()}
    new_steps = {s["id"]: s for s in version.definition["steps"]}
    targets, problems = move_targets(
        occupied=occupied, old_steps=old_steps, new_steps=new_steps, step_map=step_map, number=version.number
    )
    if problems:
        raise ValidationError({"migrate": problems})
    who = by.get_username() if by else None
    pairs: set[tuple[str, str]] = set()
    for instance in free:
        record = {
            "from": instance.version_id,
            "to": version.pk,
            "number": version.number,
            "map": step_map,
            "by": who,
            "at": now.isoformat(),
        }
        pairs.update(
            tokens_move(instance, targets=targets.get(instance.version_id, {}), version_id=version.pk, record=record)
        )
        instance.updated_at = now
    update_rows(free, ["version", "tokens", "visits", "current_step", "migrate_to", "moves", "updated_at"])
    approvals_move(sorted(free_ids), pairs)
    deferred = 0
    if held:
        # Due now, so the next claim applies the move; the claim then recomputes the wake time
        # from the tokens, which the move keeps.
        deferred = older.filter(pk__in=[pk for pk, _, _ in held]).update(
            migrate_to={"version": version.pk, "number": version.number, "map": step_map, "by": who},
            wake_at=now,
        )
        _run_soon()
    return {"moved": len(free), "deferred": deferred}


def _schedule_sync(workflow: Workflow, trigger_config: dict) -> None:
    from workflows.scheduled_jobs import scheduled_job_save

    job = ScheduledJob.objects.filter(workflow=workflow, name=f"Trigger of {workflow.slug}").first()
    if trigger_config["type"] != "schedule":
        if job is not None:
            scheduled_job_save(job=job, enabled=False)
        return
    from marketing.models import Segment

    job = job or ScheduledJob(org=workflow.org, workflow=workflow, name=f"Trigger of {workflow.slug}")
    kind = "cron" if "cron" in trigger_config else "recurring" if "every" in trigger_config else "once"
    from workflows import durations

    scheduled_job_save(
        job=job,
        kind=kind,
        cron=trigger_config.get("cron", ""),
        every_seconds=int(durations.seconds(trigger_config["every"])) if "every" in trigger_config else None,
        run_at=datetime.fromisoformat(trigger_config["at"]) if "at" in trigger_config else None,
        time_zone=trigger_config.get("time_zone", workflow.org.default_time_zone),
        segment=Segment.objects.filter(org=workflow.org, slug=trigger_config["segment"]).first(),
        enabled=workflow.status == Workflow.Status.ACTIVE,
    )


def _status_move(workflow: Workflow, *, allowed: tuple[str, ...], to: str, verb: str) -> Workflow:
    locked = Workflow.objects.select_for_update().get(pk=workflow.pk)
    if locked.status not in allowed:
        raise ValidationError(
            {"status": f"Only {' or '.join(allowed)} workflows can be {verb}; this one is {locked.status}."}
        )
    Workflow.objects.filter(pk=workflow.pk).update(status=to, updated_at=timezone.now())
    workflow.status = to
    return locked


def workflow_pause(*, workflow: Workflow) -> int:
    """Pauses an active workflow: no new runs start, and its runs stop where they are."""
    with transaction.atomic():
        _status_move(workflow, allowed=(Workflow.Status.ACTIVE,), to=Workflow.Status.PAUSED, verb="paused")
        return instances_pause(instances=WorkflowInstance.objects.filter(workflow=workflow))


def workflow_resume(*, workflow: Workflow) -> int:
    """Resumes a paused workflow and its paused runs (a delay that expired meanwhile runs now)."""
    with transaction.atomic():
        _status_move(workflow, allowed=(Workflow.Status.PAUSED,), to=Workflow.Status.ACTIVE, verb="resumed")
        return instances_resume(instances=WorkflowInstance.objects.filter(workflow=workflow))


def workflow_delete(*, workflow: Workflow) -> None:
    """Deletes a workflow that was never published; one with versions keeps its runs' history
    and is archived instead."""
    with transaction.atomic():
        locked = Workflow.objects.select_for_update().get(pk=workflow.pk)
        if locked.versions.exists():
            raise ValidationError({"status": "A published workflow keeps its runs' history: archive it instead."})
        locked.delete()


def workflow_archive(*, workflow: Workflow) -> int:
    """Archives the workflow and cancels its active runs."""
    with transaction.atomic():
        Workflow.objects.filter(pk=workflow.pk).update(status=Workflow.Status.ARCHIVED, updated_at=timezone.now())
        workflow.status = Workflow.Status.ARCHIVED
        return instances_cancel(instances=WorkflowInstance.objects.filter(workflow=workflow))


def _eligible(workflow: Workflow, contact_ids: list[int], settings: dict, trigger_key: str) -> list[int]:
    """The contacts the re-enrolment policy and the concurrency cap let in with this key."""
    rows = (
        WorkflowInstance.objects.filter(workflow=workflow, contact_id__any_of=contact_ids)
        .values("contact_id")
        .annotate(
            total=Count("id"),
            active=Count("id", filter=Q(status__in=ACTIVE_STATUSES)),
            same_key=Count("id", filter=Q(trigger_key=trigger_key)),
        )
    )
    policy, cap = settings["reenrollment"], settings["max_active_per_contact"]
    blocked = set()
    for row in rows:
        if (
            row["same_key"]
            or (policy == "never" and row["total"])
            or (policy == "after_exit" and row["active"])
            or (cap is not None and row["active"] >= cap)
        ):
            blocked.add(row["contact_id"])
    return [cid for cid in contact_ids if cid not in blocked]


def workflow_enrol(
    *,
    workflow: Workflow,
    contact_ids: Iterable[int],
    trigger_type: str,
    trigger_key: str,
    trigger_data: dict | None = None,
    now: datetime | None = None,
) -> int:
    """Starts runs of the live version for these contacts, as the re-enrolment policy and the
    per-contact cap allow; returns how many started. The same ``trigger_key`` never enrols a
    contact twice (a unique constraint), so a redelivered trigger is harmless."""
    if workflow.live_version_id is None:
        raise ValidationError({"workflow": f"“{workflow.name}” has no published version."})
    now = now or timezone.now()
    contact_ids = sorted(set(contact_ids))
    started = 0
    with transaction.atomic():
        # Serialises enrolments of one workflow, so two workers cannot both pass the policy check.
        locked = (
            Workflow.objects.select_for_update(no_key=True)
            .filter(pk=workflow.pk)
            .values("status", "live_version_id")
            .first()
        )
        if locked is None or locked["status"] != Workflow.Status.ACTIVE:
            return 0
        version = WorkflowVersion.objects.get(pk=locked["live_version_id"])
        settings = settings_of(version.definition)
        first_step = version.definition["steps"][0]["id"]
        data = trigger_data or {}
        for first in range(0, len(contact_ids), ENROL_CHUNK):
            eligible = _eligible(workflow, contact_ids[first : first + ENROL_CHUNK], settings, trigger_key)
            WorkflowInstance.objects.bulk_create(
                [
                    WorkflowInstance(
                        org_id=workflow.org_id,
                        workflow_id=workflow.pk,
                        version=version,
                        contact_id=contact_id,
                        status=InstanceStatus.PENDING,
                        wake_at=now,
                        current_step=first_step,
                        tokens=[{"id": "t1", "step": first_step}],
                        context={"trigger": data, "vars": {}, "steps": {}},
                        trigger_type=trigger_type,
                        trigger_key=trigger_key,
                        trigger_data=data,
                        triggered_at=now,
                    )
                    for contact_id in eligible
                ],
                ignore_conflicts=True,  # a concurrent enrolment with the same key: the first wins
                batch_size=1000,
            )
            started += len(eligible)
        if started:
            _run_soon()
    return started


def workflow_enrol_manually(*, workflow: Workflow, contact_ids: Iterable[int], by: User | None = None) -> int:
    """An operator's enrolment of a contact selection or a segment (one key per request)."""
    return workflow_enrol(
        workflow=workflow,
        contact_ids=contact_ids,
        trigger_type="manual",
        trigger_key=f"manual:{uuid.uuid4().hex}",
        trigger_data={"by": by.get_username() if by else None},
    )


def instances_pause(*, instances) -> int:
    """Pauses active runs where they are; returns how many."""
    now = timezone.now()
    return instances.filter(status__in=[InstanceStatus.PENDING, InstanceStatus.WAITING]).update(
        paused_status=F("status"), status=InstanceStatus.PAUSED, updated_at=now
    )


def instances_resume(*, instances) -> int:
    """Resumes paused runs; a wait that ended meanwhile goes on at once."""
    now = timezone.now()
    with transaction.atomic():
        resumed = instances.filter(status=InstanceStatus.PAUSED).update(
            status=F("paused_status"), paused_status="", updated_at=now
        )
        if resumed:
            _run_soon()
    return resumed


def instances_cancel(*, instances) -> int:
    """Cancels active runs (they stop and are recorded as cancelled)."""
    now = timezone.now()
    with transaction.atomic():
        active = list(
            instances.filter(status__in=ACTIVE_STATUSES)
            .select_for_update()
            .values_list("pk", "workflow_id", "contact_id", "started_at", "org_id")
        )
        WorkflowInstance.objects.filter(pk__in=[row[0] for row in active]).update(
            status=InstanceStatus.CANCELLED,
            result=WorkflowInstance.Result.CANCELLED,
            finished_at=now,
            wake_at=None,
            waits_for_event=False,
            tokens=[],
            updated_at=now,
        )
        AutomationExecution.objects.bulk_create(
            [
                AutomationExecution(
                    org_id=org_id,
                    workflow_id=wf,
                    instance_id=pk,
                    contact_id=contact,
                    status="cancelled",
                    result="cancelled",
                    started_at=started or now,
                    finished_at=now,
                    duration_ms=max(0, int(((now - (started or now)).total_seconds()) * 1000)),
                )
                for pk, wf, contact, started, org_id in active
            ],
            ignore_conflicts=True,
        )
    return len(active)


def instances_retry(*, instances) -> int:
    """Starts failed runs again from the step that failed (a new visit: a new idempotency key)."""
    now = timezone.now()
    with transaction.atomic():
        failed = list(instances.filter(status=InstanceStatus.FAILED).select_for_update())
        for instance in failed:
            instance.status, instance.result, instance.error = InstanceStatus.WAITING, "", ""
            instance.finished_at, instance.wake_at = None, now
            instance.tokens = [{"id": "t1", "step": instance.current_step}]
            instance.save(update_fields=["status", "result", "error", "finished_at", "wake_at", "tokens", "updated_at"])
        AutomationExecution.objects.filter(instance__in=failed).update(instance=None)
        if failed:
            _run_soon()
    return len(failed)


def approval_decide(*, approval: Approval, approved: bool, by: User, note: str = "") -> Approval:
    """Records a person's decision and wakes the run waiting for it."""
    with transaction.atomic():
        approval = Approval.objects.select_for_update().get(pk=approval.pk)
        if approval.status != Approval.Status.PENDING:
            raise ValidationError({"status": f"This approval was already {approval.get_status_display().lower()}."})
        allowed_users, role = approval.approvers.get("users"), approval.approvers.get("role")
        if allowed_users and by.pk not in allowed_users and not by.is_superuser:
            raise ValidationError({"approvers": "You are not one of this step's approvers."})
        if role and not by.is_superuser:
            member = Membership.objects.filter(org_id=approval.org_id, user=by, role__in=[role, Role.ADMIN])
            if not member.exists():
                raise ValidationError({"approvers": f"This step is decided by the {role} role (or an admin)."})
        approval.status = Approval.Status.APPROVED if approved else Approval.Status.REJECTED
        approval.decided_by, approval.decided_at, approval.note = by, timezone.now(), note
        approval.save(update_fields=["status", "decided_by", "decided_at", "note"])
        WorkflowInstance.objects.filter(pk=approval.instance_id, status=InstanceStatus.WAITING).update(
            wake_at=timezone.now()
        )
        _run_soon()
    return approval


def _unready_sends(definition: dict, org: Organization) -> list[str]:
    """Why the send steps of ``definition`` would fail once live: a message template never
    published, a destination switched off (each named, with its step), as the app that owns each
    kind answers (``workflows.library_resources``). Checked at publish only: a draft may name
    what is still being written."""
    from workflows.library import SEND_ACTIONS
    from workflows.library_resources import library_resources

    sends = [s for s in definition.get("steps", []) if s.get("type") == "action" and s.get("action") in SEND_ACTIONS]
    kinds = []
    for resource in library_resources():
        slugs = {(s.get("config") or {}).get(resource.config_field) for s in sends}
        kinds.append((resource.config_field, resource.publish_problems(org=org, slugs=slugs)))
    problems = []
    for step in sends:
        config = step.get("config") or {}
        for field, unready in kinds:
            if config.get(field) in unready:
                problems.append(f"steps[{step['id']}].{field}: {unready[config[field]]}")
    return problems


def _library_content_create(*, org: Organization, needs: dict, origin: str, ready: bool) -> dict:
    """Makes what ``needs`` names and ``org`` lacks, from the library's content, marked with
    ``origin``; reuses what exists by slug. ``ready``: templates published and destinations
    active (the demo); else drafts to review. Returns ``created`` as ``library_use`` answers it."""
    from marketing.models import Segment
    from marketing.segments import segment_save
    from workflows.library_content import DESTINATIONS, MESSAGE_TEMPLATES, SEGMENTS
    from workflows.library_resources import library_resources

    created: dict[str, list[dict]] = {"message_templates": [], "segments": [], "destinations": []}
    contents = {"message_templates": MESSAGE_TEMPLATES, "destinations": DESTINATIONS}
    for resource in library_resources():  # made by the app that owns each kind
        for slug in needs.get(resource.needs_key, []):
            spec = contents.get(resource.needs_key, {}).get(slug)
            reused = resource.ensure(org=org, slug=slug, spec=spec, origin=origin, ready=ready)
            if reused is not None:
                created.setdefault(resource.needs_key, []).append({"slug": slug, "reused": reused})
    for slug in needs["segments"]:
        content = SEGMENTS.get(slug)
        made = not Segment.objects.filter(org=org, slug=slug).exists()
        if made and content is None:
            continue
        if made:
            segment = segment_save(
                org=org, name=content.name, slug=slug, rule=content.rule, description=content.description
            )
            Segment.objects.filter(pk=segment.pk).update(library_template=origin)
        created["segments"].append({"slug": slug, "reused": not made})
    return created


def library_use(
    *, template: WorkflowTemplate, by: User | None = None, name: str = "", slug: str = ""
) -> tuple[Workflow, dict]:
    """A draft workflow from a library template, with every message template, destination and
    segment it names that the org lacks (drafts to review: unpublished templates, inactive
    destinations, each marked with the template's slug); what exists by slug is reused. A second
    use makes ``<slug>-2``. Returns the workflow and ``created`` (``{"message_templates":
    [{"slug", "reused"}], "segments": [...], "destinations": [...]}``)."""
    from workflows.library import template_needs

    slug = slug or template.slug
    with transaction.atomic():
        # Serialises uses of one template: two would otherwise race for the same slugs.
        template = WorkflowTemplate.objects.select_for_update().get(pk=template.pk)
        taken = set(Workflow.objects.filter(org=template.org, slug__startswith=slug).values_list("slug", flat=True))
        candidate, n = slug, 2
        while candidate in taken:
            candidate, n = f"{slug}-{n}", n + 1
        created = _library_content_create(
            org=template.org, needs=template_needs(template.definition), origin=template.slug, ready=False
        )
        workflow = Workflow.objects.create(
            org=template.org,
            name=name or template.name,
            slug=candidate,
            description=template.description,
            draft_definition=template.definition,
            template=template,
            created_by=by,
        )
        WorkflowTemplate.objects.filter(pk=template.pk).update(usage_count=F("usage_count") + 1)
    return workflow, created


def workflow_from_template(
    *, template: WorkflowTemplate, by: User | None = None, name: str = "", slug: str = ""
) -> Workflow:
    """``library_use``, for callers that want the workflow alone."""
    return library_use(template=template, by=by, name=name, slug=slug)[0]


def library_content_install(*, org: Organization) -> dict:
    """Everything the org's library templates name, ready to send (templates published,
    destinations active, logging until given a URL): what the demo starts with, so each template
    can be used and published as it is. Returns ``created`` summed over the templates."""
    from workflows.library import template_needs

    total: dict[str, list[dict]] = {"message_templates": [], "segments": [], "destinations": []}
    with transaction.atomic():
        for template in WorkflowTemplate.objects.filter(org=org).order_by("pk"):
            created = _library_content_create(
                org=org, needs=template_needs(template.definition), origin=template.slug, ready=True
            )
            for kind, rows in created.items():
                total[kind].extend(rows)
    return total


def date_triggers_enrol(*, now: datetime | None = None) -> int:
    """Enrols, in every active date-relative workflow of every org, the contacts whose moment
    has come; each contact once per value of its date field.

    The workflows of every org are found through the system alias (the beat's task runs in no
    org, where the app role sees none); each one's contacts are read and enrolled in its org's
    context."""
    from marketing.database_roles import system_alias
    from marketing.tenancy import org_context

    now = now or timezone.now()
    started = 0
    workflows = (
        Workflow.objects.with_scopes_disabled()
        .using(system_alias())
        .filter(status=Workflow.Status.ACTIVE, trigger_type="date_relative")
    )
    for workflow in workflows.select_related("org", "live_version"):
        config = workflow.live_version.definition["trigger"]
        with org_context(workflow.org):
            for contact_ids, key in triggers()["date_relative"].due(workflow, config, now):
                started += workflow_enrol(
                    workflow=workflow,
                    contact_ids=contact_ids,
                    trigger_type="date_relative",
                    trigger_key=key,
                    trigger_data={"field": config["field"]},
                    now=now,
                )
    return started


@merge_handler
def instances_merge(org: Organization, kept, gone) -> int:
    """Two contacts merged: the merged one's runs go on as the kept one's. A run both had for
    the same trigger (the same event reached both) is kept once: the merged one's copy is
    cancelled and renamed, so the unique (workflow, contact, trigger) still holds."""
    mine = WorkflowInstance.objects.filter(org=org, contact=kept)
    clashing = WorkflowInstance.objects.filter(org=org, contact=gone).filter(
        Exists(mine.filter(workflow=OuterRef("workflow"), trigger_key=OuterRef("trigger_key")))
    )
    instances_cancel(instances=clashing)
    clashing.update(trigger_key=Concat(F("trigger_key"), Value(f":merged-{gone.pk}")))
    AutomationExecution.objects.filter(org=org, contact=gone).update(contact=kept)
    return WorkflowInstance.objects.filter(org=org, contact=gone).update(contact=kept)
