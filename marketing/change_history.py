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
