"""In-process services of the embedded mode (no broker, no beat), started by ``manage.py demo``.

Apps register a start function from their AppConfig.ready() (the workflows app registers its
runner of due workflow runs), so the ground floor needs no import of the apps above it.
"""

from collections.abc import Callable

_services: list[Callable[[], object]] = []


def embedded_service(start: Callable[[], object]) -> Callable[[], object]:
    """Registers a function that starts a background service in the serving process."""
    _services.append(start)
    return start


def embedded_services_start() -> int:
    """Starts every registered service; returns how many."""
    for start in _services:
        start()
    return len(_services)
