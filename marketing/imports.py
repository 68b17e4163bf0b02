"""CSV imports of contacts and of historical events, resumable and set-based.

An ``ImportJob`` holds the uploaded file, the mapping of CSV columns to fields and its progress.
``import_job_run`` streams the file in batches of ``BATCH_SIZE`` rows. Each batch is one
transaction that writes the batch's contacts (or events), its ``ImportRowError`` rows and the
job's counters together, so a crash loses nothing and a rerun (which skips ``rows_done`` rows)
redoes nothing. A bad row is reported with its 1-based row number, the CSV column and the reason,
and the rest of the batch is written.

Contacts are matched on the normalised email (else on ``external_id``): existing ones get the
mapped, non-empty values, new ones are created in bulk. Events go through the API's own
``events_validate`` and ``events_ingest``, so validation, identity resolution and storage are
the same as for tracking calls; without a ``message_id`` column each row gets one derived from
the file's SHA-256 and its row number, so importing the same file twice stores nothing twice.
"""

import csv
import hashlib
import io
import itertools
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import reset_queries, transaction
from django.db.models import F, Q
from django.utils import timezone

from marketing.csv_export import csv_stream, csv_write
from marketing.database_roles import org_of
from marketing.email_addresses import normalise_email
from marketing.erased_identities import EMAIL, NOT_IMPORTED, PHONE, erased_values, refusal
from marketing.identity import Trust
from marketing.ingestion import events_ingest, events_validate
from marketing.models import (
    Company,
    Contact,
    ContactList,
    ImportJob,
    ImportRowError,
    LeadStatus,
    LifecycleStage,
    ListMembership,
    Organization,
    PropertyDefinition,
    Tag,
    User,
)
from marketing.phone_numbers import normalise_phone
from marketing.properties import ISO_DATETIME, KEY, properties_check
from marketing.services import tags_get_or_create
from marketing.tenancy import org_context

logger = logging.getLogger(__name__)

ERASED_REFUSAL = refusal(public=False)

BATCH_SIZE = 1000
PROPERTY_PREFIX = "properties."
# Plain Contact columns a mapping may target; each is checked by the model field's own validators.
CONTACT_FIELDS = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "job_title",
    "country",
    "time_zone",
    "locale",
    "lifecycle_stage",
    "lead_status",
    "external_id",
)
CONTACT_TARGETS = frozenset({*CONTACT_FIELDS, "company", "company.domain", "tags", "lists"})
EVENT_TARGETS = frozenset({"type", "email", "external_id", "anonymous_id", "contact_id", "occurred_at", "message_id"})
EVENT_IDENTIFIERS = ("email", "external_id", "anonymous_id", "contact_id")
UNFINISHED = (ImportJob.Status.PENDING, ImportJob.Status.RUNNING, ImportJob.Status.FAILED)
# Low-cardinality fields whose checks are remembered per value (the time zone check scans tzdata).
CACHED_FIELDS = frozenset({"country", "time_zone", "locale", "lifecycle_stage", "lead_status"})
MAX_CACHED_VALUES = 10_000
SEPARATORS = re.compile(r"[,;]")
INTEGER = re.compile(r"[+-]?\d+")
DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0"})
CHOICES = {
    "lifecycle_stage": LifecycleStage,
    "lead_status": LeadStatus,
}


# --- creating a job -------------------------------------------------------------------------


def import_job_create(
    *,
    org: Organization,
    kind: str,
    path_or_file: str | os.PathLike | IO[bytes],
    mapping: dict[str, str],
    dry_run: bool = False,
    dispatch: bool = False,
    by: User | None = None,
) -> ImportJob:
    """Checks the file and the mapping, stores the file and returns a pending job.

    ``path_or_file`` is a path or a binary file (an upload). The file is read once, streaming,
    for its SHA-256 and its number of data rows. If an unfinished job (pending, running or
    failed) of this org already imports the same file the same way, that job is returned
    instead, and running it resumes where it stopped. Raises ``ValidationError`` keyed
    ``kind``, ``file``, ``mapping`` or ``dispatch``; ``OSError`` when a path cannot be read.
    """
    if dispatch and kind != ImportJob.Kind.EVENTS:
        raise ValidationError({"dispatch": "Only event imports hand their rows to workflows and scoring."})
    with _binary(path_or_file) as (source, name):
        sha256, rows = import_file_check(kind=kind, file=source, mapping=mapping)
        for job in ImportJob.objects.filter(
            org=org, kind=kind, file_sha256=sha256, dry_run=dry_run, dispatch=dispatch, status__in=UNFINISHED
        ).order_by("-created_at"):
            if job.mapping == mapping:
                return job
        job = ImportJob(
            org=org,
            kind=kind,
            file_sha256=sha256,
            mapping=mapping,
            dry_run=dry_run,
            dispatch=dispatch,
            rows_total=rows,
            created_by=by,
        )
        source.seek(0)
        job.file.save(name, File(source, name=name), save=False)
    job.save()
    logger.info("import created job=%s org=%s kind=%s rows=%d dry_run=%s", job.pk, org.slug, kind, rows, dry_run)
    return job


