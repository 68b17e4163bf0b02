"""Body limits per route, in front of Django: refused by Content-Length before any receive(), and
counted on bodies sent without one (chunked). The ASGI app is called directly with a fake
``receive`` that records its calls."""

import json

import pytest
from asgiref.sync import async_to_sync

from marketing.body_limits import KB, MB, BodyLimits

LIMITS = [
    ("/admin/marketing/importjob/add/", 200 * MB, "200 MB"),
    ("/api/v1/events/", 5 * MB, "5 MB"),
    ("/v1/batch", 500 * KB, "500 KB"),
    ("/t/forms/signup/", 64 * KB, "64 KB"),
    ("/hooks/workflows/7/", 1 * MB, "1 MB"),
    ("/hooks/esp/sendgrid/tracking/", 1 * MB, "1 MB"),
    ("/m/sms/inbound", 1 * MB, "1 MB"),
    ("/api/v1/contacts/", 6 * MB, "6 MB"),
    ("/admin/marketing/contact/add/", 6 * MB, "6 MB"),
]


class Peer:
    """The server's side: a body in chunks for ``receive`` (counting the calls), and what was sent."""

    # An "endless" body ends (the client leaves) after this many chunks, so a guard that fails
    # does not fill the disk with Django's spooled body.
    MAX_CHUNKS = 1000

    def __init__(self, chunks=(), *, endless: bytes | None = None):
        self.chunks, self.endless = list(chunks), endless
        self.receive_calls = 0
        self.sent: list[dict] = []

    async def receive(self) -> dict:
        self.receive_calls += 1
        if self.endless is not None and self.receive_calls <= self.MAX_CHUNKS:
            return {"type": "http.request", "body": self.endless, "more_body": True}
        if not self.chunks:
            return {"type": "http.disconnect"}
        body = self.chunks.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(self.chunks)}

    async def send(self, message: dict) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int | None:
        starts = [m for m in self.sent if m["type"] == "http.response.start"]
        return starts[0]["status"] if starts else None

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")

    def header(self, name: bytes) -> bytes:
        [start] = [m for m in self.sent if m["type"] == "http.response.start"]
        return dict(start["headers"])[name]


class ReadingApp:
    """Reads the whole body as Django's ASGI handler does (until more_body is false, or the
    client leaves), then answers 200 echoing its size."""

    def __init__(self):
        self.calls, self.body, self.disconnected = 0, b"", False

    async def __call__(self, scope, receive, send):
        self.calls += 1
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
                return
            self.body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": str(len(self.body)).encode()})


def http(path: str, *, length: int | None = None, content_type: bytes = b"multipart/form-data; boundary=x"):
    headers = [(b"content-type", content_type)]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {"type": "http", "method": "POST", "path": path, "root_path": "", "headers": headers}


def call(app, scope, peer: Peer) -> None:
    async_to_sync(app)(scope, peer.receive, peer.send)


def test_a_300_mb_upload_is_refused_by_content_length_without_reading_a_byte():
    inner, peer = ReadingApp(), Peer(endless=b"x" * KB)

    call(BodyLimits(inner), http("/admin/marketing/importjob/add/", length=300 * MB), peer)

    assert peer.status == 413 and peer.receive_calls == 0 and inner.calls == 0
    assert peer.body == b"Request body over 200 MB, the limit of this route."
    assert peer.header(b"connection") == b"close"


@pytest.mark.parametrize(("path", "limit", "named"), LIMITS)
def test_each_route_takes_up_to_its_limit_by_content_length(path, limit, named):
    over, under = Peer(endless=b"x"), Peer([b"hello"])
    inner = ReadingApp()

    call(BodyLimits(inner), http(path, length=limit + 1), over)
    call(BodyLimits(inner), http(path, length=limit), under)  # as declared; the body is what it is

    assert over.status == 413 and over.receive_calls == 0
    assert named in over.body.decode()
    assert under.status == 200 and under.body == b"5"


@pytest.mark.parametrize(("path", "limit", "named"), LIMITS[1:])  # 200 MB of chunks is too slow to make here
def test_a_chunked_body_over_the_limit_is_cut_after_at_most_one_chunk_more(path, limit, named):
    chunk = 16 * KB
    inner, peer = ReadingApp(), Peer(endless=b"x" * chunk)

    call(BodyLimits(inner), http(path), peer)

    assert peer.status == 413 and named in peer.body.decode()
    assert peer.receive_calls <= limit // chunk + 1
    assert inner.disconnected and inner.calls == 1  # Django drops a request whose client left
    assert len([m for m in peer.sent if m["type"] == "http.response.start"]) == 1


def test_a_body_under_the_limit_passes_through_intact():
    chunks = [b"a" * 20_000, b"b" * 20_000, b"c" * 20_000]  # 60,000 bytes: under /t/forms/' 64 KB
    inner, peer = ReadingApp(), Peer(chunks)

    call(BodyLimits(inner), http("/t/forms/signup/"), peer)

    assert peer.status == 200 and inner.body == b"a" * 20_000 + b"b" * 20_000 + b"c" * 20_000
    assert peer.receive_calls == 3


def test_api_routes_answer_json_and_others_json_only_when_json_was_sent():
    api, form_json = Peer(endless=b"x"), Peer(endless=b"x")

    call(BodyLimits(ReadingApp()), http("/v1/batch", length=MB), api)
    call(BodyLimits(ReadingApp()), http("/t/forms/a/", length=MB, content_type=b"application/json"), form_json)

    assert api.header(b"content-type") == form_json.header(b"content-type") == b"application/json"
    assert json.loads(api.body) == {"detail": "Request body over 500 KB, the limit of this route."}
    assert json.loads(form_json.body) == {"detail": "Request body over 64 KB, the limit of this route."}


def test_a_content_length_that_is_no_number_is_a_400():
    peer = Peer(endless=b"x")
    scope = http("/v1/batch")
    scope["headers"].append((b"content-length", b"12abc"))

    call(BodyLimits(ReadingApp()), scope, peer)

    assert peer.status == 400 and peer.receive_calls == 0 and b"Content-Length" in peer.body


def test_other_protocols_pass_through():
    seen = []

    async def inner(scope, receive, send):
        seen.append(scope["type"])

    async_to_sync(BodyLimits(inner))({"type": "lifespan"}, None, None)

    assert seen == ["lifespan"]


def test_the_served_application_is_wrapped():
    from marketing.asgi import application

    peer = Peer(endless=b"x" * KB)

    call(application, http("/admin/marketing/importjob/add/", length=300 * MB), peer)

    assert peer.status == 413 and peer.receive_calls == 0
