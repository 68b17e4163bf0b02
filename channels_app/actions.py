"""The channel actions of workflows (registered in ``workflows.actions``): ``send_email``,
``send_sms`` and ``send_push`` send a template to the run's contact.

``run`` writes the outbox row in the engine's transaction, under the step's idempotency key:
that is step 1 of the delivery protocol (docs/workflows.md), the step claim and the ``Message``
committing together. The outbox sends it after commit, outside any transaction.
"""

from typing import ClassVar

from channels_app.models import Channel, MessageTemplate
from workflows.actions import Action, ActionContext, PermanentError, action

TEMPLATE = {"type": "string", "minLength": 1, "maxLength": 100, "title": "Message template"}


def _template(org, slug: str, channel: str) -> MessageTemplate | None:
    return MessageTemplate.objects.filter(org=org, slug=slug, channel=channel).select_related("live_version").first()


def _label(channel: str) -> str:
    label = Channel(channel).label
    return label if label.isupper() else label.lower()  # "email", "web push", "SMS"


class SendTemplate(Action):
    """Base of the send actions: one message from a template of ``channel`` through the outbox.

    Subclasses set ``name``, ``label`` and ``channel``; ``to`` (None: the provider's address for
    the contact) and ``extra_properties`` let a destination-based channel name its target.
    """

    channel: ClassVar[str] = ""
    extra_properties: ClassVar[dict] = {}
    external = True  # leaves the system through the outbox's own delivery protocol

    @property
    def config_schema(self) -> dict:
        return {
            "type": "object",
            "required": ["template", *self.extra_properties],
            "properties": {"template": TEMPLATE, **self.extra_properties},
            "additionalProperties": False,
        }

    @property
    def ui(self) -> dict[str, str]:
        widgets = {"template": f"ref:message_template:{self.channel}"}
        if "destination" in self.extra_properties:
            widgets["destination"] = f"ref:destination:{self.channel}"
        return widgets

    def check(self, config, *, org):
        slug = config.get("template", "")
        template = MessageTemplate.objects.filter(org=org, slug=slug).first()
        if template is None:
            return [f"template: there is no template “{slug}”."]
        if template.channel != self.channel:
            return [f"template: “{slug}” is for {template.get_channel_display()}, not {_label(self.channel)}."]
        return []

    def to(self, ctx: ActionContext) -> str | None:
        """The message's address; None: the channel provider's address for the contact."""
        return None

    def run(self, ctx: ActionContext) -> dict:
        from channels_app.outbox import UnpublishedTemplateError, message_enqueue
        from channels_app.rendering import RenderError

        template = _template(ctx.org, ctx.config["template"], self.channel)
        if template is None:
            raise PermanentError(f"template: there is no {_label(self.channel)} template “{ctx.config['template']}”.")
        try:
            message = message_enqueue(
                org=ctx.org,
                contact=ctx.contact,
                template=template,
                idempotency_key=ctx.idempotency_key,
                instance=ctx.instance,
                step_id=ctx.step_id,
                now=ctx.now,
                to=self.to(ctx),
            )
        except (UnpublishedTemplateError, RenderError) as exc:
            raise PermanentError(str(exc)) from exc
        return {"message": message.pk}

    def preview(self, ctx: ActionContext) -> dict:
        """What this step would send, rendered for the contact; no writes."""
        from channels_app import rendering
        from channels_app.outbox import _address

        template = _template(ctx.org, ctx.config.get("template", ""), self.channel)
        if template is None or template.live_version is None:
            return {"would": self.name, "template": ctx.config.get("template"), "error": "no published template"}
        variant = rendering.choose_variant(
            template.live_version.variants, contact_id=ctx.contact.pk, template_id=template.pk
        )
        data = rendering.template_data(
            facts=ctx.facts, org=ctx.org, message={"channel": self.channel, "purpose": template.purpose}
        )
        try:
            content = rendering.render(variant, data, channel=self.channel)
        except rendering.RenderError as exc:
            return {"would": self.name, "template": template.slug, "error": str(exc)}
        to = self.to(ctx)
        return {
            "would": self.name,
            "template": template.slug,
            "variant": variant.get("name", ""),
            "to": _address(ctx.contact, self.channel) if to is None else to,
            **{field: content[field] for field in ("subject", "title", "text") if field in content},
        }

    def _published(self, org, config: dict) -> MessageTemplate | None:
        return (
            MessageTemplate.objects.filter(org=org, slug=config.get("template", ""), channel=self.channel)
            .exclude(live_version=None)
            .first()
        )

    def dry_run_verdict(self, *, org, contact, config, at, earlier):
        """The outbox's guards (the one function sending asks) for this step at ``at``, counting
        the stored messages plus the run's earlier sends they let through (``earlier`` holds
        ``EarlierSend``s); None when the template has no published version (nothing is sent)."""
        from channels_app.outbox import SEND, EarlierSend, _address, send_guards
        from workflows.engine import iso

        template = self._published(org, config)
        if template is None:
            return None
        to = config["destination"] if "destination" in config else _address(contact, self.channel)
        verdict = send_guards(
            org=org,
            contact=contact,
            channel=self.channel,
            purpose=template.purpose,
            to=to,
            now=at,
            earlier=earlier,
            template=template,
        )
        if verdict.verdict == SEND:
            earlier.append(EarlierSend(self.channel, template.purpose, at))
        return {
            "verdict": verdict.verdict,
            "kind": verdict.kind,
            "reason": verdict.reason,
            "until": iso(verdict.until) if verdict.until else None,
        }

    def projection_send(self, *, org, config):
        """The message every member would get, or None when the template has no published version."""
        template = self._published(org, config)
        if template is None:
            return None
        return {"channel": self.channel, "purpose": template.purpose, "destination": config.get("destination")}

    def projection_guards(self, *, org, members, sends, counted, memo):
        """The outbox's guards as one grouped query (``channels_app.send_projection``)."""
        from channels_app.send_projection import guard_counts, time_zones

        if "zones" not in memo:
            memo["zones"] = time_zones(org)
        return guard_counts(org=org, members=members, sends=sends, counted=counted, zones=memo["zones"])