def import_file_check(*, kind: str, file: IO[bytes], mapping: dict[str, str]) -> tuple[str, int]:
    """Reads a CSV file once and returns its SHA-256 and number of data rows.

    Raises ``ValidationError`` with per-field messages: ``kind`` (unknown kind), ``file`` (not
    UTF-8, not CSV, no header) or ``mapping`` (a column missing from the header, an unknown
    target field, a required field left unmapped). The file is left at its end.
    """
    if kind not in ImportJob.Kind.values:
        raise ValidationError({"kind": f"Choose one of: {', '.join(ImportJob.Kind.values)}."})
    hashing = _HashingReader(file)
    try:
        with _csv_rows(io.BufferedReader(hashing, buffer_size=1 << 16)) as reader:
            header = reader.fieldnames
            if not header:
                raise ValidationError({"file": "The file is empty: the first row must name the columns."})
            problems = mapping_errors(kind=kind, header=list(header), mapping=mapping)
            if problems:
                raise ValidationError({"mapping": problems})
            rows = sum(1 for _ in reader)
    except UnicodeDecodeError as exc:
        raise ValidationError({"file": "The file is not UTF-8 text; save it as “CSV UTF-8”."}) from exc
    except csv.Error as exc:
        raise ValidationError({"file": f"The file is not readable as CSV: {exc}."}) from exc
    return hashing.hexdigest(), rows


def mapping_errors(*, kind: str, header: list[str], mapping: Any) -> list[str]:
    """Why ``mapping`` (CSV column → field) does not fit a file with ``header``; empty when it does."""
    if not isinstance(mapping, dict) or not mapping:
        return ['Give a JSON object of CSV column → field, e.g. {"E-mail": "email", "Plan": "properties.plan"}.']
    targets = CONTACT_TARGETS if kind == ImportJob.Kind.CONTACTS else EVENT_TARGETS
    errors = []
    mapped_from: dict[str, str] = {}
    for column, target in mapping.items():
        if column not in header:
            errors.append(f"Column '{column}' is not in the file's header ({_names(header)}).")
        elif header.count(column) > 1:
            errors.append(f"Column '{column}' appears more than once in the file's header.")
        if not isinstance(target, str):
            errors.append(f"Column '{column}': the target must be a field name, e.g. \"email\".")
            continue
        if target.startswith(PROPERTY_PREFIX):
            if not KEY.match(target.removeprefix(PROPERTY_PREFIX)):
                errors.append(
                    f"Column '{column}': '{target}' is not a property key (letters, digits, _ and -, up to 100)."
                )
        elif target not in targets:
            errors.append(
                f"Column '{column}': unknown target field '{target}' (use one of {_names(sorted(targets), limit=20)} "
                "or properties.<key>)."
            )
        if target in mapped_from:
            errors.append(f"Columns '{mapped_from[target]}' and '{column}' both map to '{target}'.")
        mapped_from[target] = column
    if kind == ImportJob.Kind.CONTACTS:
        if not {"email", "external_id"} & set(mapped_from):
            errors.append("Map a column to email (or to external_id): it is how contacts are matched.")
    else:
        errors += [
            f"Map a column to {name}: it is required." for name in ("type", "occurred_at") if name not in mapped_from
        ]
        if not set(EVENT_IDENTIFIERS) & set(mapped_from):
            errors.append(f"Map a column to one of {', '.join(EVENT_IDENTIFIERS)}: it names each event's contact.")
    return errors


