"""``python manage.py train_scoring_model --org SLUG [--test-size 0.25] [--seed 42] [--algorithm auto] [--no-predict]``.

Trains a conversion model on the org's history, evaluates it on a stratified held-out split and
stores it as the org's new active ``PredictiveModel`` version (``scoring.predictive``). Prints the
held-out figures one per line (``AUC: 0.83``, ``Precision: …``) and the strongest features; exits
non-zero with one line when the org is unknown or its data cannot train a model. Afterwards the
org's scored contacts get a probability from the new model (``--no-predict`` skips that).
"""

from django.core.management.base import BaseCommand, CommandError

from marketing.models import Organization
from marketing.tenancy import org_context
from scoring.predictive import ALGORITHMS, TrainingDataError, org_predict, predictive_model_train


class Command(BaseCommand):
    help = "Trains, evaluates (held-out AUC, precision, recall, F1) and stores the org's predictive scoring model."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="The organisation's slug, e.g. acme.")
        parser.add_argument("--test-size", type=float, default=0.25, help="Held-out share (default 0.25).")
        parser.add_argument("--seed", type=int, default=42, help="Seed of the split and the model (default 42).")
        parser.add_argument(
            "--algorithm",
            default="auto",
            choices=["auto", *ALGORITHMS],
            help="auto (default): whichever has the better cross-validated AUC on the training split.",
        )
        parser.add_argument(
            "--no-predict", action="store_true", help="Don't refresh the scored contacts' probabilities afterwards."
        )

    def handle(self, *args, org: str, test_size: float, seed: int, algorithm: str, no_predict: bool, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organisation with slug '{org}'.")
        with org_context(organization):
            try:
                result = predictive_model_train(org=organization, test_size=test_size, seed=seed, algorithm=algorithm)
            except TrainingDataError as exc:
                raise CommandError(str(exc)) from exc
        model, metrics = result.model, result.model.metrics
        cv = ", ".join(f"{name} {value:.3f}" for name, value in metrics["cv_auc"].items())
        lines = [
            f"Model: v{model.version} ({model.algorithm}; cross-validated AUC on the training split: {cv})",
            f"Rows: {metrics['rows']} ({metrics['positives']} converted; "
            f"train {result.train_rows}, held-out {result.test_rows})",
            f"Base rate: {metrics['base_rate']:.3f}",
            f"AUC: {metrics['auc']:.3f}",
            f"Precision: {metrics['precision']:.3f}",
            f"Recall: {metrics['recall']:.3f}",
            f"F1: {metrics['f1']:.3f}",
            f"Threshold: {metrics['threshold']:.3f}",
            "Top features: "
            + ", ".join(f"{item['feature']} {item['importance']:.3f}" for item in model.importances[:5]),
        ]
        for line in lines:
            self.stdout.write(line)
        if not no_predict:
            with org_context(organization):
                self.stdout.write(f"Predicted: {org_predict(org=organization)} scored contacts")
