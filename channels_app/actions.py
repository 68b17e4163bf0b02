"""The channel actions of workflows (registered in ``workflows.actions``): ``send_email``.

``run`` writes the outbox row in the engine's transaction, under the step's idempotency key:
that is step 1 of the delivery protocol (CONTRACTS.md §6), the step claim and the ``Message``
committing together. The outbox sends it after commit, outside any transaction.
"""

from channels_app.models import Channel, MessageTemplate
from workflows.actions import Action, ActionContext, PermanentError, action

TEMPLATE = {"type": "string", "minLength": 1, "maxLength": 100}


def _template(org, slug: str, channel: str) -> MessageTemplate | None:
    return MessageTemplate.objects.filter(org=org, slug=slug, channel=channel).select_related("live_version").first()


@action
class SendEmail(Action):
    """Sends one email from a template through the outbox, e.g. {"template": "welcome"}."""

    name = "send_email"
    label = "Send an email"
    config_schema = {
        "type": "object",
        "required": ["template"],
        "properties": {"template": TEMPLATE},
        "additionalProperties": False,
    }
    external = True  # leaves the system through the outbox's own delivery protocol

    def check(self, config, *, org):
        slug = config.get("template", "")
        template = MessageTemplate.objects.filter(org=org, slug=slug).first()
        if template is None:
            return [f"template: there is no template “{slug}”."]
        if template.channel != Channel.EMAIL:
            return [f"template: “{slug}” is for {template.get_channel_display()}, not email."]
        return []

    def run(self, ctx: ActionContext) -> dict:
        from channels_app.outbox import UnpublishedTemplateError, message_enqueue
        from channels_app.rendering import RenderError

        template = _template(ctx.org, ctx.config["template"], Channel.EMAIL)
        if template is None:
            raise PermanentError(f"template: there is no email template “{ctx.config['template']}”.")
        try:
            message = message_enqueue(
                org=ctx.org,
                contact=ctx.contact,
                template=template,
                idempotency_key=ctx.idempotency_key,
                instance=ctx.instance,
                step_id=ctx.step_id,
                now=ctx.now,
            )
        except (UnpublishedTemplateError, RenderError) as exc:
            raise PermanentError(str(exc)) from exc
        return {"message": message.pk}

    def preview(self, ctx: ActionContext) -> dict:
        """The subject and recipient this step would send, rendered for the contact; no writes."""
        from channels_app import rendering

        template = _template(ctx.org, ctx.config.get("template", ""), Channel.EMAIL)
        if template is None or template.live_version is None:
            return {"would": self.name, "template": ctx.config.get("template"), "error": "no published template"}
        variant = rendering.choose_variant(
            template.live_version.variants, contact_id=ctx.contact.pk, template_id=template.pk
        )
        data = rendering.template_data(
            facts=ctx.facts, org=ctx.org, message={"channel": Channel.EMAIL, "purpose": template.purpose}
        )
        try:
            content = rendering.render(variant, data, channel=Channel.EMAIL)
        except rendering.RenderError as exc:
            return {"would": self.name, "template": template.slug, "error": str(exc)}
        return {
            "would": self.name,
            "template": template.slug,
            "variant": variant.get("name", ""),
            "to": ctx.contact.email,
            "subject": content.get("subject", ""),
        }