def _names(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + ", …" if len(names) > limit else shown


class _HashingReader(io.RawIOBase):
    """A raw binary stream that hashes what passes through it."""

    def __init__(self, source: IO[bytes]):
        self.source = source
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.source.read(len(buffer))
        buffer[: len(data)] = data
        self.sha256.update(data)
        return len(data)

    def hexdigest(self) -> str:
        return self.sha256.hexdigest()


@contextmanager
def _binary(path_or_file) -> Iterator[tuple[IO[bytes], str]]:
    """The file opened for binary reading, and the name to store it under."""
    if isinstance(path_or_file, str | os.PathLike):
        with open(path_or_file, "rb") as source:
            yield source, os.path.basename(path_or_file)
    else:
        path_or_file.seek(0)
        yield path_or_file, os.path.basename(getattr(path_or_file, "name", "") or "") or "import.csv"


@contextmanager
def _csv_rows(binary: IO[bytes]) -> Iterator[csv.DictReader]:
    """A DictReader over a binary file: UTF-8 (with or without a BOM), delimiter from the header.

    Excel writes ``;`` where the decimal separator is a comma, so the delimiter is sniffed from
    the header line among ``,``, ``;`` and tab. The caller's file is left open.
    """
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
    try:
        first = text.readline()
        try:
            dialect = csv.Sniffer().sniff(first, delimiters=",;\t")
            delimiter = dialect.delimiter
        except csv.Error:
            delimiter = ","
        yield csv.DictReader(itertools.chain([first], text), delimiter=delimiter)
    finally:
        text.detach()


# --- running a job ---------------------------------------------------------------------------


@dataclass
class _Batch:
    """What one batch did: rows created and updated, and (row, column, reason) per error."""

    created: int = 0
    updated: int = 0
    errors: list[tuple[int, str, str]] = field(default_factory=list)
    failed_rows: set[int] = field(default_factory=set)

    def error(self, row: int, column: str, reason: str) -> None:
        self.errors.append((row, column, reason))
        self.failed_rows.add(row)


@dataclass
class _Context:
    """What every batch of one run needs: the mapping both ways and remembered checks."""

    job: ImportJob
    column_of: dict[str, str]  # target → CSV column
    checked: dict[tuple[str, str], Any] = field(default_factory=dict)

    @property
    def org(self) -> Organization:
        return self.job.org

    def column(self, target: str) -> str:
        """The CSV column mapped to ``target`` (a field path), else the path itself."""
        return self.column_of.get(target, target)

    def property_keys(self) -> list[str]:
        return [t.removeprefix(PROPERTY_PREFIX) for t in self.column_of if t.startswith(PROPERTY_PREFIX)]


def import_job_run(*, job_id: int, on_batch: Callable[[ImportJob], None] | None = None) -> ImportJob:
    """Runs a job from its ``rows_done`` to the end of the file; returns it, refreshed.

    Each batch commits on its own, with its row errors and counters, so calling this again after
    a crash resumes exactly after the last committed batch. Two runs of one job never both write
    a batch: each locks the job row and checks ``rows_done`` first, and the one that finds it
    moved stops. A done job is returned as it is. On an unexpected error the job is marked
    failed, with the error, and the exception is raised again. ``on_batch(job)`` is called after
    each committed batch (the command's progress bar).
    """
    # The task names only the job: its org is looked up through the system alias, then the job
    # is read and run as the app role in that org's context (docs/tenancy.md, "Workers").
    org = org_of(ImportJob, job_id)
    if org is None:
        raise ImportJob.DoesNotExist(f"No import job {job_id}.")
    with org_context(org):
        job = ImportJob.objects.select_related("org").get(pk=job_id)
        if job.status == ImportJob.Status.DONE:
            return job
        ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.RUNNING, error="")
        job.status = ImportJob.Status.RUNNING
        started = time.monotonic()
        try:
            finished = _rows_import(job, on_batch)
        except Exception as exc:
            logger.exception("import failed job=%s org=%s row=%d", job.pk, job.org.slug, job.rows_done + 1)
            ImportJob.objects.filter(pk=job.pk).update(
                status=ImportJob.Status.FAILED,
                error=f"At row {job.rows_done + 1}: {type(exc).__name__}: {exc}"[:5000],
            )
            raise
        if finished:
            ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.DONE, finished_at=timezone.now())
        job.refresh_from_db()
    logger.info(
        "import %s job=%s org=%s kind=%s rows=%d created=%d updated=%d failed=%d seconds=%.1f",
        job.status,
        job.pk,
        job.org.slug,
        job.kind,
        job.rows_done,
        job.rows_created,
        job.rows_updated,
        job.rows_failed,
        time.monotonic() - started,
    )
    return job


