"""The actions that need no other app: contact fields, tags, lists, variables, enrolment in
another workflow, HTTP requests and webhooks, log lines and console notifications."""

import json
import logging

import httpx
from django.core.exceptions import ValidationError

from marketing.conditions import evaluate
from marketing.consent_providers import consent_allowed_ids
from marketing.models import Contact, ContactList
from workflows import outbound_http
from workflows.actions import Action, ActionContext, PermanentError, RetryableError, action

logger = logging.getLogger("workflows.actions")

SALE_SHARING = "sale_sharing"  # the consent purpose a webhook acts on: the contact goes to a third party

CONTACT_FIELDS = [
    "first_name",
    "last_name",
    "phone",
    "job_title",
    "country",
    "time_zone",
    "locale",
    "lifecycle_stage",
    "lead_status",
]
NAME = {"type": "string", "minLength": 1, "maxLength": 100}
# Any JSON value: what a field or variable is set to.
VALUE = {
    "type": ["string", "number", "boolean", "null", "object", "array"],
    "title": "Value",
    "description": "The value to set.",
}
VALUE_FROM = {
    "type": "string",
    "minLength": 1,
    "title": "Value from",
    "description": "Copy the value found here instead, e.g. workflow.trigger.properties.plan.",
}


def _value(config: dict, facts: dict):
    """A literal ``value``, or the value at the ``value_from`` path of the run's facts."""
    if "value_from" in config:
        return evaluate({"var": config["value_from"]}, facts)
    return config.get("value")


@action
class UpdateField(Action):
    """Sets a contact field or custom property, e.g. {"field": "properties.plan", "value": "pro"}."""

    name = "update_field"
    label = "Update a contact field"
    description = "Sets a field of the contact (e.g. lifecycle stage) or one of its custom properties."
    config_schema = {
        "type": "object",
        "required": ["field"],
        "properties": {
            "field": {
                "type": "string",
                "pattern": r"^(properties\.[A-Za-z0-9_]+|[a-z_]+)$",
                "title": "Field",
                "description": "The contact field to set.",
            },
            "value": VALUE,
            "value_from": VALUE_FROM,
        },
        "oneOf": [{"title": "A value", "required": ["value"]}, {"title": "Copied from", "required": ["value_from"]}],
        "additionalProperties": False,
    }
    ui = {"field": "contact_field"}

    def check(self, config, *, org):
        field = config.get("field", "")
        if not field.startswith("properties.") and field not in CONTACT_FIELDS:
            return [f"field: “{field}” cannot be set; use one of {', '.join(CONTACT_FIELDS)} or properties.<key>."]
        return []

    def run(self, ctx: ActionContext) -> dict:
        from marketing.services import contact_update

        field, value = ctx.config["field"], _value(ctx.config, ctx.facts)
        if field.startswith("properties."):
            changes = {"properties": {**ctx.contact.properties, field.split(".", 1)[1]: value}}
        else:
            changes = {field: value}
        try:
            contact_update(contact=ctx.contact, **changes)
        except ValidationError as exc:
            raise PermanentError(f"{field}: {'; '.join(exc.messages)}") from exc
        return {"field": field, "value": value}


class _TagAction(Action):
    config_schema = {
        "type": "object",
        "required": ["tags"],
        "properties": {
            "tags": {"type": "array", "items": {**NAME, "title": "Tag"}, "minItems": 1, "title": "Tags"},
        },
        "additionalProperties": False,
    }
    ui = {"tags": "ref:tag"}  # picked among the org's tags (new ones are made on the Tags page)

    def _contacts(self, ctx):
        return Contact.objects.filter(pk=ctx.contact.pk)


@action
class AddTag(_TagAction):
    """Adds tags to the contact (creating them as needed)."""

    name = "add_tag"
    label = "Add tags"
    description = "Tags the contact (a new tag is created as needed)."

    def run(self, ctx):
        from marketing.services import contacts_tag

        contacts_tag(org=ctx.org, contacts=self._contacts(ctx), names=ctx.config["tags"])
        return {"tags": ctx.config["tags"]}


@action
class RemoveTag(_TagAction):
    """Removes tags from the contact."""

    name = "remove_tag"
    label = "Remove tags"
    description = "Takes tags off the contact."

    def run(self, ctx):
        from marketing.models import Tag
        from marketing.services import contacts_untag

        tags = Tag.objects.filter(org=ctx.org, name__in=ctx.config["tags"])
        contacts_untag(org=ctx.org, contacts=self._contacts(ctx), tags=tags)
        return {"tags": ctx.config["tags"]}


