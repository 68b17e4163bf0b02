"""Request body limits per route, enforced in front of Django (``marketing.asgi`` wraps the app).

Django reads a whole body before a view can look at its size (under ASGI into a temporary file,
under WSGI when ``request.body`` is touched), so a limit checked in the view comes after a 300 MB
upload was already read. This wrapper answers 413 before the body is read:

- a request whose ``Content-Length`` is over its route's limit is refused before the first
  ``receive()``, so not one byte of the body is read;
- a body without ``Content-Length`` (chunked) is counted as the app reads it; at the first chunk
  that takes it over the limit the wrapper answers 413 and tells the app the client went away
  (Django then drops the request), so at most the limit plus one chunk is read.

The limits (``ROUTE_LIMITS``, the first matching path prefix wins) are listed in docs/api.md.
An ASGI server may buffer a body before the app sees it (daphne does), so the reverse proxy's
own body limit stays the outer guard.
"""

import json
from collections.abc import Awaitable, Callable

KB = 1024
MB = 1024 * KB

# (path prefix, bytes), most specific first.
ROUTE_LIMITS: tuple[tuple[str, int], ...] = (
    ("/admin/marketing/importjob/add/", 200 * MB),  # the console's CSV import (streamed to disk)
    ("/api/v1/events/", 5 * MB),  # event batches
    ("/v1/", 500 * KB),  # the tracking API (browser SDKs)
    ("/t/forms/", 64 * KB),  # public forms
    ("/hooks/", 1 * MB),  # inbound webhooks: workflows, ESPs
    ("/m/sms/", 1 * MB),  # Twilio's callbacks
)
DEFAULT_LIMIT = 6 * MB
JSON_PREFIXES = ("/api/", "/v1/", "/hooks/")

Scope = dict
Message = dict
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def body_limit(path: str) -> int:
    """The largest request body, in bytes, that ``path`` accepts."""
    for prefix, limit in ROUTE_LIMITS:
        if path.startswith(prefix):
            return limit
    return DEFAULT_LIMIT


def _size(limit: int) -> str:
    return f"{limit // MB} MB" if limit % MB == 0 else f"{limit // KB} KB"


def _header(scope: Scope, name: bytes) -> list[bytes]:
    return [value for key, value in scope.get("headers", ()) if key.lower() == name]


async def _refuse(scope: Scope, send: Send, *, status: int, detail: str) -> None:
    """Answers ``status`` with ``detail``: JSON (``{"detail": …}``, as the API's errors) on API
    routes or to a JSON request, plain text elsewhere. The connection is closed after it, since
    the unread body is still on it."""
    content_type = b"".join(_header(scope, b"content-type")[:1]).split(b";")[0].strip().lower()
    if scope["path"].startswith(JSON_PREFIXES) or content_type == b"application/json":
        body, kind = json.dumps({"detail": detail}).encode(), b"application/json"
    else:
        body, kind = detail.encode(), b"text/plain; charset=utf-8"
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimits:
    """ASGI middleware: refuses request bodies over their route's limit (``body_limit``) with a
    413, by ``Content-Length`` before reading and by counting bodies sent without one."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        limit = body_limit(path)
        detail = f"Request body over {_size(limit)}, the limit of this route."
        declared = _header(scope, b"content-length")
        if declared:
            text = declared[0].decode("latin-1").strip()
            if len(declared) > 1 or not text.isdigit():
                return await _refuse(scope, send, status=400, detail="Content-Length is not a number.")
            if int(text) > limit:
                return await _refuse(scope, send, status=413, detail=detail)

        received = 0
        cut = False  # over the limit: no more of the body is read, the app sees the client leave
        answered = False  # the wrapper has sent the 413: what the app sends after it is dropped
        started = False  # the app has started its response: too late for a 413

        async def counted_receive() -> Message:
            nonlocal received, cut, answered
            if cut:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    cut = True
                    if not started:
                        answered = True
                        await _refuse(scope, send, status=413, detail=detail)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if answered:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        return await self.app(scope, counted_receive, guarded_send)