def _rows_import(job: ImportJob, on_batch: Callable[[ImportJob], None] | None) -> bool:
    """Streams the file from ``rows_done``; False when another run of the job took over."""
    context = _Context(job=job, column_of={target: column for column, target in job.mapping.items()})
    with job.file.open("rb") as binary, _csv_rows(binary) as reader:
        rows = iter(reader)
        for _ in itertools.islice(rows, job.rows_done):  # resume: these were committed before
            pass
        while batch := list(itertools.islice(rows, BATCH_SIZE)):
            if not _batch_commit(context, batch):
                return False
            reset_queries()  # DEBUG keeps every query's SQL; a long import must not pile them up
            if on_batch is not None:
                on_batch(job)
    return True


def _batch_commit(context: _Context, rows: list[dict[str, str | None]]) -> bool:
    """One transaction: the batch's writes, its row errors and the job's counters."""
    job = context.job
    first_row = job.rows_done + 1
    with transaction.atomic():
        locked = ImportJob.objects.select_for_update().get(pk=job.pk)
        if locked.rows_done != job.rows_done:
            logger.warning("import taken over job=%s at_row=%d", job.pk, locked.rows_done)
            return False
        with transaction.atomic():
            importer = _contacts_batch if job.kind == ImportJob.Kind.CONTACTS else _events_batch
            outcome = importer(context, rows, first_row)
            if job.dry_run:
                transaction.set_rollback(True)  # the savepoint only: errors and counters still commit
        ImportRowError.objects.bulk_create(
            [
                ImportRowError(job=job, row=row, column=column[:200], reason=reason)
                for row, column, reason in outcome.errors
            ]
        )
        counters = {
            "rows_done": len(rows),
            "rows_created": outcome.created,
            "rows_updated": outcome.updated,
            "rows_failed": len(outcome.failed_rows),
        }
        ImportJob.objects.filter(pk=job.pk).update(**{name: F(name) + value for name, value in counters.items()})
    for name, value in counters.items():
        setattr(job, name, getattr(job, name) + value)
    return True


# --- values ----------------------------------------------------------------------------------


def _value_convert(definition: PropertyDefinition | None, value: str) -> Any:
    """A CSV cell as the property's type wants it; raises ValueError saying why it does not fit.

    Without a definition the cell stays a string, for ``properties_check`` to type; one that reads
    as a date is written the way later batches (which will find its ``datetime`` definition) write it.
    """
    if definition is None:
        if ISO_DATETIME.match(value):
            try:
                return _value_convert(PropertyDefinition(type=PropertyDefinition.Type.DATETIME), value)
            except ValueError:
                pass
        return value
    kind = definition.type
    if kind == PropertyDefinition.Type.NUMBER:
        if INTEGER.fullmatch(value):
            return int(value)
        if DECIMAL.fullmatch(value):
            return float(value)
        raise ValueError(f"{_quoted(value)} is not a number")
    if kind == PropertyDefinition.Type.BOOLEAN:
        if value.lower() in TRUE_WORDS:
            return True
        if value.lower() in FALSE_WORDS:
            return False
        raise ValueError(f"{_quoted(value)} is not yes/no (use true/false, yes/no or 1/0)")
    if kind == PropertyDefinition.Type.DATETIME:
        return _datetime_parse(value).astimezone(UTC).isoformat().replace("+00:00", "Z")
    if kind == PropertyDefinition.Type.LIST:
        if value.startswith("["):
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError:
                parsed = None
            if not isinstance(parsed, list):
                raise ValueError("is not a JSON list")
            return parsed
        return [part.strip() for part in SEPARATORS.split(value) if part.strip()]
    return value  # string and enum (properties_check checks the enum's options)


def _quoted(value: str, limit: int = 60) -> str:
    """A cell quoted in an error message, cut short: a cell may be 128 KB long."""
    return f"“{value[:limit]}…”" if len(value) > limit else f"“{value}”"


