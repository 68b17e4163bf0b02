"""``recompute_scores``: the summary line on stdout, the progress bar on stderr, ``--decay``,
``--replay-days``, and one readable line (non-zero exit) for an unknown org or model."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from scoring.models import ContactScore, ScoreLedger, ScoringModel, ScoringRule
from tests.factories import ContactFactory


@pytest.fixture
def model(org):
    return ScoringModel.objects.create(org=org, slug="default", name="Default", is_default=True)


@pytest.fixture
def contacts(model):
    """Two contacts with two pricing views each (15 points), idle for 40 days."""
    rule = ScoringRule.objects.create(org=model.org, model=model, name="Pricing", event_type="page_viewed", points=15)
    made = []
    for _ in range(2):
        contact = ContactFactory(org=model.org, last_activity_at=timezone.now() - timedelta(days=40), score=130)
        ContactScore.objects.create(org=model.org, contact=contact, model=model, score=130)
        ScoreLedger.objects.bulk_create(
            [
                ScoreLedger(
                    org=model.org, contact=contact, model=model, delta=15, score_after=s, reason="rule", rule=rule
                )
                for s in (115, 130)
            ]
        )
        made.append(contact)
    return rule, made


def run(*args):
    out, err = StringIO(), StringIO()
    call_command("recompute_scores", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_recompute_prints_one_summary_line_per_model(org, model, contacts):
    rule, _ = contacts
    ScoringModel.objects.create(org=org, slug="product", name="Product")
    rule.points = 20
    rule.save()

    out, _ = run("--org", org.slug)

    assert out.splitlines() == [
        "recomputed 2 contacts of model default: 2 changed",
        "recomputed 0 contacts of model product: 0 changed",
    ]
    assert set(ContactScore.objects.filter(model=model).values_list("score", flat=True)) == {140}


def test_recompute_one_model_and_again_changes_nothing(org, model, contacts):
    rule, _ = contacts
    ScoringModel.objects.create(org=org, slug="product", name="Product")
    rule.points = 5
    rule.save()

    assert run("--org", org.slug, "--model", "default")[0] == "recomputed 2 contacts of model default: 2 changed\n"
    assert run("--org", org.slug, "--model", "default")[0] == "recomputed 2 contacts of model default: 0 changed\n"


def test_decay_flag_decays_now(org, model, contacts):
    out, _ = run("--org", org.slug, "--decay")

    assert out == "decayed 2 contacts of model default\n"
    assert set(ContactScore.objects.filter(model=model).values_list("score", flat=True)) == {128}
    assert run("--org", org.slug, "--decay")[0] == "decayed 0 contacts of model default\n"


def test_replay_days_scores_past_events_for_a_new_rule_then_recomputes(org, model, contacts):
    from marketing.models import Event

    _, (first, _) = contacts
    for days_ago, message_id in ((3, "w-recent"), (45, "w-old")):
        Event.objects.create(
            org=org,
            contact=first,
            type="webinar_attended",
            occurred_at=timezone.now() - timedelta(days=days_ago),
            message_id=message_id,
        )
    ScoringRule.objects.create(org=org, model=model, name="Webinar", event_type="webinar_attended", points=40)

    out, _ = run("--org", org.slug, "--replay-days", "30")

    assert out.splitlines() == [
        "replayed 1 events of the last 30 days into model default: 1 contacts changed",
        "recomputed 2 contacts of model default: 0 changed",
    ]
    assert ContactScore.objects.get(model=model, contact=first).score == 170
    assert run("--org", org.slug, "--replay-days", "30")[0].splitlines()[0].endswith(": 0 contacts changed")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--replay-days", "0"], "--replay-days must be a whole number of days above 0."),
        (["--replay-days", "7", "--decay"], "--replay-days recomputes; it does not go with --decay."),
    ],
)
def test_replay_days_is_checked(org, model, args, message):
    with pytest.raises(CommandError) as error:
        run("--org", org.slug, *args)

    assert str(error.value) == message


class Terminal(StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_goes_to_stderr(org, model, contacts):
    out, err = StringIO(), Terminal()

    call_command("recompute_scores", "--org", org.slug, stdout=out, stderr=err)

    assert "Recompute default" in err.getvalue()
    assert "2/2" in err.getvalue()
    assert out.getvalue() == "recomputed 2 contacts of model default: 0 changed\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--org", "nope"], "No organisation with slug 'nope'."),
        (
            ["--org", "org-a", "--model", "nope"],
            "No scoring model 'nope' in organisation 'org-a' (its models: default).",
        ),
    ],
)
def test_unknown_org_or_model_is_one_line(org, model, args, message):
    with pytest.raises(CommandError) as error:
        run(*args)

    assert str(error.value) == message


def test_an_org_without_models(org):
    with pytest.raises(CommandError, match="has no scoring model"):
        run("--org", org.slug)


def test_the_command_exits_non_zero_with_one_line(org, model, shared_database_url):
    """As an operator runs it: a separate process, exit status 1, one line on stderr."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "DATABASE_URL": shared_database_url}
    result = subprocess.run(
        [sys.executable, "manage.py", "recompute_scores", "--org", "no-such-org"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "CommandError: No organisation with slug 'no-such-org'."
    assert result.stdout == ""
