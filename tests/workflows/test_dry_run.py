"""Dry run: the engine's own steps on a simulated clock for one contact, with no rows written and
no call made; simulated events, approvals, goals, limits; and the ``dry_run_workflow`` command."""

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_scopes import scopes_disabled

from marketing.models import Event, Tag
from workflows.deliveries import delivery_send
from workflows.dry_run import workflow_dry_run
from workflows.models import (
    Approval,
    AutomationExecution,
    Delivery,
    WorkflowInstance,
    WorkflowStepRun,
)
from workflows.services import workflow_enrol_manually, workflow_update

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def at(**delta) -> str:
    return (START + timedelta(**delta)).isoformat()


def walk(result) -> list[tuple]:
    """(step, decision, time) of each entry of the path."""
    return [(item["step"], item["decision"], item["at"]) for item in result["path"]]


@pytest.fixture
def receiver():
    """A loopback HTTP server that records every request it gets."""
    calls = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            calls.append({"path": self.path, "body": self.rfile.read(length), "headers": dict(self.headers)})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"ok": true}')

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", calls
    server.shutdown()
    server.server_close()


def row_counts() -> dict[str, int]:
    with scopes_disabled():
        return {
            model.__name__: model.objects.count()
            for model in (Delivery, WorkflowStepRun, WorkflowInstance, Tag, Event, Approval, AutomationExecution)
        }


def full_path(url: str) -> list[dict]:
    return [
        {"id": "tag", "type": "action", "action": "add_tag", "config": {"tags": ["dry"]}, "next": "wait"},
        {"id": "wait", "type": "delay", "config": {"duration": "P2D"}, "next": "check"},
        {
            "id": "check",
            "type": "condition",
            "condition": {"==": [{"var": "country"}, "DE"]},
            "true_next": "hook",
            "false_next": None,
        },
        {"id": "hook", "type": "action", "action": "webhook", "config": {"url": url}, "next": "clicked"},
        {
            "id": "clicked",
            "type": "wait_for_event",
            "event": "email_clicked",
            "filter": {"==": [{"var": "event.properties.link"}, "pricing"]},
            "timeout": "P3D",
            "next": "approve",
            "timeout_next": "gave_up",
        },
        {
            "id": "approve",
            "type": "approval",
            "approvers": {"role": "marketer"},
            "timeout": "P1D",
            "approved_next": "notify",
            "rejected_next": None,
            "timeout_next": None,
        },
        {"id": "notify", "type": "action", "action": "notify", "config": {"message": "hi"}, "next": None},
        {"id": "gave_up", "type": "action", "action": "log", "config": {"message": "no click"}, "next": None},
    ]


def test_the_path_follows_the_simulated_clock_and_nothing_is_written_or_sent(
    org, contact, publish, drain, receiver, settings
):
    url, calls = receiver
    workflow = publish(full_path(url))
    before = row_counts()

    result = workflow_dry_run(
        workflow=workflow,
        contact=contact,
        start=START,
        events=[{"type": "email_clicked", "after": "P2DT5H", "properties": {"link": "pricing"}}],
    )

    assert walk(result) == [
        ("tag", "next", at()),
        ("wait", "wait", at()),
        ("wait", "next", at(days=2)),
        ("check", "true_next", at(days=2)),
        ("hook", "next", at(days=2)),
        ("clicked", "wait", at(days=2)),
        ("clicked", "next", at(days=2, hours=5)),
        ("approve", "wait", at(days=2, hours=5)),
        ("approve", "approved_next", at(days=2, hours=5)),
        ("notify", "next", at(days=2, hours=5)),
        (None, "completed", at(days=2, hours=5)),
    ]
    assert result["status"] == "completed" and result["result"] == "completed"
    assert result["ended_at"] == at(days=2, hours=5)
    assert result["definition"] == "live version 1"
    assert [(a["step"], a["action"]) for a in result["actions"]] == [
        ("tag", "add_tag"),
        ("hook", "webhook"),
        ("notify", "notify"),
    ]
    assert result["actions"][1]["preview"] == {"would": f"POST {url}"}
    assert result["path"][3]["output"] == {"result": True}
    assert result["path"][6]["output"]["event"]["properties"] == {"link": "pricing"}
    assert result["events"][0]["woke"] == ["clicked"]
    # Nothing written, nothing sent, the contact untouched.
    assert row_counts() == before
    assert not contact.tags.exists()
    assert calls == []

    # The control: the same workflow run for real does reach the receiver, so it would have
    # recorded a call the dry run made.
    settings.OUTBOUND_HTTP_ALLOWED_HOSTS = ["127.0.0.1"]
    workflow_enrol_manually(workflow=workflow, contact_ids=[contact.pk])
    drain()
    drain(timezone.now() + timedelta(days=2, minutes=1))  # past the delay
    delivery = Delivery.objects.get()
    assert delivery_send(delivery_id=delivery.pk) == Delivery.Status.SENT
    assert len(calls) == 1 and calls[0]["headers"]["Idempotency-Key"] == delivery.idempotency_key


