"""Demo data of channels (part of ``seed_demo``): a published ``welcome`` email template."""

from channels_app.models import MessageTemplate
from channels_app.template_versions import template_publish
from marketing.demo import demo_seeder

WELCOME = [
    {
        "name": "A",
        "weight": 50,
        "subject": "Welcome to {{ org.name }}, {{ first_name | default: 'friend' }}",
        "preheader": "Three things to try this week",
        "html": "<h1>Hi {{ first_name | default: 'there' }}!</h1>"
        "<p>Thanks for signing up{% if company.name %} from {{ company.name }}{% endif %}.</p>"
        "<p><a href='https://acme.example/start?utm_source=email&utm_campaign=welcome'>Get started</a></p>",
    },
    {
        "name": "B",
        "weight": 50,
        "subject": "{{ first_name | default: 'Hello' }}, your account is ready",
        "html": "<p>Your {{ org.name }} account is ready.</p>"
        "<p><a href='https://acme.example/tour?utm_source=email&utm_campaign=welcome'>Take the tour</a></p>",
    },
]


@demo_seeder
def demo_templates(*, org, users, stdout) -> None:
    """The ``welcome`` email (two variants), published once."""
    template, _ = MessageTemplate.objects.get_or_create(
        org=org, slug="welcome", defaults={"name": "Welcome", "channel": "email", "variants": WELCOME}
    )
    if template.live_version_id is None:
        template_publish(template=template)
        stdout.write("Email template 'welcome' published.")
