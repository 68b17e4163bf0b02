"""Change history of configuration models (django-pghistory): a snapshot row per insert, update
and delete, written by a database trigger, so a change made by a request, a task, a command or
raw SQL is kept alike, with who made it (``marketing.audit.audit_context`` is its context).

Configuration only: workflows, templates, segments, scoring, policies, members, keys, settings.
Never personal data (contacts, events, messages) and never credentials: ``exclude`` names the
fields a model's history must not copy (a key's hash, a webhook secret, a destination's URL).
The event tables are append-only like the audit log (``marketing.append_only``). docs/audit.md
lists the models tracked.
"""

from collections.abc import Sequence

import pghistory
from django.db import connection
from django.db.models import Q
from pghistory.models import Events

from marketing.append_only import AppendOnly

# Timestamps a save bumps even when nothing else changes (a recompute, a publish's bookkeeping)
# would make an event of their own; the event has its own time.
ALWAYS_EXCLUDED = ("updated_at",)


def history_tracked(*, exclude: Sequence[str] = ()):
    """Class decorator: keeps the model's change history (``<Model>Event`` in the same app),
    without the ``exclude`` fields, and refuses updates and deletes of that history."""

    def decorate(model):
        names = {field.name for field in model._meta.fields}
        excluded = [name for name in (*ALWAYS_EXCLUDED, *exclude) if name in names]
        trigger = AppendOnly(name=f"{model._meta.model_name}event_append_only")
        tracker = pghistory.track(
            pghistory.InsertEvent(),
            pghistory.UpdateEvent(),
            pghistory.DeleteEvent(),
            exclude=excluded,
            meta={"triggers": [trigger]},
        )
        return tracker(model)

    return decorate


class ChangeEvent(Events):
    """Every configuration model's history as one list (pghistory's aggregate over the event
    tables): what changed (``pgh_obj_model`` and id), how (insert, update, delete), the
    differences, and who (``pgh_context``). Filter by org with ``change_events_for``."""

    class Meta:
        proxy = True
        verbose_name = "change"
        verbose_name_plural = "change history"


def change_events_for(*, org):
    """The org's change history, newest first: every event whose row belongs to ``org`` (its
    ``org_id``), and the organisation's own settings. None on SQLite (the embedded mode keeps
    no history: its triggers are PostgreSQL's, and so is pghistory's aggregate query)."""
    if connection.vendor != "postgresql":
        return ChangeEvent.no_objects.none()
    return ChangeEvent.objects.filter(
        Q(pgh_data__org_id=org.pk) | Q(pgh_obj_model="marketing.Organization", pgh_obj_id=str(org.pk))
    ).order_by("-pgh_created_at", "-pgh_id")