def _datetime_parse(value: str) -> datetime:
    """ISO-8601, or "YYYY-MM-DD HH:MM:SS"; a time without an offset is UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{_quoted(value)} is not a date and time (use ISO-8601, e.g. 2026-11-29T10:00:00Z)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _definitions(context: _Context, subject: str) -> dict[str, PropertyDefinition]:
    keys = context.property_keys()
    if not keys:
        return {}
    return {d.key: d for d in PropertyDefinition.objects.filter(org=context.org, subject=subject, key__in=keys)}


# --- contacts --------------------------------------------------------------------------------


@dataclass
class _ContactRow:
    """One valid row of a contacts file, its values converted."""

    number: int
    email: str | None = None
    external_id: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    company_name: str | None = None
    company_domain: str | None = None
    tags: list[str] = field(default_factory=list)
    list_slugs: list[str] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass
class _ContactRecord:
    """One contact a batch writes: an existing one (``contact``) or a new one, with its rows' values."""

    contact: Contact | None
    email: str | None
    external_id: str | None
    fields: dict[str, str] = field(default_factory=dict)
    company_name: str | None = None
    company_domain: str | None = None
    company_id: int | None = None
    tags: set[str] = field(default_factory=set)
    list_ids: set[int] = field(default_factory=set)
    properties: dict[str, Any] = field(default_factory=dict)

    def absorb(self, row: _ContactRow, list_ids: dict[str, int]) -> None:
        """Takes a row's values; a later row of the same contact wins field by field."""
        self.email = row.email or self.email
        self.external_id = row.external_id or self.external_id
        self.fields.update(row.fields)
        if row.company_name or row.company_domain:
            self.company_name, self.company_domain = row.company_name, row.company_domain
        self.tags.update(row.tags)
        self.list_ids.update(list_ids[slug] for slug in row.list_slugs)
        self.properties.update(row.properties)


def _contacts_batch(context: _Context, rows: list[dict[str, str | None]], first_row: int) -> _Batch:
    """Validates a batch of contact rows and writes them: a few queries for the whole batch."""
    org = context.org
    outcome = _Batch()
    definitions = _definitions(context, PropertyDefinition.Subject.CONTACT)
    parsed = [_contact_row_parse(context, row, first_row + i, definitions, outcome) for i, row in enumerate(rows)]
    parsed = _erased_refused(context, [row for row in parsed if row is not None], outcome)

    slugs = {slug for row in parsed for slug in row.list_slugs}
    list_ids = dict(ContactList.objects.filter(org=org, slug__in=slugs).values_list("slug", "pk")) if slugs else {}
    problems = properties_check(
        org=org, subject=PropertyDefinition.Subject.CONTACT, items=[row.properties for row in parsed]
    )
    good = []
    for row, row_problems in zip(parsed, problems, strict=True):
        for slug in row.list_slugs:
            if slug not in list_ids:
                outcome.error(row.number, context.column("lists"), f"No list with the slug {_quoted(slug)}.")
        for path, reason in row_problems.items():
            outcome.error(row.number, context.column(path), reason)
        if row.number not in outcome.failed_rows:
            good.append(row)

    records = _contacts_match(context, good, list_ids, outcome)
    if records:
        _contacts_write(org, records)
    return outcome


def _erased_refused(context: _Context, rows: list[_ContactRow], outcome: _Batch) -> list[_ContactRow]:
    """The rows whose email and phone were not erased at the person's request; the others get
    their error. Two queries a batch at most (none without emails or phones)."""
    org = context.org
    emails = erased_values(org=org, kind=EMAIL, values=[row.email for row in rows])
    phones = erased_values(org=org, kind=PHONE, values=[row.fields.get("phone") for row in rows])
    kept = []
    for row in rows:
        if row.email in emails:
            outcome.error(row.number, context.column("email"), NOT_IMPORTED)
        elif row.fields.get("phone") in phones:
            outcome.error(row.number, context.column("phone"), NOT_IMPORTED)
        else:
            kept.append(row)
    return kept


