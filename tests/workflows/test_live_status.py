"""Live status over a real websocket: daphne runs the ASGI app in a subprocess against this
test's database, the engine runs here and publishes through Redis, and a websocket client (and
headless Chromium, on the workflow's console page) sees the transitions of its workflow only.
Anyone not allowed to watch is closed with 4403 and hears nothing."""

import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from django.db import connections
from django.test import Client
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from marketing.models import Role
from marketing.tenancy import SESSION_KEY, org_context
from tests.browser import CHROMIUM, CHROMIUM_ARGS, playwright_or_skip
from tests.factories import ContactFactory
from workflows.engine import instances_advance_due
from workflows.services import workflow_create, workflow_enrol_manually, workflow_publish

ROOT = Path(__file__).resolve().parents[2]
HELLO_WAIT = [
    {"id": "hello", "type": "action", "action": "log", "config": {"message": "hello"}, "next": "wait"},
    {"id": "wait", "type": "delay", "config": {"duration": "P1D"}, "next": None},
]
RECEIVE_S = 15

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """A daphne subprocess serving ``marketing.asgi:application`` on a loopback port."""

    def __init__(self, port: int, log: Path):
        self.port, self.log = port, log
        self.origin = f"http://127.0.0.1:{port}"

    def ws_url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def daphne(*, database_url: str, redis_url: str, log: Path):
    """Starts daphne against ``database_url`` with the Redis channel layer; waits until it listens."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "CONN_MAX_AGE": "0", "DEBUG": "true"}
    command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "marketing.asgi:application"]
    with log.open("w") as out:  # a file, not a pipe: a full pipe would stall the server
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
    server = Server(port, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"daphne exited:\n{server.output()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"daphne did not listen within 30 s:\n{server.output()}")
                time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def server(transactional_db, settings, shared_database_url, tmp_path):
    """A running daphne; it stops before the test's tables are flushed (it asks for the database first)."""
    if settings.EMBEDDED:
        pytest.skip("needs REDIS_URL: the server and this test meet in the Redis channel layer")
    with daphne(database_url=shared_database_url, redis_url=settings.REDIS_URL, log=tmp_path / "daphne.log") as running:
        yield running
    assert "Traceback" not in running.output(), running.output()


@pytest.fixture
def no_worker(monkeypatch):
    """No Celery worker runs here: the test drives the engine itself, so "run soon" goes nowhere."""
    from workflows.tasks import instances_run_due

    monkeypatch.setattr(instances_run_due, "delay", lambda **kwargs: None)


def session_cookie(user, org=None) -> str:
    """A console session of ``user`` (acting in ``org``, if given) as a Cookie header."""
    client = Client()
    client.force_login(user)
    if org is not None:
        session = client.session
        session[SESSION_KEY] = org.pk
        session.save()
    return f"sessionid={client.cookies['sessionid'].value}"


def published(org, slug: str):
    with org_context(org):
        workflow = workflow_create(
            org=org, name=slug, slug=slug, definition={"trigger": {"type": "manual"}, "steps": HELLO_WAIT}
        )
        workflow_publish(workflow=workflow)
        workflow.refresh_from_db()
    return workflow


def run(workflow, contacts) -> None:
    """Enrols ``contacts`` and advances every due run: each batch publishes after its commit."""
    workflow_enrol_manually(workflow=workflow, contact_ids=[c.pk for c in contacts])
    instances_advance_due()


def messages_until(ws, done, timeout: float = RECEIVE_S) -> list[dict]:
    """Reads messages until ``done(messages)`` holds; fails with what came if it never does."""
    received, deadline = [], time.monotonic() + timeout
    while not done(received):
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"timed out; received {received}")
        try:
            received.append(json.loads(ws.recv(timeout=left)))
        except TimeoutError:
            continue
    return received


def until_closed(ws) -> tuple[int | None, list]:
    """Reads until the server closes ``ws``: the close code and whatever arrived before it."""
    received = []
    try:
        while True:
            received.append(ws.recv(timeout=RECEIVE_S))
    except ConnectionClosed as closed:
        return (closed.rcvd.code if closed.rcvd else None), received
    except TimeoutError:
        return None, received  # left open: the assertion shows it


# --- the websocket --------------------------------------------------------------------------------


def test_a_member_receives_the_transitions_of_the_workflow_it_watches(org, marketer, server, no_worker):
    watched, other = published(org, "watched"), published(org, "other")
    contacts = ContactFactory.create_batch(3, org=org)
    headers = {"Cookie": session_cookie(marketer)}

    with connect(server.ws_url(f"/ws/workflows/{watched.pk}/"), origin=server.origin, additional_headers=headers) as ws:
        run(other, contacts)  # another workflow's transitions go to another group
        run(watched, contacts)
        messages = messages_until(ws, lambda got: sum(len(m["transitions"]) for m in got) >= 3)

    transitions = [t for m in messages for t in m["transitions"]]
    assert {m["workflow"] for m in messages} == {watched.pk}
    assert sorted(t["contact"] for t in transitions) == sorted(c.pk for c in contacts)
    assert {(t["step"], t["to"], t["status"]) for t in transitions} == {("hello", "wait", "completed")}
    assert all(set(t) >= {"instance", "contact", "step", "to", "status", "at"} for t in transitions)
    assert messages[0]["total"] == 3
    assert messages[0]["counts"]["wait"]["waiting"] == 3


