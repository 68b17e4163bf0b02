"""Benchmark scenario ``scoring`` for ``python manage.py bench`` (registered with ``@scenario``).

Three figures of issue 8, on PostgreSQL, with the default "Lead score" model of ``seed_demo``
(18 behaviour rules, 4 fit rules, thresholds 100/300/500):

1. events scored per second through the dispatch path (``dispatch_batch_run`` of 500-event
   batches, every consumer, in this process, with the predictive model already trained), and
   through ``events_score`` alone; then the prediction tasks the batches asked for, run in this
   process as a worker would: contacts predicted per second, and the events per second of
   dispatch and prediction together;
2. decay of every contact's score (``scores_decay``: one statement per part of the contacts, on
   ``SCORING_DECAY_WORKERS`` connections at once) over ``--contacts`` contacts inactive past the
   window, against the 10 s target and against the raw ceiling (the same writes in plain SQL with
   no selection, split the same way, rolled back);
3. prediction latency per contact (``contacts_predict`` for one contact, p50/p95) with a model
   trained on the bench's own history, and its held-out AUC.
"""

import json
import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from unittest import mock

from django.conf import settings
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone

from marketing.bench import (
    Profiler,
    Scenario,
    celery_worker,
    checkpoint,
    percentile_ms,
    scenario,
    vacuum_analyze,
    worker_wait,
)
from marketing.models import DispatchBatch, Event, Organization
from marketing.tenancy import org_context

BATCH = 500  # events per dispatch batch, as ingestion writes them
# (event type, properties) of the generated events, drawn with these weights.
EVENT_MIX = [
    ("page_view", {"path": "/"}, 20),
    ("page_view", {"path": "/pricing"}, 12),
    ("page_view", {"path": "/blog/launch"}, 20),
    ("page_view", {"path": "/case-studies/acme"}, 6),
    ("page_view", {"path": "/product/demo"}, 4),
    ("email_opened", {}, 15),
    ("email_clicked", {"url": "https://acme.example/pricing"}, 8),
    ("form_submitted", {"form": "newsletter"}, 5),
    ("content_downloaded", {"kind": "whitepaper"}, 5),
    ("form_submitted", {"form": "trial"}, 2),
    ("demo_requested", {}, 1),
    ("unsubscribed", {}, 2),
]