def _contact_row_parse(
    context: _Context,
    row: dict[str, str | None],
    number: int,
    definitions: dict[str, PropertyDefinition],
    outcome: _Batch,
) -> _ContactRow | None:
    """A row's values, converted and checked; None (with its errors recorded) when any is bad."""
    parsed = _ContactRow(number=number)
    ok = True
    for column, target in context.job.mapping.items():
        value = (row.get(column) or "").strip()
        if not value:
            continue  # an empty cell changes nothing
        try:
            _contact_value_set(context, parsed, target, value, definitions)
        except ValidationError as exc:
            outcome.error(number, column, " ".join(exc.messages))
            ok = False
        except ValueError as exc:
            outcome.error(number, column, str(exc))
            ok = False
    if ok and not parsed.email and not parsed.external_id:
        reason = "required (a row without an email needs an external_id)"
        outcome.error(number, context.column("email"), reason)
        ok = False
    return parsed if ok else None


def _contact_value_set(
    context: _Context, parsed: _ContactRow, target: str, value: str, definitions: dict[str, PropertyDefinition]
) -> None:
    if target == "email":
        parsed.email = normalise_email(value)
        Contact._meta.get_field("email").run_validators(parsed.email)
    elif target == "phone":
        parsed.fields["phone"] = normalise_phone(value, default_country=context.org.default_country)
    elif target == "external_id":
        parsed.external_id = _field_clean(context, Contact, "external_id", value)
    elif target in CONTACT_FIELDS:
        parsed.fields[target] = _field_clean(context, Contact, target, value)
    elif target == "company":
        parsed.company_name = _field_clean(context, Company, "name", value)
    elif target == "company.domain":
        company = Company(domain=value)  # no org: clean() only normalises, it does not query
        company.clean()
        if company.domain:
            parsed.company_domain = _field_clean(context, Company, "domain", company.domain)
    elif target == "tags":
        parsed.tags = [_field_clean(context, Tag, "name", name) for name in _split(value)]
    elif target == "lists":
        parsed.list_slugs = _split(value)
    elif target.startswith(PROPERTY_PREFIX):
        key = target.removeprefix(PROPERTY_PREFIX)
        parsed.properties[key] = _value_convert(definitions.get(key), value)


def _field_clean(context: _Context, model, name: str, value: str) -> str:
    """The value as the model field's own validators accept it (max length, choices, country…)."""
    if model is Contact and name in CHOICES:
        value = _choice(CHOICES[name], value)
    elif model is Contact and name == "country":
        value = value.upper()
    cache_key = (name, value)
    if model is Contact and name in CACHED_FIELDS and cache_key in context.checked:
        problem = context.checked[cache_key]
        if problem:
            raise ValidationError(problem)
        return value
    problem = None
    try:
        model._meta.get_field(name).run_validators(value)
    except ValidationError as exc:
        problem = exc.messages
    if model is Contact and name in CACHED_FIELDS:
        if len(context.checked) >= MAX_CACHED_VALUES:
            context.checked.clear()
        context.checked[cache_key] = problem
    if problem:
        raise ValidationError(problem)
    return value


def _choice(choices, value: str) -> str:
    """A choice by its value or its label, in any case; ValidationError listing them otherwise."""
    wanted = value.lower()
    for choice_value, label in choices.choices:
        if wanted in (choice_value, label.lower()):
            return choice_value
    raise ValidationError(f"{_quoted(value)} is not one of {', '.join(choices.values)}.")


def _split(value: str) -> list[str]:
    return [part.strip() for part in SEPARATORS.split(value) if part.strip()]