def test_the_org_socket_carries_every_workflow_of_the_org(org, marketer, server, no_worker):
    first, second = published(org, "first"), published(org, "second")
    contact = ContactFactory(org=org)
    headers = {"Cookie": session_cookie(marketer, org)}

    with connect(server.ws_url("/ws/workflows/"), origin=server.origin, additional_headers=headers) as ws:
        run(first, [contact])
        run(second, [contact])
        messages = messages_until(ws, lambda got: {m["workflow"] for m in got} >= {first.pk, second.pk})

    assert {m["workflow"] for m in messages} == {first.pk, second.pk}


def test_strangers_are_closed_with_4403_and_hear_nothing(org, other_org, marketer, member_factory, server, no_worker):
    workflow = published(org, "private")
    outsider = member_factory(other_org, Role.ADMIN, username="globex-admin")
    cookies = {
        "no one": None,
        "another org's admin": session_cookie(outsider),
        "another org's admin, acting in it": session_cookie(outsider, other_org),
        "a sales rep (may not see workflows)": session_cookie(member_factory(org, Role.SALES, username="rep")),
    }
    path = f"/ws/workflows/{workflow.pk}/"

    with ExitStack() as stack:
        member = stack.enter_context(
            connect(server.ws_url(path), origin=server.origin, additional_headers={"Cookie": session_cookie(marketer)})
        )
        strangers = {
            who: stack.enter_context(
                connect(
                    server.ws_url(path), origin=server.origin, additional_headers={"Cookie": cookie} if cookie else {}
                )
            )
            for who, cookie in cookies.items()
        }
        run(workflow, [ContactFactory(org=org)])
        heard = messages_until(member, lambda got: len(got) >= 1)  # the run did publish…
        outcomes = {who: until_closed(ws) for who, ws in strangers.items()}

    assert heard[0]["workflow"] == workflow.pk
    assert outcomes == {who: (4403, []) for who in cookies}  # …to none of them


def test_a_page_of_another_site_may_not_open_the_socket(org, marketer, server):
    """A logged-in user's browser on another site sends the session cookie too; the Origin tells."""
    workflow = published(org, "watched")
    headers = {"Cookie": session_cookie(marketer)}

    with pytest.raises(InvalidStatus) as refusal:
        connect(
            server.ws_url(f"/ws/workflows/{workflow.pk}/"), origin="http://evil.example", additional_headers=headers
        )

    assert refusal.value.response.status_code == 403


# --- the console page in a browser ---------------------------------------------------------------


def run_beside(workflow, contacts) -> None:
    """``run`` in a thread of its own: Playwright's sync API keeps an event loop in this one,
    where Django refuses database calls and ``async_to_sync`` (the publish) refuses to run."""

    def target():
        try:
            with org_context(workflow.org):
                run(workflow, contacts)
        finally:
            connections.close_all()  # the thread's own connection, or the test database stays in use

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(target).result()


def serve_static(route) -> None:
    """Answers /static/… from the apps' static files: daphne serves the app, not static files
    (in production WhiteNoise does)."""
    from urllib.parse import urlparse

    from django.contrib.staticfiles import finders

    found = finders.find(urlparse(route.request.url).path.removeprefix("/static/"))
    if found:
        route.fulfill(path=found)
    else:
        route.fulfill(status=404)


def test_the_change_page_shows_counts_and_activity_as_the_workflow_runs(org, marketer, server, no_worker):
    sync_playwright = playwright_or_skip()
    steps = [
        {"id": "hello", "type": "action", "action": "log", "config": {"message": "hello"}, "next": "note"},
        # A message that would become an element if the page put it into the DOM as HTML.
        {"id": "note", "type": "action", "action": "notify", "config": {"message": "Hi <b>ops</b>"}, "next": "wait"},
        {"id": "wait", "type": "delay", "config": {"duration": "P1D"}, "next": None},
    ]
    with org_context(org):
        workflow = workflow_create(
            org=org, name="Live", slug="live", definition={"trigger": {"type": "manual"}, "steps": steps}
        )
        workflow_publish(workflow=workflow)
        workflow.refresh_from_db()
    early, *later = ContactFactory.create_batch(3, org=org)
    run(workflow, [early])
    cookie = session_cookie(marketer).split("=", 1)[1]
    cell = "#workflow-step-counts tr[data-step='{}'] td[data-count='{}']"

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.add_cookies([{"name": "sessionid", "value": cookie, "url": server.origin}])
            page = context.new_page()
            page.route("**/static/**", serve_static)
            page.goto(f"{server.origin}/admin/workflows/workflow/{workflow.pk}/change/")
            on_load = [page.inner_text(cell.format("wait", "waiting")), page.inner_text(cell.format("hello", "done"))]
            page.wait_for_selector("#workflow-live[data-state='live']")
            page.evaluate("window.notReloaded = true")

            run_beside(workflow, later)

            page.wait_for_function(
                """([waiting, done]) => document.querySelector(waiting).textContent === "3"
                    && document.querySelector(done).textContent === "3"
                    && document.querySelectorAll("#workflow-activity li.notification").length === 2""",
                arg=[cell.format("wait", "waiting"), cell.format("hello", "done")],
                timeout=RECEIVE_S * 1000,
            )
            feed = page.locator("#workflow-activity li").all_inner_texts()
            injected = page.evaluate("document.querySelectorAll('#workflow-activity b').length")
            not_reloaded = page.evaluate("window.notReloaded === true")
        finally:
            browser.close()

    assert on_load == ["1", "1"]  # rendered by the server
    assert not_reloaded
    for contact in later:
        assert any(f"contact #{contact.pk} · hello → note · completed" in line for line in feed), feed
        assert any(f"contact #{contact.pk} · note → wait · completed" in line for line in feed), feed
    assert sum("note: Hi <b>ops</b>" in line for line in feed) == 2  # shown as text
    assert injected == 0
