"""The data kinds an organisation's retention policies cover, and the tables behind each.

``compliance`` keeps the policies and runs the purge, but may import only ``marketing``: each app
registers its own tables here from a module named ``retention`` (found, like admin modules, in
every installed app on first use), as ``RetentionTarget``s that say which of an org's rows are
past retention and needed by nothing.
``rows_delete`` removes a batch of them set-based, applying every foreign key's ``on_delete``
itself (a NULL, a cascade) as the ORM would, without loading the rows.
"""

from dataclasses import dataclass
from datetime import datetime

from django.core.files.storage import default_storage
from django.db import models, transaction
from django.db.models import Q
from django.db.models.deletion import get_candidate_relations_to_delete
from django.utils.module_loading import autodiscover_modules

import marketing.bulk_sql  # noqa: F401  the __any_of lookup
from marketing.models import DispatchBatch, Event, ImportJob


@dataclass(frozen=True)
class DataKind:
    """One line of the retention page: what it covers, in words, and the shortest period allowed."""

    name: str
    label: str
    help: str
    min_days: int = 1


DATA_KINDS: dict[str, DataKind] = {
    kind.name: kind
    for kind in (
        DataKind(
            "events",
            "Events",
            "What contacts did (page views, form submissions, opens, clicks…), by when it happened. "
            "Rules that count events further back than this find none; score history stays.",
        ),
        DataKind(
            "messages",
            "Messages",
            "Whole outbox rows of messages sent, delivered, bounced or failed, by when they were made. "
            "Queued and sending ones are kept. At least 30 days: frequency caps and the sends "
            "figures count recent messages.",
            min_days=30,
        ),
        DataKind(
            "message_bodies",
            "Message bodies",
            "The rendered subject and text of messages that left the outbox, by when they were made; "
            "the row stays for statistics and so a step never sends twice.",
        ),
        DataKind(
            "step_runs",
            "Workflow step runs",
            "Each step a finished run went through, by when the step ended. Steps of runs still "
            "going (running, waiting, paused) are kept.",
        ),
        DataKind(
            "instances",
            "Finished workflow runs",
            "Completed, failed and cancelled runs with their steps and approvals, by when they ended. "
            "A contact's newest run of each workflow is kept: it is what stops them starting again "
            "when the workflow allows one run only.",
        ),
        DataKind(
            "imports",
            "Imports",
            "Finished CSV imports: the job, its rejected rows and the uploaded file. Imports waiting "
            "or running are kept.",
        ),
        DataKind(
            "logs",
            "Logs",
            "Event dispatch batches already handed on, records of finished runs (the automation "
            "figures read them) and outbound calls sent or given up. Those still due are kept.",
        ),
    )
}


class RetentionTarget:
    """One table's share of a data kind (``kind``): ``expired`` says which of an org's rows are
    older than ``before`` and needed by nothing, ``purge`` removes a batch of them by id."""

    kind: str = ""
    label: str = ""  # what its rows are, e.g. "dispatch batches"
    model: type[models.Model]

    def expired(self, *, org, before: datetime) -> models.QuerySet:
        raise NotImplementedError

    def purge(self, *, ids: list[int]) -> int:
        """Removes the rows (default: deletes them with what depends on them); returns how many."""
        return rows_delete(model=self.model, ids=ids)


_targets: list[RetentionTarget] = []
_discovered = False


def retention_target_register(target: RetentionTarget) -> RetentionTarget:
    """Adds a table to its data kind (once, however often the app's ready() runs)."""
    if target.kind not in DATA_KINDS:
        raise ValueError(f"Unknown data kind {target.kind!r}: one of {', '.join(DATA_KINDS)}.")
    if not any(type(known) is type(target) for known in _targets):
        _targets.append(target)
    return target


def retention_targets(kind: str) -> list[RetentionTarget]:
    """The registered tables of a data kind, in registration order."""
    global _discovered
    if not _discovered:
        autodiscover_modules("retention")  # each app's retention module registers its tables
        _discovered = True
    return [target for target in _targets if target.kind == kind]


def rows_delete(*, model: type[models.Model], ids: list[int]) -> int:
    """Deletes ``model``'s rows with these ids and applies each foreign key to them as its
    ``on_delete`` says: NULLs set, dependents deleted (recursively), set-based, a statement per
    relation. PROTECT and the like raise: a target's ``expired`` must leave such rows out.

    Run it inside a transaction: the database checks the foreign keys at commit."""
    if not ids:
        return 0
    for relation in get_candidate_relations_to_delete(model._meta):
        field = relation.field
        on_delete = field.remote_field.on_delete
        # __any_of (marketing.bulk_sql): one array parameter instead of thousands of placeholders.
        dependents = relation.related_model._base_manager.filter(**{f"{field.attname}__any_of": ids})
        if on_delete is models.DO_NOTHING:
            continue
        if on_delete is models.SET_NULL:
            dependents.update(**{field.name: None})
        elif on_delete is models.CASCADE:
            rows_delete(model=relation.related_model, ids=list(dependents.values_list("pk", flat=True)))
        else:
            raise ValueError(
                f"{relation.related_model._meta.label}.{field.name} refers to {model._meta.label} with "
                f"{on_delete.__name__}: retention does not delete such rows."
            )
    # _raw_delete: one DELETE, no rows loaded, no signals (the dependents are handled above).
    return model._base_manager.filter(pk__any_of=ids)._raw_delete(model._base_manager.db)


# The ground floor's own tables.
class ExpiredEvents(RetentionTarget):
    kind, label, model = "events", "events", Event

    def expired(self, *, org, before):
        # Received before the cutoff too: a backfilled import of old events is not purged before
        # its dispatch batch has handed it to workflows and scoring.
        return Event.objects.filter(org=org, occurred_at__lt=before, received_at__lt=before)


class ExpiredImports(RetentionTarget):
    kind, label, model = "imports", "imports", ImportJob

    def expired(self, *, org, before):
        finished = Q(finished_at__lt=before) | Q(finished_at__isnull=True, created_at__lt=before)
        return ImportJob.objects.filter(finished, org=org, status__in=[ImportJob.Status.DONE, ImportJob.Status.FAILED])

    def purge(self, *, ids):
        files = [name for name in ImportJob._base_manager.filter(pk__any_of=ids).values_list("file", flat=True) if name]
        deleted = rows_delete(model=self.model, ids=ids)
        # Files go once the rows are gone for good: a rolled-back batch keeps its files.
        transaction.on_commit(lambda: _files_delete(files))
        return deleted


def _files_delete(names: list[str]) -> None:
    for name in names:
        default_storage.delete(name)


class ExpiredDispatchBatches(RetentionTarget):
    kind, label, model = "logs", "dispatch batches", DispatchBatch

    def expired(self, *, org, before):
        return DispatchBatch.objects.filter(org=org, status=DispatchBatch.Status.DONE, created_at__lt=before)


for _target in (ExpiredEvents(), ExpiredImports(), ExpiredDispatchBatches()):
    retention_target_register(_target)
