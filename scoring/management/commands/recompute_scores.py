"""``python manage.py recompute_scores --org SLUG [--model SLUG] [--replay-days N] [--decay]``.

Recomputes every contact's score in the org's scoring models (or in one, ``--model``) after
their rules changed, with a progress bar on stderr and one summary line per model on stdout:
``recomputed N contacts of model X: M changed``. ``--replay-days N`` first runs the events of the
last N days through the model's behaviour rules again, so a new rule (or a changed filter) scores
past events too: ``replayed E events of the last N days into model X: C contacts changed``.
``--decay`` runs decay now instead (the daily job's work for this org): ``decayed M contacts of
model X``. All are safe to run again.
"""

import sys
from datetime import timedelta
from functools import partial

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from marketing.models import Organization
from marketing.tenancy import org_context
from scoring.decay import scores_decay
from scoring.models import ScoringModel
from scoring.recompute import scores_recompute, scores_replay


class Command(BaseCommand):
    help = "Recomputes contacts' scores after rule changes (or with --decay, decays inactive contacts' scores now)."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="The organisation's slug, e.g. acme.")
        parser.add_argument("--model", help="One scoring model's slug (default: every model of the org).")
        parser.add_argument(
            "--replay-days",
            type=int,
            metavar="N",
            help="First score the events of the last N days with the rules that have not scored them (new rules, "
            "changed filters).",
        )
        parser.add_argument(
            "--decay",
            action="store_true",
            help="Decay the scores of contacts inactive past the window now, instead of recomputing.",
        )

    def handle(self, *args, org: str, model: str | None, decay: bool, replay_days: int | None, **options):
        if replay_days is not None and replay_days <= 0:
            raise CommandError("--replay-days must be a whole number of days above 0.")
        if replay_days is not None and decay:
            raise CommandError("--replay-days recomputes; it does not go with --decay.")
        stream = options.get("stderr") or sys.stderr
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organisation with slug '{org}'.")
        with org_context(organization):
            models = ScoringModel.objects.filter(org=organization).order_by("-is_default", "slug")
            if model:
                models = models.filter(slug=model)
                if not models.exists():
                    known = ", ".join(ScoringModel.objects.filter(org=organization).values_list("slug", flat=True))
                    raise CommandError(
                        f"No scoring model '{model}' in organisation '{org}' (its models: {known or 'none'})."
                    )
            elif not models.exists():
                raise CommandError(f"Organisation '{org}' has no scoring model.")
            for scoring_model in models:
                if decay:
                    count = scores_decay(model=scoring_model)
                    self.stdout.write(f"decayed {count} contacts of model {scoring_model.slug}")
                    continue
                if replay_days:
                    replay = partial(
                        scores_replay, model=scoring_model, since=timezone.now() - timedelta(days=replay_days)
                    )
                    result = self._with_progress(f"Replay into {scoring_model.slug}", stream, replay)
                    self.stdout.write(
                        f"replayed {result['events']} events of the last {replay_days} days into model "
                        f"{scoring_model.slug}: {result['contacts']} contacts changed"
                    )
                result = self._with_progress(
                    f"Recompute {scoring_model.slug}", stream, partial(scores_recompute, model=scoring_model)
                )
                self.stdout.write(
                    f"recomputed {result['contacts']} contacts of model {scoring_model.slug}: "
                    f"{result['changed']} changed"
                )

    def _with_progress(self, label: str, stream, run) -> dict:
        """``run(progress=…)`` with a progress bar on ``stream``; ``progress(done, total)`` moves it."""
        progress = Progress(
            TextColumn(label),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(file=stream),
            transient=True,
        )
        with progress:
            task = progress.add_task(label, total=None)
            return run(progress=lambda done, total: progress.update(task, completed=done, total=total))
