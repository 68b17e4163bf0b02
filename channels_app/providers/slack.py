"""Slack through incoming webhooks: the rendered ``text`` and/or ``payload`` posted to the
destination's webhook URL.

slack_sdk's ``WebhookClient`` builds the request body (Block Kit objects, fallback text) and
the response, but its own transport is ``urllib``, which would resolve and connect to whatever
the URL's host says at call time. The URL is typed in by a user, so the HTTP call goes through
``workflows.outbound_http.request`` instead: the host is resolved once, must be public (or
allowed), and the connection is pinned to that checked address. slack_sdk's retry handlers are
off: a retry is the outbox's job (backoff, a new attempt, the lease), not a sleep inside a send.

Slack's webhooks know no idempotency key (the header is sent anyway), so a message whose sender
died after Slack accepted it is posted again (docs/workflows.md); Slack answers "ok", so the
provider's id is the message's idempotency key.
"""

import logging

from slack_sdk.webhook import WebhookClient, WebhookResponse

from channels_app.destinations import destination_for_message, destination_logged, destination_post
from channels_app.providers import PermanentError, Provider, provider

logger = logging.getLogger(__name__)


class GuardedWebhookClient(WebhookClient):
    """A ``WebhookClient`` whose requests go through the SSRF guard, carrying ``idempotency_key``,
    without slack_sdk's own retries. Raises the outbox's TransientError / PermanentError."""

    def __init__(self, url: str, *, idempotency_key: str):
        super().__init__(url=url, retry_handlers=[], logger=logger)
        self.idempotency_key = idempotency_key

    def _perform_http_request(self, *, body: dict, headers: dict[str, str]) -> WebhookResponse:
        response = destination_post(self.url, body=body, idempotency_key=self.idempotency_key)
        return WebhookResponse(
            url=self.url, status_code=response.status_code, body=response.text, headers=dict(response.headers)
        )


def slack_body(content: dict) -> dict:
    """The webhook body of rendered ``content``: a list ``payload`` is the blocks; an object
    ``payload`` is the whole message (blocks, attachments, unfurl_links, …); ``text`` is the text
    (the notification's fallback when there are blocks)."""
    payload = content.get("payload")
    body = dict(payload) if isinstance(payload, dict) else {"blocks": payload} if isinstance(payload, list) else {}
    if content.get("text"):
        body["text"] = content["text"]
    return body


@provider
class SlackWebhook(Provider):
    """Posts to a Slack destination's incoming webhook; 408, 429 and 5xx are transient, other
    4xx (a revoked webhook, an archived channel, an invalid payload) permanent."""

    name = "slack"
    channel = "slack"

    def send(self, message, session=None) -> str:
        destination = destination_for_message(message)
        if logged := destination_logged(destination, message):
            return logged
        body = slack_body(message.content or {})
        if not body:
            raise PermanentError("content: a Slack message needs a text or a payload.")
        GuardedWebhookClient(destination.url, idempotency_key=message.idempotency_key).send_dict(body)
        return message.idempotency_key