class _ListAction(Action):
    config_schema = {
        "type": "object",
        "required": ["list"],
        "properties": {"list": {**NAME, "title": "List"}},
        "additionalProperties": False,
    }
    ui = {"list": "ref:list"}

    def check(self, config, *, org):
        if org is not None and not ContactList.objects.filter(org=org, slug=config.get("list")).exists():
            return [f"list: no list with slug “{config.get('list')}”."]
        return []

    def _list(self, ctx) -> ContactList:
        try:
            return ContactList.objects.get(org=ctx.org, slug=ctx.config["list"])
        except ContactList.DoesNotExist as exc:
            raise PermanentError(f"list: no list with slug “{ctx.config['list']}” (deleted?).") from exc


@action
class AddToList(_ListAction):
    """Puts the contact on a static list."""

    name = "add_to_list"
    label = "Add to a list"
    description = "Puts the contact on a static list."

    def run(self, ctx):
        from marketing.services import contacts_add_to_list

        contacts_add_to_list(
            org=ctx.org, contacts=Contact.objects.filter(pk=ctx.contact.pk), contact_list=self._list(ctx)
        )
        return {"list": ctx.config["list"]}


@action
class RemoveFromList(_ListAction):
    """Takes the contact off a static list."""

    name = "remove_from_list"
    label = "Remove from a list"
    description = "Takes the contact off a static list."

    def run(self, ctx):
        from marketing.services import contacts_remove_from_list

        removed = contacts_remove_from_list(
            org=ctx.org, contacts=Contact.objects.filter(pk=ctx.contact.pk), contact_list=self._list(ctx)
        )
        return {"list": ctx.config["list"], "removed": bool(removed)}


@action
class SetVariable(Action):
    """Sets a run variable (``workflow.vars.<name>``) that later steps' conditions read."""

    name = "set_variable"
    label = "Set a variable"
    description = "Remembers a value for this run, for later steps' conditions (workflow.vars.<name>)."
    writes_database = False
    config_schema = {
        "type": "object",
        "required": ["name"],
        "properties": {"name": {**NAME, "title": "Variable"}, "value": VALUE, "value_from": VALUE_FROM},
        "oneOf": [{"title": "A value", "required": ["value"]}, {"title": "Copied from", "required": ["value_from"]}],
        "additionalProperties": False,
    }

    def run(self, ctx):
        value = _value(ctx.config, ctx.facts)
        ctx.instance.context.setdefault("vars", {})[ctx.config["name"]] = value
        return {"name": ctx.config["name"], "value": value}

    def preview(self, ctx):
        return self.run(ctx)  # it only changes the run's own variables


@action
class EnrolInWorkflow(Action):
    """Enrols the contact in another workflow (once per visit of this step)."""

    name = "enrol_in_workflow"
    label = "Enrol in another workflow"
    description = "Starts the contact on another workflow."
    config_schema = {
        "type": "object",
        "required": ["workflow"],
        "properties": {"workflow": {**NAME, "title": "Workflow"}},
        "additionalProperties": False,
    }
    ui = {"workflow": "ref:workflow"}

    def check(self, config, *, org):
        from workflows.models import Workflow

        if org is not None and not Workflow.objects.filter(org=org, slug=config.get("workflow")).exists():
            return [f"workflow: no workflow with slug “{config.get('workflow')}”."]
        return []

    def run(self, ctx):
        from workflows.models import Workflow
        from workflows.services import workflow_enrol

        workflow = Workflow.objects.filter(org=ctx.org, slug=ctx.config["workflow"]).first()
        if workflow is None:
            raise PermanentError(f"workflow: no workflow with slug “{ctx.config['workflow']}”.")
        enrolled = workflow_enrol(
            workflow=workflow,
            contact_ids=[ctx.contact.pk],
            trigger_type="workflow",
            trigger_key=f"step:{ctx.idempotency_key}",
            trigger_data={"from_instance": ctx.instance.pk},
        )
        return {"workflow": workflow.slug, "enrolled": enrolled}


@action
class Log(Action):
    """Writes a log line (and the step's result), e.g. for auditing a branch."""

    name = "log"
    label = "Log a line"
    description = "Writes a line to the run's history and the server log, e.g. to mark which path a contact took."
    writes_database = False
    config_schema = {
        "type": "object",
        "required": ["message"],
        "properties": {
            "message": {"type": "string", "maxLength": 1000, "title": "Message"},
            "level": {
                "title": "Level",
                "type": "string",
                "oneOf": [{"const": "info", "title": "Information"}, {"const": "warning", "title": "Warning"}],
            },
        },
        "additionalProperties": False,
    }

    def run(self, ctx):
        level = logging.WARNING if ctx.config.get("level") == "warning" else logging.INFO
        logger.log(
            level,
            "workflow log instance=%s step=%s message=%s",
            ctx.instance.pk,
            ctx.step_id,
            json.dumps(ctx.config["message"]),
        )
        return {"message": ctx.config["message"]}


