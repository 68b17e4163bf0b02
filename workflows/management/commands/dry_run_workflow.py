"""``python manage.py dry_run_workflow --org SLUG --workflow SLUG --contact EMAIL [options]``.

Runs one contact through a workflow on a simulated clock (``workflows.dry_run``): prints the
path it would take — each step with its simulated time, the decision or edge, and what each
action would have done — and how it ends. Nothing is sent or written.
"""

import json
from datetime import datetime

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from marketing.models import Contact, Organization
from marketing.tenancy import org_context
from workflows.dry_run import DECISIONS, workflow_dry_run
from workflows.models import Workflow


def _event(value: str) -> dict:
    """``TYPE@DURATION`` or ``TYPE@DURATION@{"json": "properties"}``."""
    parts = value.split("@", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise CommandError(f"--event {value}: write TYPE@DURATION, e.g. email_clicked@P1D.")
    event = {"type": parts[0], "after": parts[1]}
    if len(parts) == 3:
        try:
            event["properties"] = json.loads(parts[2])
        except ValueError as exc:
            raise CommandError(f"--event {value}: the properties after the second @ are not JSON.") from exc
    return event


def _approval(value: str) -> tuple[str, str]:
    step, _, decision = value.partition("=")
    if not step or decision not in DECISIONS:
        raise CommandError(f"--approval {value}: write STEP={'|'.join(DECISIONS)}.")
    return step, decision


def _moment(value: str) -> str:
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M %Z").strip()


def _elapsed(start: str, at: str) -> str:
    seconds = int((datetime.fromisoformat(at) - datetime.fromisoformat(start)).total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    return f"+{days}d {hours:02d}:{rest // 60:02d}"


def _summary(item: dict) -> str:
    output = item["output"] or {}
    if item["type"] == "end":
        reason = output.get("reason")
        return f"ends: {item['decision']}" + (f" ({reason})" if reason else "")
    if item["decision"] == "wait":
        kind = output.get("kind")
        if kind == "delay":
            return f"waits until {_moment(output['until'])}"
        if kind == "event":
            return f"waits for {output['event']} until {_moment(output['deadline'])}"
        if kind == "approval":
            return f"waits for approval until {_moment(output['deadline'])}"
        if kind == "merge":
            return "waits for the other branches"
        return f"waits ({kind})"
    text = f"{item['decision']} → {item['next'] or 'end'}"
    if "dry_run" in output:
        text += f"   would: {json.dumps(output['dry_run'], ensure_ascii=False, default=str)}"
    elif output and item["type"] != "delay":
        text += f"   {json.dumps(output, ensure_ascii=False, default=str)}"
    return text


class Command(BaseCommand):
    help = "Shows the path a contact would take through a workflow, on a simulated clock; sends and writes nothing."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="The organisation's slug.")
        parser.add_argument("--workflow", required=True, help="The workflow's slug.")
        parser.add_argument("--contact", required=True, help="The contact's email.")
        parser.add_argument("--draft", action="store_true", help="Run the draft, not the live version.")
        parser.add_argument("--start", help="The simulated start, ISO-8601 (default: now).")
        parser.add_argument(
            "--event",
            action="append",
            default=[],
            metavar="TYPE@DURATION",
            help='A simulated event after the start, e.g. email_clicked@P1D or form_submitted@PT2H@{"form":"demo"}. '
            "Repeat for more.",
        )
        parser.add_argument(
            "--approval",
            action="append",
            default=[],
            metavar="STEP=DECISION",
            help=f"How an approval step is decided ({', '.join(DECISIONS)}); others are approved.",
        )
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args, **options):
        organization = Organization.objects.filter(slug=options["org"]).first()
        if organization is None:
            raise CommandError(f"No organisation with slug '{options['org']}'.")
        start = None
        if options["start"]:
            try:
                start = datetime.fromisoformat(options["start"])
            except ValueError as exc:
                raise CommandError(f"--start {options['start']}: not an ISO-8601 datetime.") from exc
        events = [_event(value) for value in options["event"]]
        approvals = dict(_approval(value) for value in options["approval"])
        with org_context(organization):
            workflow = (
                Workflow.objects.filter(org=organization, slug=options["workflow"])
                .select_related("live_version")
                .first()
            )
            if workflow is None:
                raise CommandError(f"No workflow with slug '{options['workflow']}' in {organization.slug}.")
            email = options["contact"].strip().lower()
            contact = Contact.objects.filter(org=organization, email=email).select_related("company").first()
            if contact is None:
                raise CommandError(f"No contact with email '{email}' in {organization.slug}.")
            try:
                result = workflow_dry_run(
                    workflow=workflow,
                    contact=contact,
                    start=start,
                    draft=options["draft"],
                    events=events,
                    approve=approvals or True,
                )
            except ValidationError as exc:
                messages = [f"{k}: {m}" for k, ms in exc.message_dict.items() for m in ms]
                raise CommandError("; ".join(messages)) from exc
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2, ensure_ascii=False, default=str))
            return
        self._print(result)

    def _print(self, result: dict) -> None:
        start = result["started_at"]
        self.stdout.write(
            f"Dry run of “{result['workflow']['name']}” ({result['definition']}) for {result['contact']['email']}, "
            f"from {_moment(start)}:"
        )
        for item in result["path"]:
            step = item["step"] or ""
            label = f"{step} ({item['type']})" if step else ""
            self.stdout.write(f"  {_elapsed(start, item['at'])}  {label:<32} {_summary(item)}")
        if result["ended_at"]:
            ending = f"Ended {result['result']} at {_moment(result['ended_at'])}"
        elif result["stopped"] == "max_steps":
            ending = f"Stopped after {result['steps_run']} steps (the limit), at {', '.join(result['waiting_at'])}"
        else:
            ending = f"Still waiting at {', '.join(result['waiting_at'])} on {_moment(result['simulated_until'])}"
        self.stdout.write(f"{ending}. {len(result['actions'])} action(s) previewed; nothing was sent or written.")
