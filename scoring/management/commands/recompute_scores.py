"""``python manage.py recompute_scores --org SLUG [--model SLUG] [--decay]``.

Recomputes every contact's score in the org's scoring models (or in one, ``--model``) after
their rules changed, with a progress bar on stderr and one summary line per model on stdout:
``recomputed N contacts of model X: M changed``. ``--decay`` runs decay now instead (the daily
job's work for this org): ``decayed M contacts of model X``. Both are safe to run again.
"""

import sys

from django.core.management.base import BaseCommand, CommandError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from marketing.models import Organization
from marketing.tenancy import org_context
from scoring.decay import scores_decay
from scoring.models import ScoringModel
from scoring.recompute import scores_recompute


class Command(BaseCommand):
    help = "Recomputes contacts' scores after rule changes (or with --decay, decays inactive contacts' scores now)."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="The organisation's slug, e.g. acme.")
        parser.add_argument("--model", help="One scoring model's slug (default: every model of the org).")
        parser.add_argument(
            "--decay",
            action="store_true",
            help="Decay the scores of contacts inactive past the window now, instead of recomputing.",
        )

    def handle(self, *args, org: str, model: str | None, decay: bool, **options):
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
                else:
                    result = self._recompute(scoring_model, options.get("stderr") or sys.stderr)
                    self.stdout.write(
                        f"recomputed {result['contacts']} contacts of model {scoring_model.slug}: "
                        f"{result['changed']} changed"
                    )

    def _recompute(self, scoring_model: ScoringModel, stream) -> dict:
        progress = Progress(
            TextColumn(f"Recompute {scoring_model.slug}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(file=stream),
            transient=True,
        )
        with progress:
            task = progress.add_task("contacts", total=None)
            return scores_recompute(
                model=scoring_model,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