def test_without_the_event_the_timeout_branch_is_taken_at_the_deadline(org, contact, publish, receiver):
    workflow = publish(full_path(receiver[0]))
    events = [
        {"type": "email_clicked", "after": "P1D", "properties": {"link": "pricing"}},  # before the wait began
        {"type": "email_opened", "after": "P2DT1H"},  # another type
        {"type": "email_clicked", "after": "P2DT2H", "properties": {"link": "blog"}},  # the filter says no
        {"type": "email_clicked", "after": "P6D", "properties": {"link": "pricing"}},  # after the timeout
    ]

    result = workflow_dry_run(workflow=workflow, contact=contact, start=START, events=events)

    assert walk(result)[-3:] == [
        ("clicked", "timeout_next", at(days=5)),
        ("gave_up", "next", at(days=5)),
        (None, "completed", at(days=5)),
    ]
    assert [e["woke"] for e in result["events"]] == [[], [], [], []]


@pytest.mark.parametrize(
    ("approve", "expected"),
    [
        (False, [("approve", "rejected_next", at())]),
        ({"approve": "timeout"}, [("approve", "timeout_next", at(days=1))]),
        ({"other": "rejected"}, [("approve", "approved_next", at()), ("notify", "next", at())]),
    ],
)
def test_approvals_are_decided_as_asked(org, contact, publish, approve, expected):
    steps = [s for s in full_path("https://example.com/") if s["id"] in ("approve", "notify")]
    workflow = publish(steps)

    result = workflow_dry_run(workflow=workflow, contact=contact, start=START, approve=approve)

    assert walk(result)[1:-1] == expected
    assert result["status"] == "completed"
    assert not Approval.objects.exists()


def test_parallel_branches_merge_and_the_goal_ends_the_run(org, contact, publish):
    workflow = publish(
        [
            {"id": "fork", "type": "parallel", "branches": ["a", "b"]},
            {"id": "a", "type": "action", "action": "log", "config": {"message": "a"}, "next": "join"},
            {"id": "b", "type": "delay", "config": {"duration": "PT1H"}, "next": "join"},
            {"id": "join", "type": "merge", "mode": "all", "next": "later"},
            {"id": "later", "type": "delay", "config": {"duration": "P1D"}, "next": "never"},
            {"id": "never", "type": "action", "action": "log", "config": {"message": "not reached"}, "next": None},
        ],
        settings={"goal": {">=": [{"days_since": ["created_at"]}, 1]}},  # true from a day on
    )
    contact.created_at = START
    contact.save(update_fields=["created_at"])

    result = workflow_dry_run(workflow=workflow, contact=contact, start=START)

    steps = walk(result)
    assert ("fork", "completed", at()) in steps
    assert ("join", "next", at(hours=1)) in steps
    assert steps[-1] == (None, "goal_reached", at(days=1, hours=1))
    assert "never" not in [s for s, _, _ in steps]


