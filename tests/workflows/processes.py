"""Real processes for the workflow tests that need them: Celery workers and beat against the
test database, a throwaway Redis server, and a loopback HTTP server that records the
``Idempotency-Key`` of every call and can hold a call open (so a test can kill the worker that
made it). Every helper is stopped by the test that started it."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


class Process:
    """A subprocess in its own process group (so a kill reaches its children), logging to a file."""

    def __init__(self, args: list[str], *, env: dict, log: Path):
        self.log = log
        self._handle = log.open("w")
        self.popen = subprocess.Popen(  # noqa: S603  our own interpreter or a known binary, fixed arguments
            args, cwd=ROOT, env=env, stdout=self._handle, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL, no goodbye: what an OOM kill or a lost machine does."""
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._handle.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def celery_env(*, database_url: str, redis_url: str, **extra: str) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def celery_worker(
    tmp_path: Path, *, database_url: str, redis_url: str, name: str = "w1", loglevel: str = "warning", **env: str
) -> Process:
    """``celery -A marketing worker --pool solo``: one process, so a SIGKILL lands mid-task."""
    args = [sys.executable, "-m", "celery", "-A", "marketing", "worker", "--pool", "solo"]
    args += ["--hostname", f"{name}@%h", "--without-gossip", "--without-mingle", "--loglevel", loglevel]
    env = celery_env(database_url=database_url, redis_url=redis_url, **env)
    return Process(args, env=env, log=tmp_path / f"worker-{name}-{time.monotonic_ns()}.log")


def celery_beat(tmp_path: Path, *, database_url: str, redis_url: str) -> Process:
    """``celery -A marketing beat`` with the DatabaseScheduler: the migrate-installed system jobs
    (run due instances every second, resend deliveries every 15 s)."""
    args = [sys.executable, "-m", "celery", "-A", "marketing", "beat", "--loglevel", "warning"]
    args += ["--schedule", str(tmp_path / "beat-schedule")]
    env = celery_env(database_url=database_url, redis_url=redis_url)
    return Process(args, env=env, log=tmp_path / f"beat-{time.monotonic_ns()}.log")


def wait_until(
    predicate: Callable[[], object],
    *,
    timeout: float,
    what: str,
    tick: Callable[[], None] | None = None,
    every: float = 0.2,
):
    """Polls ``predicate`` until it returns something truthy (returned) or ``timeout`` passes
    (the test fails naming ``what``). ``tick`` runs each second, e.g. to play beat."""
    deadline = time.monotonic() + timeout
    last_tick = 0.0
    while True:
        now = time.monotonic()
        if tick is not None and now - last_tick >= 1:
            tick()
            last_tick = now
        result = predicate()
        if result:
            return result
        if now > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def beat_tick() -> None:
    """What beat's "workflows: run due instances" job sends (and with the same expiry)."""
    from workflows.tasks import instances_run_due

    instances_run_due.apply_async(expires=5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A throwaway ``redis-server`` on a free loopback port, without persistence: a restart
    loses everything it held, as a crashed broker without AOF does."""

    def __init__(self, tmp_path: Path):
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.binary, self.tmp_path, self.port = binary, tmp_path, free_port()
        self.process: Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        args += ["--dir", str(self.tmp_path)]
        self.process = Process(args, env=dict(os.environ), log=self.tmp_path / f"redis-{time.monotonic_ns()}.log")
        wait_until(self._answers, timeout=10, what="redis-server to accept connections")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.stop()


class HookServer:
    """A loopback HTTP server that answers every POST with ``response`` and records each call's
    ``Idempotency-Key``. With ``hold_first`` the first call is held open until ``release()``."""

    def __init__(self, *, response: dict | None = None, hold_first: bool = False):
        self.calls: list[dict] = []
        self.response = response or {"ok": True}
        self.hold_first = hold_first
        self.first_arrived = threading.Event()
        self._release = threading.Event()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with server._lock:
                    server.calls.append(
                        {
                            "key": self.headers.get("Idempotency-Key"),
                            "path": self.path,
                            "body": json.loads(body or b"{}"),
                        }
                    )
                    first = len(server.calls) == 1
                if first and server.hold_first:
                    server.first_arrived.set()
                    server._release.wait(30)
                payload = json.dumps(server.response).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the caller died while we held its call

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def release(self) -> None:
        self._release.set()

    def keys(self) -> list[str]:
        with self._lock:
            return [call["key"] for call in self.calls]