@action
class Notify(Action):
    """Shows a notification in the console's live feed of the workflow (and logs it)."""

    name = "notify"
    label = "Notify the console"
    description = "Shows a message in the workflow's live feed in the console."
    writes_database = False
    config_schema = {
        "type": "object",
        "required": ["message"],
        "properties": {"message": {"type": "string", "minLength": 1, "maxLength": 1000, "title": "Message"}},
        "additionalProperties": False,
    }

    def run(self, ctx):
        from workflows.live_status import notification_publish

        notification_publish(instance=ctx.instance, step_id=ctx.step_id, message=ctx.config["message"])
        logger.info(
            "workflow notify instance=%s step=%s message=%s",
            ctx.instance.pk,
            ctx.step_id,
            json.dumps(ctx.config["message"]),
        )
        return {"message": ctx.config["message"]}


HEADERS = {
    "type": "object",
    "title": "Headers",
    "description": "Extra HTTP headers, name and value.",
    "additionalProperties": {"type": "string", "maxLength": 2000, "title": "Value"},
    "maxProperties": 20,
}
URL = {"type": "string", "maxLength": 2000, "title": "URL", "description": "An https:// address on the internet."}


class _Outbound(Action):
    external = True

    def check(self, config, *, org):
        problem = outbound_http.url_problem(config.get("url", ""))
        return [f"url: {problem}"] if problem else []

    def deliver(self, request, key):
        try:
            response = outbound_http.request(
                request["method"],
                request["url"],
                body=request.get("body"),
                headers=request.get("headers", {}),
                idempotency_key=key,
                secret=request.get("secret", ""),
            )
        except outbound_http.BlockedURLError as exc:
            raise PermanentError(f"url: {exc}") from exc
        except httpx.HTTPError as exc:
            raise RetryableError(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableError(f"HTTP {response.status_code}")
        if response.status_code >= 400:
            raise PermanentError(f"HTTP {response.status_code}: {response.text[:300]}")
        text = response.content[: outbound_http.MAX_RESPONSE_BYTES].decode("utf-8", "replace")
        try:
            body = json.loads(text)
        except ValueError:
            body = text
        return {"status": response.status_code, "body": body}

    def preview(self, ctx):
        return {"would": f"{self._request(ctx)['method']} {ctx.config['url']}"}


@action
class HttpRequest(_Outbound):
    """Calls a URL; the response (status and JSON body) is the step's result for later steps."""

    name = "http_request"
    label = "HTTP request"
    description = "Calls another system's URL; later steps can read its answer."
    config_schema = {
        "type": "object",
        "required": ["url"],
        "properties": {
            "url": URL,
            "method": {
                "title": "Method",
                "type": "string",
                "oneOf": [{"const": m, "title": m} for m in ("GET", "POST", "PUT", "PATCH", "DELETE")],
            },
            "headers": HEADERS,
            "body": {**VALUE, "title": "Body", "description": "What to send (as JSON); not sent with GET."},
            "sign": {
                "type": "boolean",
                "title": "Sign",
                "description": "Add a signature the other system can check with the workflow's secret.",
            },
        },
        "additionalProperties": False,
    }

    def _request(self, ctx):
        method = ctx.config.get("method", "POST")
        return {
            "method": method,
            "url": ctx.config["url"],
            "headers": ctx.config.get("headers", {}),
            "body": ctx.config.get("body") if method != "GET" else None,
            "secret": ctx.instance.workflow.webhook_secret if ctx.config.get("sign") else "",
        }

    def run(self, ctx):
        return ctx.deliver(self._request(ctx))


@action
class Webhook(_Outbound):
    """POSTs the contact, the trigger and the run's variables as JSON, signed with the
    workflow's secret (``X-Signature``) and carrying the step's ``Idempotency-Key``."""

    name = "webhook"
    label = "Webhook"
    description = "Sends the contact and this run's details to another system's URL, signed."
    config_schema = {
        "type": "object",
        "required": ["url"],
        "properties": {"url": URL, "headers": HEADERS},
        "additionalProperties": False,
    }

    def _request(self, ctx):
        facts = {k: v for k, v in ctx.facts.items() if k not in ("workflow",)}
        body = {
            "workflow": ctx.instance.workflow.slug,
            "instance": ctx.instance.pk,
            "step": ctx.step_id,
            "contact": facts,
            "trigger": ctx.instance.context.get("trigger", {}),
            "vars": ctx.instance.context.get("vars", {}),
        }
        return {
            "method": "POST",
            "url": ctx.config["url"],
            "headers": ctx.config.get("headers", {}),
            "body": body,
            "secret": ctx.instance.workflow.webhook_secret,
        }

    def run(self, ctx):
        # The receiver is a third party: a contact who opted out of sale or sharing (as the
        # org's regime has it) is skipped, and the step's result says why.
        if ctx.contact is not None and not consent_allowed_ids(
            org=ctx.org, contact_ids=[ctx.contact.pk], purpose=SALE_SHARING
        ):
            return {"skipped": "not sent: the contact opted out of sale or sharing of their data (sale_sharing)"}
        return ctx.deliver(self._request(ctx))