def test_draft_given_definition_and_errors(org, contact, publish):
    workflow = publish([{"id": "live", "type": "action", "action": "log", "config": {"message": "v1"}, "next": None}])
    workflow_update(
        workflow=workflow,
        draft_definition={
            "trigger": {"type": "manual"},
            "steps": [{"id": "draft", "type": "action", "action": "log", "config": {"message": "v2"}, "next": None}],
        },
    )

    assert walk(workflow_dry_run(workflow=workflow, contact=contact, start=START))[0][0] == "live"
    drafted = workflow_dry_run(workflow=workflow, contact=contact, start=START, draft=True)
    assert drafted["definition"] == "the draft" and drafted["path"][0]["step"] == "draft"
    broken = {"trigger": {"type": "manual"}, "steps": [{"id": "x", "type": "delay", "config": {}, "next": None}]}
    with pytest.raises(ValidationError) as error:
        workflow_dry_run(workflow=workflow, contact=contact, definition=broken)
    assert error.value.message_dict["definition"][0].startswith("steps[x]")
    with pytest.raises(ValidationError) as error:
        workflow_dry_run(workflow=workflow, contact=contact, events=[{"type": "x", "after": "tomorrow"}])
    assert "events[0].after" in error.value.message_dict["events"][0]


def test_a_long_run_stops_at_max_steps(org, contact, publish):
    workflow = publish(
        [
            {
                "id": "items",
                "type": "action",
                "action": "set_variable",
                "config": {"name": "items", "value": list(range(500))},
                "next": "each",
            },
            {
                "id": "each",
                "type": "loop",
                "over": "workflow.vars.items",
                "as": "item",
                "body_next": "log",
                "next": None,
            },
            {"id": "log", "type": "action", "action": "log", "config": {"message": "item"}, "next": "each"},
        ]
    )

    result = workflow_dry_run(workflow=workflow, contact=contact, start=START, max_steps=150)

    assert result["stopped"] == "max_steps"
    assert result["steps_run"] == 150
    assert result["status"] == "waiting" and result["ended_at"] is None


# -- the command ------------------------------------------------------------------------------


def test_command_prints_the_path_and_json(org, contact, publish, receiver):
    publish(full_path(receiver[0]), slug="follow-up")
    out = StringIO()

    call_command(
        "dry_run_workflow",
        "--org",
        org.slug,
        "--workflow",
        "follow-up",
        "--contact",
        "ANA@example.com",
        "--start",
        "2026-12-01T09:00:00+00:00",
        "--event",
        'email_clicked@P2DT5H@{"link": "pricing"}',
        "--approval",
        "approve=rejected",
        stdout=out,
    )

    text = out.getvalue()
    assert "Dry run of “follow-up” (live version 1) for ana@example.com" in text
    assert "+2d 00:00  check (condition)" in text
    assert "waits until 2026-12-03 09:00" in text
    assert "rejected_next → end" in text
    assert "Ended completed at 2026-12-03 14:00 UTC" in text
    assert "nothing was sent or written" in text

    out = StringIO()
    call_command(
        "dry_run_workflow",
        "--org",
        org.slug,
        "--workflow",
        "follow-up",
        "--contact",
        contact.email,
        "--json",
        stdout=out,
    )
    body = json.loads(out.getvalue())
    assert body["contact"]["id"] == contact.pk
    assert body["path"][0]["step"] == "tag"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--org", "nope", "--workflow", "follow-up", "--contact", "ana@example.com"], "No organisation"),
        (["--org", "org-a", "--workflow", "nope", "--contact", "ana@example.com"], "No workflow with slug 'nope'"),
        (["--org", "org-a", "--workflow", "follow-up", "--contact", "who@example.com"], "No contact with email"),
        (
            ["--org", "org-a", "--workflow", "follow-up", "--contact", "ana@example.com", "--event", "x"],
            "TYPE@DURATION",
        ),
        (["--org", "org-a", "--workflow", "follow-up", "--contact", "ana@example.com", "--start", "soon"], "--start"),
    ],
)
def test_command_refuses_bad_input_with_one_line(org, contact, publish, args, message):
    publish(
        [{"id": "log", "type": "action", "action": "log", "config": {"message": "x"}, "next": None}], slug="follow-up"
    )

    with pytest.raises(CommandError) as error:
        call_command("dry_run_workflow", *args, stdout=StringIO())

    assert message in str(error.value)
    assert "\n" not in str(error.value)
