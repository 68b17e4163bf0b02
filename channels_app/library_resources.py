"""The message templates and destinations a library template names, made and checked for
``workflows.library_use`` and publishing (registered in ``ChannelsAppConfig.ready``)."""

from channels_app.models import Destination, MessageTemplate
from channels_app.template_versions import template_publish
from workflows.library_resources import LibraryResource


class MessageTemplateResource(LibraryResource):
    kind = "message_template"
    needs_key = "message_templates"
    config_field = "template"

    def ensure(self, *, org, slug, spec, origin, ready):
        """A draft template from the library's content (published at once when ``ready``)."""
        if spec is None and not MessageTemplate.objects.filter(org=org, slug=slug).exists():
            return None
        template, made = MessageTemplate.objects.get_or_create(
            org=org,
            slug=slug,
            defaults={
                "name": spec.name if spec else slug,
                "channel": spec.channel if spec else "",
                "purpose": spec.purpose if spec else "",
                "variants": spec.variants if spec else [],
                "library_template": origin,
            },
        )
        if ready and template.live_version_id is None:
            template_publish(template=template)
        return not made

    def publish_problems(self, *, org, slugs):
        drafts = MessageTemplate.objects.filter(org=org, slug__in=slugs, live_version__isnull=True)
        return {
            slug: f"the message template “{slug}” is not published; review and publish it first."
            for slug in drafts.values_list("slug", flat=True)
        }


class DestinationResource(LibraryResource):
    kind = "destination"
    needs_key = "destinations"
    config_field = "destination"

    def ensure(self, *, org, slug, spec, origin, ready):
        """A destination without a URL (its messages are logged until someone gives it one),
        inactive unless ``ready``."""
        if spec is None and not Destination.objects.filter(org=org, slug=slug).exists():
            return None
        destination, made = Destination.objects.get_or_create(
            org=org,
            slug=slug,
            defaults={
                "name": spec.name if spec else slug,
                "channel": spec.channel if spec else "",
                "url": "",
                "active": ready,
                "library_template": origin,
            },
        )
        if ready and not destination.active and destination.library_template:
            Destination.objects.filter(pk=destination.pk).update(active=True)
        return not made

    def publish_problems(self, *, org, slugs):
        inactive = Destination.objects.filter(org=org, slug__in=slugs, active=False)
        return {
            slug: f"the destination “{slug}” is inactive; activate it first."
            for slug in inactive.values_list("slug", flat=True)
        }
