"""The in-process runner of the embedded mode (no Redis, no beat): a daemon thread that does
what beat's workflow jobs do — advance due runs every second, resend lost deliveries every
15 s, check date-relative triggers hourly — with the same engine functions the workers call."""

import logging
import threading

from django.db import close_old_connections, connections

logger = logging.getLogger(__name__)


def _loop(stop: threading.Event, interval_s: float) -> None:
    from workflows.deliveries import deliveries_due, delivery_send
    from workflows.engine import instances_advance_due
    from workflows.services import date_triggers_enrol

    ticks = 0
    while not stop.wait(interval_s):
        close_old_connections()
        try:
            instances_advance_due()
            if ticks % 15 == 0:
                for delivery_id in deliveries_due():
                    delivery_send(delivery_id=delivery_id)
            if ticks % 3600 == 0:
                date_triggers_enrol()
        except Exception:  # keep the runner alive; the next tick tries again
            logger.exception("embedded workflow runner tick failed")
        ticks += 1
    connections.close_all()  # this thread's connections


class Runner:
    def __init__(self, interval_s: float):
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=_loop, args=(self._stop, interval_s), name="workflow-runner", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def start(*, interval_s: float = 1.0) -> Runner:
    """Starts the runner thread; ``stop()`` the returned runner to end it."""
    runner = Runner(interval_s)
    logger.info("embedded workflow runner started interval_s=%s", interval_s)
    return runner
