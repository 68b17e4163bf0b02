"""The outbox's in-process sweeper for the embedded mode (no Redis, no beat): a daemon thread
that does what beat's "channels: resend due messages" job does every 15 s — send messages whose
hold (quiet hours, frequency cap) ended, whose backoff is over, or whose sender died."""

import logging
import threading

from django.db import close_old_connections, connections

logger = logging.getLogger(__name__)


def _loop(stop: threading.Event, interval_s: float) -> None:
    from channels_app.outbox import SEND_BATCH, messages_due, messages_send

    while not stop.wait(interval_s):
        close_old_connections()
        try:
            due = messages_due()
            for first in range(0, len(due), SEND_BATCH):
                messages_send(message_ids=due[first : first + SEND_BATCH])
        except Exception:  # keep the sweeper alive; the next tick tries again
            logger.exception("embedded outbox sweeper tick failed")
    connections.close_all()  # this thread's connections


class Runner:
    def __init__(self, interval_s: float):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=_loop, args=(self._stop, interval_s), name="outbox-sweeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def start(*, interval_s: float = 15.0) -> Runner:
    """Starts the sweeper thread; ``stop()`` the returned runner to end it."""
    runner = Runner(interval_s)
    logger.info("embedded outbox sweeper started interval_s=%s", interval_s)
    return runner