def _contacts_match(
    context: _Context, rows: list[_ContactRow], list_ids: dict[str, int], outcome: _Batch
) -> list[_ContactRecord]:
    """Groups the rows by contact: existing ones (locked, found in one query) or new ones.

    A row is matched by its email, else by its external_id; rows of the same contact in the
    batch fold into one record, later values winning.
    """
    emails = {row.email for row in rows if row.email}
    external_ids = {row.external_id for row in rows if row.external_id}
    existing = list(
        Contact.objects.select_for_update()
        .filter(org=context.org)
        .filter(Q(email__in=emails) | Q(external_id__in=external_ids))
        .order_by("pk")
    )
    stored_by = {
        "email": {c.email: c for c in existing if c.email},
        "external_id": {c.external_id: c for c in existing if c.external_id},
    }
    batch_by: dict[str, dict[str, _ContactRecord]] = {"email": {}, "external_id": {}}
    by_pk: dict[int, _ContactRecord] = {}
    records: list[_ContactRecord] = []

    def record_for(name: str, value: str | None) -> _ContactRecord | None:
        if not value:
            return None
        if value in batch_by[name]:
            return batch_by[name][value]
        contact = stored_by[name].get(value)
        if contact is None:
            return None
        if contact.pk not in by_pk:
            by_pk[contact.pk] = _ContactRecord(contact=contact, email=contact.email, external_id=contact.external_id)
            records.append(by_pk[contact.pk])
        return by_pk[contact.pk]

    for row in rows:
        by_email, by_external_id = record_for("email", row.email), record_for("external_id", row.external_id)
        if by_email and by_external_id and by_email is not by_external_id:
            outcome.error(
                row.number, context.column("external_id"), "belongs to another contact than this row's email."
            )
            continue
        record = by_email or by_external_id
        if record is None:
            record = _ContactRecord(contact=None, email=row.email, external_id=row.external_id)
            records.append(record)
            outcome.created += 1
        elif row.email and record.email and record.email != row.email:
            outcome.error(
                row.number, context.column("external_id"), f"belongs to the contact with the email {record.email}."
            )
            continue
        else:
            outcome.updated += 1
        record.absorb(row, list_ids)
        for name in ("email", "external_id"):
            if getattr(row, name):
                batch_by[name][getattr(row, name)] = record
    return records


def _contacts_write(org: Organization, records: list[_ContactRecord]) -> None:
    """Companies, contacts, tags and lists of a batch: bulk statements, none per row."""
    _companies_resolve(org, records)
    now = timezone.now()
    # Sorted, as identity resolution does: concurrent writers take the unique-index locks in one order.
    new = sorted((r for r in records if r.contact is None), key=lambda r: (r.email or "", r.external_id or ""))
    existing = [r for r in records if r.contact is not None]
    created = Contact.objects.bulk_create(
        [
            Contact(
                org=org,
                email=r.email,
                external_id=r.external_id,
                company_id=r.company_id,
                properties=r.properties,
                created_at=now,
                **r.fields,
            )
            for r in new
        ]
    )
    for record, contact in zip(new, created, strict=True):
        record.contact = contact

    changed: set[str] = set()
    updates = []
    for record in existing:
        contact = record.contact
        values = dict(record.fields, email=record.email, external_id=record.external_id)
        if record.company_id:
            values["company_id"] = record.company_id
        if record.properties:
            values["properties"] = {**contact.properties, **record.properties}
        for name, value in values.items():
            if getattr(contact, name) != value:
                setattr(contact, name, value)
                changed.add(name)
        contact.updated_at = now
        updates.append(contact)
    if updates:
        names = sorted("company" if name == "company_id" else name for name in changed)
        Contact.objects.bulk_update(updates, fields=[*names, "updated_at"])

    tag_names = {name for r in records for name in r.tags}
    if tag_names:
        tag_ids = {tag.name: tag.pk for tag in tags_get_or_create(org=org, names=tag_names)}
        through = Contact.tags.through
        through.objects.bulk_create(
            [through(contact_id=r.contact.pk, tag_id=tag_ids[name]) for r in records for name in r.tags],
            ignore_conflicts=True,
        )
    memberships = [
        ListMembership(contact_id=r.contact.pk, contact_list_id=list_id, added_at=now)
        for r in records
        for list_id in r.list_ids
    ]
    if memberships:
        ListMembership.objects.bulk_create(memberships, ignore_conflicts=True)


def _companies_resolve(org: Organization, records: list[_ContactRecord]) -> None:
    """Sets each record's company: found by domain, else by name; missing ones created in bulk."""
    wanted = [r for r in records if r.company_name or r.company_domain]
    if not wanted:
        return
    domains = {r.company_domain: r.company_name or r.company_domain for r in wanted if r.company_domain}
    names = {r.company_name for r in wanted if r.company_name and not r.company_domain}

    def by_domain() -> dict[str, int]:
        return dict(Company.objects.filter(org=org, domain__in=domains).values_list("domain", "pk"))

    def by_name() -> dict[str, int]:
        found: dict[str, int] = {}
        for name, pk in Company.objects.filter(org=org, name__in=names).order_by("pk").values_list("name", "pk"):
            found.setdefault(name, pk)  # several companies may share a name: the oldest one
        return found

    found_domains = by_domain() if domains else {}
    missing = [Company(org=org, name=name, domain=d) for d, name in domains.items() if d not in found_domains]
    if missing:
        # ignore_conflicts: another import may create the same domain meanwhile; its row is used.
        Company.objects.bulk_create(missing, ignore_conflicts=True)
        found_domains = by_domain()
    found_names = by_name() if names else {}
    missing = [Company(org=org, name=name) for name in sorted(names - set(found_names))]
    if missing:
        Company.objects.bulk_create(missing)
        found_names = by_name()
    for record in wanted:
        if record.company_domain:
            record.company_id = found_domains[record.company_domain]
        else:
            record.company_id = found_names[record.company_name]