@action
class SendEmail(SendTemplate):
    """Sends one email from a template through the outbox, e.g. {"template": "welcome"}."""

    name = "send_email"
    label = "Send an email"
    description = "Sends the contact an email from one of your email templates."
    channel = Channel.EMAIL


@action
class SendSMS(SendTemplate):
    """Sends one text message from an SMS template through the outbox, e.g. {"template": "reminder"}."""

    name = "send_sms"
    label = "Send an SMS"
    description = "Sends the contact a text message from one of your SMS templates."
    channel = Channel.SMS


@action
class SendPush(SendTemplate):
    """Sends one web-push notification from a push template to the contact's browsers."""

    name = "send_push"
    label = "Send a web push"
    description = "Sends a notification to the browsers where the contact allowed them."
    channel = Channel.PUSH


class SendToDestination(SendTemplate):
    """Base of the destination-based actions: the message goes to the named ``destination`` of
    the org (its slug is the message's ``to``), about the run's contact."""

    extra_properties: ClassVar[dict] = {
        "destination": {"type": "string", "minLength": 1, "maxLength": 100, "title": "Destination"}
    }

    def check(self, config, *, org):
        from channels_app.destinations import destination_problems

        problems = super().check(config, org=org)
        return problems + destination_problems(org=org, slug=config.get("destination", ""), channel=self.channel)

    def to(self, ctx: ActionContext) -> str | None:
        return ctx.config["destination"]


@action
class NotifySlack(SendToDestination):
    """Posts a Slack template to a Slack destination, e.g. {"template": "new-mql", "destination": "sales"}."""

    name = "notify_slack"
    label = "Notify Slack"
    description = "Posts a message about the contact to one of your Slack channels."
    channel = Channel.SLACK


@action
class PostSocial(SendToDestination):
    """Posts a social template as a social destination's account, e.g. {"template": "launch",
    "destination": "company-mastodon"}."""

    name = "post_social"
    label = "Post to social"
    description = "Posts from one of your social accounts."
    channel = Channel.SOCIAL
