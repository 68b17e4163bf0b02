"""Operational metrics at ``GET /metrics``, in Prometheus's text format (docs/metrics.md).

Two kinds, kept apart on purpose:

- **Gauges** (backlogs, the oldest due ages, queue lengths) are computed when Prometheus scrapes:
  each app registers a gauge source (an indexed SQL query, a Redis ``LLEN``) in its
  ``AppConfig.ready``. They describe the state of the rows, so they are right whichever process
  did the work.
- **Counters** (events stored, step runs, sends) are Redis hashes that the services add to with
  ``HINCRBY`` once their transaction has committed, one field per label set. Every web process
  and worker adds to the same numbers and they outlive restarts. Counters kept in each process
  would show only the one process that answers the scrape, and counts of rows would go down
  when retention deletes rows.

Without Redis (the embedded mode, where one process runs the web app, the engine and the
sender) the counters live in that process's memory and start at zero when it starts.

The endpoint wants ``Authorization: Bearer <METRICS_TOKEN>``. While the setting is empty it
answers 404, as if it were not there.
"""

import hashlib
import hmac
import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Min
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from redis.exceptions import RedisError

from marketing.database_roles import system_alias
from marketing.models import DispatchBatch, Organization

logger = logging.getLogger(__name__)

KEY_PREFIX = "metrics:counter:"
# A counter write waits at most this long for Redis: a stalled Redis must not stall a worker.
REDIS_TIMEOUT_S = 1.0
# kombu's Redis transport keeps messages sent with a priority in lists beside the queue's own.
CELERY_PRIORITY_SUFFIXES = ("", *(f"\x06\x16{step}" for step in (3, 6, 9)))

GaugeSource = Callable[..., Iterable[Metric]]


@dataclass(frozen=True)
class SharedCounter:
    """A counter declared by name; exported as ``<name>_total`` with its label names."""

    name: str
    documentation: str
    labels: tuple[str, ...] = ()

    def field(self, labels: Mapping[str, object]) -> str:
        """The hash field of one label set: its values as a JSON list, in the declared order."""
        unknown = set(labels) - set(self.labels)
        if unknown:
            raise ValueError(f"counter {self.name} has no label(s) {sorted(unknown)}")
        return json.dumps([str(labels.get(label, "")) for label in self.labels])


_counters: dict[str, SharedCounter] = {}
_gauge_sources: list[GaugeSource] = []
_local_lock = threading.Lock()
_local_counts: dict[str, Counter] = {}
_client = None


def counter_declare(name: str, documentation: str, labels: Iterable[str] = ()) -> SharedCounter:
    """Declares a shared counter (once per name; its app's ``metrics`` module does it on import)."""
    counter = SharedCounter(name=name, documentation=documentation, labels=tuple(labels))
    _counters[name] = counter
    return counter


def counter_incr(name: str, amount: int = 1, **labels: object) -> None:
    """Adds ``amount`` to counter ``name`` for ``labels`` once the current transaction commits
    (at once outside a transaction; never when it rolls back: that work did not happen)."""
    if amount:
        _counts_add(_counters[name], {_counters[name].field(labels): amount})


def counter_tally(name: str, label_sets: Iterable[Mapping[str, object]]) -> None:
    """Adds one to counter ``name`` per item of ``label_sets``, counted here first: a batch costs
    one ``HINCRBY`` per distinct label set, all in one round trip to Redis, after commit."""
    counter = _counters[name]
    amounts = Counter(counter.field(labels) for labels in label_sets)
    if amounts:
        _counts_add(counter, amounts)


def _counts_add(counter: SharedCounter, amounts: Mapping[str, int]) -> None:
    transaction.on_commit(lambda: _counts_write(counter.name, dict(amounts)))


def _redis():
    global _client
    if _client is None:
        import redis

        _client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
        )
    return _client


def _counts_write(name: str, amounts: dict[str, int]) -> None:
    if not settings.REDIS_URL:
        with _local_lock:
            _local_counts.setdefault(name, Counter()).update(amounts)
        return
    try:
        pipe = _redis().pipeline(transaction=False)
        for field, amount in amounts.items():
            pipe.hincrby(KEY_PREFIX + name, field, amount)
        pipe.execute()
    except (RedisError, OSError) as exc:  # a lost count is better than a failed send or batch
        logger.warning("metrics counter not written name=%s error=%r", name, exc)


def counters_read() -> dict[str, dict[tuple[str, ...], int]]:
    """Every declared counter's values, by label values (one round trip to Redis)."""
    counters = list(_counters.values())
    if not settings.REDIS_URL:
        with _local_lock:
            raw = [dict(_local_counts.get(c.name, {})) for c in counters]
    else:
        pipe = _redis().pipeline(transaction=False)
        for counter in counters:
            pipe.hgetall(KEY_PREFIX + counter.name)
        raw = pipe.execute()
    values = {}
    for counter, fields in zip(counters, raw, strict=True):
        decoded = ((tuple(json.loads(field)), int(amount)) for field, amount in fields.items())
        # A label set from before the counter's labels changed is left out, not mislabelled.
        values[counter.name] = {labels: amount for labels, amount in decoded if len(labels) == len(counter.labels)}
    return values


