"""The demo-data registry: each app adds its part of ``seed_demo`` with ``@demo_seeder``.

A seeder lives in the app's ``demo`` module, takes ``org`` (the ``acme`` org), ``users`` (by
username) and ``stdout``, and must be idempotent, like ``seed_demo`` itself.
"""

from collections.abc import Callable

from django.utils.module_loading import autodiscover_modules

_seeders: list[Callable] = []


def demo_seeder(func: Callable) -> Callable:
    """Registers ``func`` to run at the end of ``seed_demo``, inside the acme org's context."""
    _seeders.append(func)
    return func


def run_demo_seeders(*, org, users, stdout) -> None:
    """Runs every app's registered demo seeder for ``org``."""
    from marketing.tenancy import org_context

    autodiscover_modules("demo")
    with org_context(org):
        for seeder in _seeders:
            seeder(org=org, users=users, stdout=stdout)
