"""Webhook destinations: the rendered message POSTed as JSON to a URL the org chose.

The body is ``{"message": <id>, "contact": {id, email, first_name, last_name}, "text": …,
"payload": …}``, signed with the destination's secret (``X-Signature: t=<unix>,v1=<hmac>``, see
``workflows.outbound_http.signature_valid``) and carrying ``Idempotency-Key: <the message's
key>`` so the receiver can drop the repeat a dead sender may cause (docs/workflows.md).
"""

from channels_app.destinations import destination_for_message, destination_logged, destination_post
from channels_app.providers import Provider, provider

CONTACT_FIELDS = ("id", "email", "first_name", "last_name")


def webhook_body(message) -> dict:
    """What the receiver gets: the message id, a minimal contact and the rendered fields."""
    contact = message.contact
    content = message.content or {}
    return {
        "message": message.pk,
        "contact": {field: getattr(contact, field) for field in CONTACT_FIELDS} if contact else None,
        **{field: content[field] for field in ("text", "payload") if field in content},
    }


@provider
class Webhook(Provider):
    """POSTs to a webhook destination through the SSRF guard; 2xx is sent, 408, 429, 5xx and
    network errors are transient, other 4xx permanent."""

    name = "webhook"
    channel = "webhook"

    def send(self, message, session=None) -> str:
        destination = destination_for_message(message)
        if logged := destination_logged(destination, message):
            return logged
        destination_post(
            destination.url,
            body=webhook_body(message),
            idempotency_key=message.idempotency_key,
            secret=destination.secret,
        )
        return message.idempotency_key