def gauges_register(source: GaugeSource) -> None:
    """Adds a gauge source: a callable taking ``now=`` that yields metric families at scrape time.
    Apps register theirs in ``AppConfig.ready``."""
    if source not in _gauge_sources:
        _gauge_sources.append(source)


def age_seconds(now: datetime, oldest: datetime | None) -> float:
    """How long ago ``oldest`` was (0 when there is nothing waiting, or it is not due yet)."""
    return max(0.0, (now - oldest).total_seconds()) if oldest else 0.0


# --- marketing's own gauges ----------------------------------------------------------------------

EVENTS_INGESTED = "events_ingested"
counter_declare(EVENTS_INGESTED, "Events stored (new ones; duplicates by message id are not counted).", ["source"])


def dispatch_backlog(*, org: Organization | None = None) -> dict[str, tuple[int, datetime | None]]:
    """Dispatch batches not done yet: status (pending, running) → (batches, oldest created_at).
    All orgs' when ``org`` is None (operators; superusers), read through the system alias (row-level
    security shows the app role one org at most), else the org's."""
    batches = DispatchBatch.objects.with_scopes_disabled()
    batches = batches.using(system_alias()) if org is None else batches.filter(org=org)
    rows = (
        batches.filter(status__in=[DispatchBatch.Status.PENDING, DispatchBatch.Status.RUNNING])
        .values("status")
        .annotate(n=Count("id"), oldest=Min("created_at"))
        .order_by()
    )
    backlog = {status: (0, None) for status in (DispatchBatch.Status.PENDING, DispatchBatch.Status.RUNNING)}
    backlog.update({row["status"]: (row["n"], row["oldest"]) for row in rows})
    return backlog


def celery_queue_lengths() -> dict[str, int]:
    """Messages waiting in each Celery queue the app uses (empty in the embedded mode: tasks
    run inline there, nothing queues)."""
    if not settings.REDIS_URL:
        return {}
    from marketing.celery import app

    names = sorted({app.conf.task_default_queue, *(queue.name for queue in app.conf.task_queues or ())})
    pipe = _redis().pipeline(transaction=False)
    for name in names:
        for suffix in CELERY_PRIORITY_SUFFIXES:
            pipe.llen(name + suffix)
    lengths = iter(pipe.execute())
    return {name: sum(next(lengths) for _ in CELERY_PRIORITY_SUFFIXES) for name in names}


def marketing_gauges(*, now: datetime) -> Iterator[Metric]:
    """The dispatch backlog and its oldest batch's age, and the Celery queues' lengths."""
    backlog = dispatch_backlog()
    batches = GaugeMetricFamily("dispatch_batches", "Dispatch batches not done yet, by status.", labels=["status"])
    for status, (count, _oldest) in backlog.items():
        batches.add_metric([status], count)
    yield batches
    yield GaugeMetricFamily(
        "dispatch_oldest_age_seconds",
        "Age of the oldest dispatch batch not done yet (0 when there is none).",
        value=age_seconds(now, min((oldest for _n, oldest in backlog.values() if oldest), default=None)),
    )
    lengths = celery_queue_lengths()
    if lengths:
        queues = GaugeMetricFamily("celery_queue_length", "Tasks waiting in a Celery queue.", labels=["queue"])
        for name, length in lengths.items():
            queues.add_metric([name], length)
        yield queues


# --- the endpoint --------------------------------------------------------------------------------


class _Collector:
    """Builds every family at scrape time: the shared counters, then each gauge source."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        try:
            values = counters_read()
        except (RedisError, OSError) as exc:
            logger.warning("metrics counters not read error=%r", exc)
            values = {}
        for counter in _counters.values():
            if counter.name not in values:
                continue
            family = CounterMetricFamily(counter.name, counter.documentation, labels=counter.labels)
            for label_values, amount in sorted(values[counter.name].items()):
                family.add_metric(list(label_values), amount)
            yield family
        for source in _gauge_sources:
            try:
                families = list(source(now=now))
            except Exception:  # one broken source must not hide the others; absent() alerts catch it
                logger.exception("metrics gauge source failed source=%s", getattr(source, "__qualname__", source))
                continue
            yield from families


registry = CollectorRegistry(auto_describe=False)
registry.register(_Collector())


def _token_matches(given: str) -> bool:
    # Digests first, so the comparison takes the same time whatever the given token's length.
    expected = hashlib.sha256(settings.METRICS_TOKEN.encode()).digest()
    return hmac.compare_digest(hashlib.sha256(given.encode()).digest(), expected)


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """``GET /metrics``: every metric, for ``Authorization: Bearer <METRICS_TOKEN>``; 401 without
    it or with another token; 404 while ``METRICS_TOKEN`` is empty (metrics off)."""
    if not settings.METRICS_TOKEN:
        raise Http404("Metrics are off: set METRICS_TOKEN.")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not _token_matches(given.strip()):
        response = HttpResponse(
            "Authorization: send the header 'Authorization: Bearer <METRICS_TOKEN>'.\n",
            status=401,
            content_type="text/plain; charset=utf-8",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    # The format the scraper asks for (OpenMetrics for Prometheus), else the classic text format.
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encode(registry), content_type=content_type)