# --- events ----------------------------------------------------------------------------------


def _events_batch(context: _Context, rows: list[dict[str, str | None]], first_row: int) -> _Batch:
    """Builds the API's event items from a batch of rows and ingests them as the API does."""
    outcome = _Batch()
    definitions = _definitions(context, PropertyDefinition.Subject.EVENT)
    items, numbers = [], []
    for i, row in enumerate(rows):
        item = _event_row_parse(context, row, first_row + i, definitions, outcome)
        if item is not None:
            items.append(item)
            numbers.append(first_row + i)
    if not items:
        return outcome
    parsed, errors = events_validate(items)
    job = context.job
    results = events_ingest(
        org=context.org,
        items=parsed,
        errors=errors,
        source="import",
        dispatch=job.dispatch and not job.dry_run,
        trust=Trust.SERVER,  # an upload in the console: identities merge as with a server key
    )
    for result, number in zip(results, numbers, strict=True):
        if result.status == "error":
            for path, reason in result.errors.items():
                # An erased email: the import's own words for it ("not imported").
                outcome.error(number, context.column(path), NOT_IMPORTED if reason == ERASED_REFUSAL else reason)
        elif result.status == "stored":
            outcome.created += 1
    return outcome


def _event_row_parse(
    context: _Context,
    row: dict[str, str | None],
    number: int,
    definitions: dict[str, PropertyDefinition],
    outcome: _Batch,
) -> dict[str, Any] | None:
    """The row as an events API item; None (with its errors recorded) when a cell cannot convert."""
    item: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    ok = True
    for column, target in context.job.mapping.items():
        value = (row.get(column) or "").strip()
        if not value:
            continue
        try:
            if target == "contact_id":
                if not INTEGER.fullmatch(value):
                    raise ValueError(f"{_quoted(value)} is not a contact id (a whole number)")
                item[target] = int(value)
            elif target == "occurred_at":
                item[target] = _datetime_parse(value)
            elif target.startswith(PROPERTY_PREFIX):
                key = target.removeprefix(PROPERTY_PREFIX)
                properties[key] = _value_convert(definitions.get(key), value)
            else:
                item[target] = value
        except ValueError as exc:
            outcome.error(number, column, str(exc))
            ok = False
    if ok and "occurred_at" not in item:
        outcome.error(number, context.column("occurred_at"), "required for an imported (historical) event")
        ok = False
    if not ok:
        return None
    item["properties"] = properties
    # The same file imported again yields the same ids, which the events table stores once.
    item.setdefault("message_id", f"import-{context.job.file_sha256[:32]}-{number}")
    return item


# --- the report ------------------------------------------------------------------------------


ERROR_REPORT_COLUMNS = ("row", "column", "reason")


def _row_errors(job: ImportJob) -> Iterator[tuple[int, str, str]]:
    errors = ImportRowError.objects.filter(job=job).order_by("row", "id").values_list(*ERROR_REPORT_COLUMNS)
    return errors.iterator(chunk_size=2000)


def import_errors_csv(job: ImportJob, out: IO[str]) -> int:
    """Writes the job's row errors to ``out`` as CSV (``row,column,reason``, formulas written as
    text: the column names and values come from the uploaded file); returns how many."""
    return csv_write(out, header=ERROR_REPORT_COLUMNS, rows=_row_errors(job))


def import_errors_stream(job: ImportJob) -> Iterator[str]:
    """The job's row errors as ``import_errors_csv`` writes them, in parts for a streaming response.

    A streaming response is read after ``CurrentOrgMiddleware`` has left the request's org, so
    the rows are read under the job's ``org_context`` here, inside the generator (row-level
    security shows no row without it)."""
    with org_context(job.org):
        yield from csv_stream(header=ERROR_REPORT_COLUMNS, rows=_row_errors(job))
