"""Live status: step transitions published to Channels groups, and the websocket that relays them.

The engine publishes after each batch commits, once per workflow per batch (docs/workflows.md):
``{"type": "transitions", "workflow": id, "transitions": [...], "counts": {...}}`` to the
group ``workflow-<id>`` and a copy to ``org-<id>``. ``counts`` (per step: waiting, running,
done, failed) costs a grouped query, so it is sent at most once a second per workflow; the
page keeps the last counts it got.

The websocket (``/ws/workflows/<id>/`` or ``/ws/workflows/`` for the whole org) accepts only
a logged-in console user who is a member of the workflow's org (or a superuser) and may view
workflows; anyone else is closed with code 4403 and joins no group.
"""

import logging

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from django.core.cache import cache

from marketing.database_roles import system_alias

logger = logging.getLogger(__name__)

MAX_TRANSITIONS = 50  # per message; the counts carry the totals
COUNTS_EVERY_S = 1


def workflow_group(workflow_id: int) -> str:
    return f"workflow-{workflow_id}"


def org_group(org_id: int) -> str:
    return f"org-{org_id}"


def _send(groups: list[str], message: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        for group in groups:
            async_to_sync(layer.group_send)(group, message)
    except Exception:  # live status is best effort: a Redis hiccup must not fail the run
        logger.warning("live status publish failed groups=%s", groups, exc_info=True)


def transitions_publish(transitions: dict[int, list[dict]], totals: dict[int, int] | None = None) -> None:
    """Sends each workflow's transitions of a committed batch (called after commit); ``totals``
    counts them all where ``transitions`` keeps only the last few.

    A batch spans orgs and runs after its transaction, in no org: each workflow's org is found
    through the system alias, and its counts are read in that org's context (as the app role,
    row-level security shows no org's rows without one)."""
    from marketing.tenancy import org_context
    from workflows.models import Workflow
    from workflows.selectors import step_counts

    org_of = {
        workflow.pk: workflow.org
        for workflow in Workflow.objects.with_scopes_disabled()
        .using(system_alias())
        .filter(pk__in=list(transitions))
        .select_related("org")
        .only("pk", "org")
    }
    for workflow_id, items in transitions.items():
        message = {
            "type": "workflow.status",
            "workflow": workflow_id,
            "transitions": items[-MAX_TRANSITIONS:],
            "total": (totals or {}).get(workflow_id, len(items)),
        }
        org = org_of.get(workflow_id)
        try:
            if org is not None and cache.add(f"live-status-counts:{workflow_id}", 1, timeout=COUNTS_EVERY_S):
                with org_context(org):
                    message["counts"] = step_counts(workflow_id=workflow_id)
        except Exception:  # best effort, like the send: Redis down must not fail the worker
            logger.warning("live status counts failed workflow=%s", workflow_id, exc_info=True)
        _send([workflow_group(workflow_id), org_group(org.pk if org is not None else 0)], message)


def notification_publish(*, instance, step_id: str, message: str) -> None:
    """A ``notify`` action's message, for the workflow's live feed (after commit)."""
    from django.db import transaction

    payload = {
        "type": "workflow.status",
        "workflow": instance.workflow_id,
        "transitions": [],
        "notification": {"instance": instance.pk, "step": step_id, "message": message},
    }
    groups = [workflow_group(instance.workflow_id), org_group(instance.org_id)]
    transaction.on_commit(lambda: _send(groups, payload))


class WorkflowStatusConsumer(AsyncJsonWebsocketConsumer):
    """Streams a workflow's (or the whole org's) transitions to an authorised console user."""

    async def connect(self):
        workflow_id = self.scope["url_route"]["kwargs"].get("workflow_id")
        group = await self._authorised_group(workflow_id)
        if group is None:
            # Accepted first so the close carries 4403: a close before accepting is an HTTP 403
            # to the handshake, which a browser reports only as 1006 (a dropped connection), so
            # the page could not tell "not allowed" from "try again".
            await self.accept()
            await self.close(code=4403)
            return
        self.group = group
        await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def workflow_status(self, event):
        await self.send_json({k: v for k, v in event.items() if k != "type"})

    @database_sync_to_async
    def _authorised_group(self, workflow_id) -> str | None:
        from marketing.models import Membership
        from marketing.roles import role_allows
        from marketing.tenancy import SESSION_KEY
        from workflows.models import Workflow

        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            return None
        session = self.scope.get("session")
        org_id = session.get(SESSION_KEY) if session is not None else None
        if workflow_id is not None:
            org_id = (
                Workflow.objects.with_scopes_disabled()
                .using(system_alias())
                .filter(pk=workflow_id)
                .values_list("org_id", flat=True)
                .first()
            )
            if org_id is None:
                return None
        if org_id is None:
            return None
        if not user.is_superuser:
            role = (
                Membership.objects.with_scopes_disabled()
                .using(system_alias())
                .filter(user=user, org_id=org_id)
                .values_list("role", flat=True)
                .first()
            )
            if role is None or not role_allows(role, "workflows.view_workflow"):
                return None
        return workflow_group(int(workflow_id)) if workflow_id is not None else org_group(int(org_id))