@scenario
class ScoringScenario(Scenario):
    """Scoring: events scored/s through dispatch, decay of N contacts, prediction latency."""

    name = "scoring"
    help = "Scoring: events/s through the dispatch path, decay of N contacts (s), prediction p50/p95 per contact."
    org_slug = "bench-scoring"
    org_name = "Bench (scoring)"
    org_tables = (
        "scoring_scoreledger",
        "scoring_contactscore",
        "scoring_handoff",
        "scoring_predictivemodel",
        "scoring_scoringrule",
        "scoring_handoffpolicy",
        "scoring_scoringmodel",
        "marketing_dispatchbatch",
        "marketing_event",
        "marketing_contact",
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--contacts", type=int, default=1_000_000, help="Contacts decayed (default 1000000).")
        parser.add_argument("--events", type=int, default=100_000, help="Events scored (default 100000).")
        parser.add_argument("--active", type=int, default=20_000, help="Contacts the events belong to (20000).")
        parser.add_argument("--predictions", type=int, default=200, help="Single-contact predictions timed (200).")
        parser.add_argument("--keep", action="store_true", help="Keep the bench org's data afterwards.")
        parser.add_argument("--profile", action="store_true", help="cProfile the dispatch phase; top costs to stderr.")
        parser.add_argument(
            "--workers",
            type=int,
            default=0,
            help="Celery worker processes that then drain as many new events (default 0: no such phase).",
        )

    def run(self, *, options: dict, progress) -> Iterator[dict]:
        if connection.vendor != "postgresql":
            raise CommandError("bench scoring needs PostgreSQL (DATABASE_URL=postgres://…): its targets are for it.")
        n, events, active = options["contacts"], options["events"], min(options["active"], options["contacts"])
        if n < 1 or events < 2 or active < 1:
            raise CommandError("--contacts and --active must be at least 1 and --events at least 2.")
        from marketing.celery import app
        from scoring.demo import lead_score_model

        org = self.org_fresh()
        figures: dict = {"contacts": n, "events": events, "active_contacts": active}
        # Threshold handoffs mail their rep and crossings queue dispatch tasks: neither may print
        # to stdout or wait for a worker here.
        with override_settings(DEBUG=False, EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"):
            try:
                # The active contacts first: scoring and the predictive model (trained on every
                # contact of the org) see only them; the inactive rest arrive for the decay.
                self._contacts(org, 1, active, active=True, progress=progress)
                with org_context(org):
                    model = lead_score_model(org=org)
                # Every event first, then the model trained on them, so that the dispatch phase
                # pays for predicting each batch's changed contacts as a deployment with a
                # trained model does.
                contact_ids = self._active_ids(org, active)
                half = events // 2
                dispatched = self._events(org, contact_ids, half, 0)
                direct = self._events(org, contact_ids, events - half, half)
                trained = self._train(org, progress)
                figures.update(self._score(org, dispatched, direct, options["profile"], progress))
                if options["workers"] and not settings.EMBEDDED:
                    # As many events again, new ones, through real Celery workers.
                    drained = self._events(org, contact_ids, half, events)
                    figures.update(self._drain(org, drained, options["workers"], progress))
                figures.update(trained)
                if "predict_error" not in trained:
                    figures.update(self._predict(org, contact_ids, options["predictions"], progress))
                self._contacts(org, active + 1, n, active=False, progress=progress)
                figures.update(self._decay(org, model, progress))
            finally:
                if not settings.EMBEDDED:
                    app.control.purge()
        yield figures
        if not options["keep"]:
            self.org_empty(org)

    # -- data ----------------------------------------------------------------------------------

    def _contacts(self, org: Organization, first: int, last: int, *, active: bool, progress) -> None:
        """Contacts ``first``..``last`` in SQL from the row number: active ones (no activity yet;
        their events come next) or inactive ones, last active 60 days ago (past the 30-day decay
        window)."""
        if last < first:
            return
        advance = progress("generating active contacts" if active else "generating inactive contacts", 1)
        with org_context(org), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO marketing_contact (org_id, email, external_id, phone, first_name, last_name, job_title, "
                "country, time_zone, locale, lifecycle_stage, lead_status, score, properties, created_at, "
                "updated_at, last_activity_at) "
                "SELECT %s, 'c' || g || '@bench.example', NULL, '', 'First', 'Last ' || g, "
                "(ARRAY['Engineer', 'VP Sales', 'Head of Marketing', 'Analyst', 'Director IT'])[1 + g %% 5], "
                "(ARRAY['DE', 'FR', 'US', 'GB', 'BR', 'JP'])[1 + g %% 6], '', '', 'lead', 'new', 0, '{}', "
                "now() - interval '200 days', now(), "
                + ("NULL " if active else "now() - interval '60 days' ")
                + "FROM generate_series(%s, %s) g",
                [org.pk, first, last],
            )
            cursor.execute("ANALYZE marketing_contact")
        advance(1)

    def _active_ids(self, org: Organization, active: int) -> list[int]:
        with org_context(org), connection.cursor() as cursor:
            cursor.execute("SELECT id FROM marketing_contact WHERE org_id = %s ORDER BY id LIMIT %s", [org.pk, active])
            return [row[0] for row in cursor.fetchall()]

    def _events(self, org: Organization, contact_ids: list[int], count: int, offset: int) -> list[int]:
        """``count`` events for random active contacts over the last 25 days, in time order per
        contact; returns their ids."""
        rng = random.Random(offset)  # noqa: S311  bench data, not secrets
        types = [(t, p) for t, p, _ in EVENT_MIX]
        weights = [w for _, _, w in EVENT_MIX]
        rows = []
        for i in range(count):
            kind, props = rng.choices(types, weights)[0]
            rows.append(
                (org.pk, rng.choice(contact_ids), kind, props, rng.uniform(1, 25 * 86400), f"bench-{offset + i}")
            )
        with org_context(org), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO marketing_event (org_id, contact_id, type, properties, occurred_at, received_at, "
                "source, message_id) SELECT r.org, r.contact, r.type, r.props, now() - make_interval(secs => r.ago), "
                "now(), 'bench', r.mid FROM jsonb_to_recordset(%s::jsonb) AS r(org bigint, contact bigint, "
                "type text, props jsonb, ago float8, mid text) RETURNING id",
                [
                    json.dumps(
                        [
                            {"org": o, "contact": c, "type": t, "props": p, "ago": a, "mid": m}
                            for o, c, t, p, a, m in rows
                        ]
                    )
                ],
            )
            ids = sorted(row[0] for row in cursor.fetchall())
            cursor.execute("ANALYZE marketing_event")
        return ids

    # -- phases --------------------------------------------------------------------------------

    def _score(self, org: Organization, dispatched: list[int], direct: list[int], profile: bool, progress) -> dict:
        """Half the events through ``dispatch_batch_run`` (every consumer), half through
        ``events_score`` alone, 500 a batch, in this process."""
        from marketing.dispatch import dispatch_batch_run
        from scoring.rules import events_score
        from scoring.tasks import contacts_predict_task

        advance = progress("scoring events", len(dispatched) + len(direct))
        with org_context(org):
            batches = [
                DispatchBatch.objects.create(org=org, event_ids=dispatched[i : i + BATCH])
                for i in range(0, len(dispatched), BATCH)
            ]
        profiler = Profiler(profile)
        # The prediction tasks the batches ask for are kept, then run here as a worker would.
        asked = []
        with mock.patch.object(contacts_predict_task, "delay", lambda **kwargs: asked.append(kwargs)):
            start = time.perf_counter()
            for batch in batches:
                with profiler:
                    dispatch_batch_run(batch_id=batch.pk)
                advance(len(batch.event_ids))
            dispatch_s = time.perf_counter() - start
        profiler.report()
        start = time.perf_counter()
        predicted = sum(contacts_predict_task(**kwargs) for kwargs in asked)
        predict_s = time.perf_counter() - start
        with org_context(org):
            start = time.perf_counter()
            for first in range(0, len(direct), BATCH):
                ids = direct[first : first + BATCH]
                chunk = list(Event.objects.filter(pk__in=ids).order_by("contact_id", "occurred_at", "id"))
                with transaction.atomic():
                    events_score(org=org, events=chunk)
                advance(len(chunk))
            direct_s = time.perf_counter() - start
        with org_context(org), connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*), count(DISTINCT contact_id) FROM scoring_scoreledger WHERE org_id = %s", [org.pk]
            )
            ledger_rows, scored = cursor.fetchone()
            cursor.execute("SELECT count(*) FROM scoring_handoff WHERE org_id = %s", [org.pk])
            handoffs = cursor.fetchone()[0]
        return {
            "dispatch_events_per_s": round(len(dispatched) / dispatch_s),
            # The same events with their prediction tasks, one after the other, as one worker.
            "dispatch_and_predict_events_per_s": round(len(dispatched) / (dispatch_s + predict_s)),
            "predict_tasks": len(asked),
            "predicted_contacts_per_s": round(predicted / predict_s) if predict_s else 0,
            "scoring_events_per_s": round(len(direct) / direct_s),
            "ledger_rows": ledger_rows,
            "contacts_scored": scored,
            "handoffs": handoffs,
        }

    def _drain(self, org: Organization, event_ids: list[int], workers: int, progress) -> dict:
        """The dispatch path as deployed: ``workers`` Celery worker processes drain the batches of
        ``event_ids`` (500 each) and run the prediction tasks those batches send. Timed from the
        first batch sent (the workers already up) to the last batch done, and to the last
        changed contact predicted."""
        from marketing.celery import app
        from marketing.tasks import dispatch_batch
        from scoring.models import ContactScore

        # The batches and scores are read as the workers write them: in the bench org's context.
        with org_context(org):
            batches = [
                DispatchBatch.objects.create(org=org, event_ids=event_ids[i : i + BATCH])
                for i in range(0, len(event_ids), BATCH)
            ]
            ids = [batch.pk for batch in batches]
            pending = DispatchBatch.objects.filter(pk__in=ids)
        advance = progress(f"dispatch on {workers} Celery workers", len(batches))
        app.control.purge()
        with org_context(org), celery_worker(workers) as worker:
            deadline = time.monotonic() + 60
            while not app.control.ping(timeout=0.5):
                if worker.poll() is not None or time.monotonic() > deadline:
                    raise CommandError("the Celery worker did not start (is REDIS_URL's broker up?)")
            since = timezone.now()
            start = time.perf_counter()
            for batch_id in ids:
                dispatch_batch.delay(batch_id=batch_id)
            done = pending.filter(status=DispatchBatch.Status.DONE)
            worker_wait(worker, done.count, len(ids), advance, interval=0.05)
            dispatch_s = time.perf_counter() - start
            # The contacts those batches changed (their default-model scores written since), each
            # predicted once since.
            changed = ContactScore.objects.filter(org=org, model__is_default=True, updated_at__gte=since)
            predicted = changed.filter(predicted_at__gte=since)
            worker_wait(worker, predicted.count, changed.count(), lambda _n: None, interval=0.05)
            both_s = time.perf_counter() - start
            attempts = sum(pending.values_list("attempts", flat=True))
        return {
            "dispatch_workers": workers,
            "workers_dispatch_events_per_s": round(len(event_ids) / dispatch_s),
            "workers_dispatch_and_predict_events_per_s": round(len(event_ids) / both_s),
            "workers_dispatch_retries": attempts - len(ids),
        }

    def _decay(self, org: Organization, model, progress) -> dict:
        """Gives every inactive contact a score above base (with its ledger row, so the identity
        holds) and times ``scores_decay`` over them."""
        from scoring.decay import scores_decay

        advance = progress("decay", 3)
        with org_context(org), connection.cursor() as cursor:
            # One statement for both, so exactly the new score rows get their ledger row.
            cursor.execute(
                "WITH s AS (INSERT INTO scoring_contactscore (org_id, contact_id, model_id, score, band, probability, "
                "factors, predicted_at, updated_at) SELECT c.org_id, c.id, %s, %s + c.id %% 400, '', NULL, '[]', "
                "NULL, now() - interval '60 days' FROM marketing_contact c WHERE c.org_id = %s "
                "AND c.last_activity_at < now() - interval '30 days' ON CONFLICT DO NOTHING "
                "RETURNING org_id, contact_id, model_id, score) "
                "INSERT INTO scoring_scoreledger (org_id, contact_id, model_id, delta, score_after, reason, rule_id, "
                "event_id, note, actor_id, at) SELECT s.org_id, s.contact_id, s.model_id, s.score - %s, s.score, "
                "'manual', NULL, NULL, 'bench', NULL, now() - interval '60 days' FROM s",
                [model.pk, model.base, org.pk, model.base],
            )
            cursor.execute("ANALYZE scoring_contactscore")
            cursor.execute("ANALYZE scoring_scoreledger")
        advance(1)
        # As many connections as scores_decay uses (one inside a transaction, as in the tests).
        parts = 1 if connection.in_atomic_block else max(1, settings.SCORING_DECAY_WORKERS)
        checkpoint()  # the generated rows written out before, not during, the measurements
        raw_s = self._decay_raw(org, model, parts)
        # The raw statement's rolled-back row versions cleared, as autovacuum would have done
        # before a daily decay: each measurement starts from a clean table.
        vacuum_analyze("scoring_contactscore", "marketing_contact", "scoring_scoreledger")
        checkpoint()
        advance(1)
        start = time.perf_counter()
        with org_context(org):
            decayed = scores_decay(model=model)
        decay_s = time.perf_counter() - start
        advance(1)
        return {
            "decayed": decayed,
            "decay_workers": parts,
            "decay_seconds": round(decay_s, 2),
            "decay_raw_seconds": round(raw_s, 2),
            "decay_vs_raw": round(decay_s / raw_s, 2),
            "decay_vs_target": round(decay_s / 10, 2),
        }

    def _decay_raw(self, org: Organization, model, parts: int) -> float:
        """The raw ceiling: the same writes as a decay (every score row, a ledger row each, the
        contacts' mirror, the ledger rows in contact order) in plain SQL with no selection, split
        into the same id ranges on as many connections at once as the decay, timed to the end of
        the statements and rolled back."""
        from scoring.decay import _id_ranges

        sql = (
            "WITH d AS (UPDATE scoring_contactscore SET score = score - 1 WHERE model_id = %(model)s "
            "AND org_id = %(org)s AND score > %(base)s AND contact_id BETWEEN %(first)s AND %(last)s "
            "RETURNING org_id, contact_id, model_id, score), "
            "m AS (UPDATE marketing_contact c SET score = d.score FROM d "
            "WHERE c.id = d.contact_id AND c.id BETWEEN %(first)s AND %(last)s) "
            "INSERT INTO scoring_scoreledger (org_id, contact_id, model_id, delta, score_after, reason, note, at) "
            "SELECT org_id, contact_id, model_id, -1, score, 'decay', '', now() FROM d ORDER BY contact_id"
        )

        def write(ids: tuple[int, int]) -> None:
            params = {"model": model.pk, "org": org.pk, "base": model.base, "first": ids[0], "last": ids[1]}
            with connection.cursor() as cursor:
                cursor.execute("BEGIN")
                try:
                    cursor.execute(sql, params)
                finally:
                    cursor.execute("ROLLBACK")

        def write_in_thread(ids: tuple[int, int]) -> None:
            try:
                with org_context(org):  # a thread starts outside the caller's context
                    write(ids)
            finally:
                connection.close()

        with org_context(org):
            ranges = _id_ranges(model, parts)  # the decay's own split
        start = time.perf_counter()
        if parts == 1:
            with org_context(org):
                write(ranges[0])
        else:
            with ThreadPoolExecutor(max_workers=parts) as pool:
                list(pool.map(write_in_thread, ranges))
        return time.perf_counter() - start

    def _train(self, org: Organization, progress) -> dict:
        """Marks converters among the active contacts (more pricing views and trials, plus noise;
        a ``purchase`` event dates the conversion) and trains the org's predictive model."""
        from scoring.predictive import TrainingDataError, predictive_model_train

        advance = progress("training", 1)
        with org_context(org), connection.cursor() as cursor:
            cursor.execute(
                "WITH intent AS (SELECT contact_id, count(*) FILTER (WHERE properties->>'path' = '/pricing' "
                "OR properties->>'form' = 'trial' OR type = 'demo_requested') AS n FROM marketing_event "
                "WHERE org_id = %s GROUP BY contact_id), buyers AS (SELECT contact_id FROM intent "
                "WHERE n >= 3 AND contact_id %% 10 < 7 OR contact_id %% 37 = 0) "
                "INSERT INTO marketing_event (org_id, contact_id, type, properties, occurred_at, received_at, "
                "source, message_id) SELECT %s, contact_id, 'purchase', '{}', now() - interval '1 hour', now(), "
                "'bench', 'bench-purchase-' || contact_id FROM buyers",
                [org.pk, org.pk],
            )
        with org_context(org):
            try:
                start = time.perf_counter()
                result = predictive_model_train(org=org)
                train_s = time.perf_counter() - start
            except TrainingDataError as exc:
                return {"predict_error": str(exc)}
        advance(1)
        return {"train_seconds": round(train_s, 2), "auc": result.model.metrics.get("auc")}

    def _predict(self, org: Organization, contact_ids: list[int], samples: int, progress) -> dict:
        """Times ``contacts_predict`` for one scored contact at a time."""
        from scoring.predictive import contacts_predict

        advance = progress("predicting", samples)
        rng = random.Random(7)  # noqa: S311
        timings = []
        with org_context(org):
            for contact_id in rng.sample(contact_ids, min(samples, len(contact_ids))):
                start = time.perf_counter()
                contacts_predict(org=org, contact_ids=[contact_id])
                timings.append(time.perf_counter() - start)
                advance(1)
        return {"predict_p50_ms": percentile_ms(timings, 50), "predict_p95_ms": percentile_ms(timings, 95)}
