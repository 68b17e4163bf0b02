"""The apps' layering, enforced: ``marketing`` is the ground floor and imports no other app of
ours; ``workflows`` and ``compliance`` build on ``marketing`` only; ``channels_app`` and
``scoring`` build on ``marketing`` and ``workflows`` and plug into their registries. A higher app
reaches down through a registry the lower app owns, never by import. Every module of the five
apps is read with ``ast`` (imports inside functions too); migrations and the project's wiring
modules (settings, urls, asgi, celery, wsgi), which assemble every app, are exempt."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# What each app may import (besides itself). scoring's hand-offs and sales rules send through the
# outbox and read consent, as the send actions do: they sit beside channels_app, above compliance.
ALLOWED = {
    "marketing": set(),
    "workflows": {"marketing"},
    "compliance": {"marketing"},
    "channels_app": {"marketing", "workflows", "compliance"},
    "scoring": {"marketing", "workflows", "channels_app", "compliance"},
}
WIRING = {f"marketing/{name}.py" for name in ("settings", "urls", "asgi", "celery", "wsgi")}


def imported_apps(source: str) -> list[tuple[int, str]]:
    """(line, module) for each absolute import of one of our apps in ``source``, at any depth."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue  # relative imports stay inside their own package
        found += [(node.lineno, name) for name in names if name.split(".")[0] in ALLOWED]
    return found


def layering_violations() -> list[str]:
    violations = []
    for app, allowed in ALLOWED.items():
        for path in sorted((ROOT / app).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative in WIRING or "/migrations/" in relative:
                continue
            for line, module in imported_apps(path.read_text()):
                top = module.split(".")[0]
                if top != app and top not in allowed:
                    violations.append(f"{relative}:{line} imports {module}")
    return violations


def test_no_app_imports_an_app_above_it():
    violations = layering_violations()
    assert not violations, (
        "These imports break the apps' layering (go through a registry of the lower app instead):\n"
        + "\n".join(violations)
    )


def test_the_rule_sees_imports_inside_functions_and_every_form():
    source = (
        "import channels_app\n"
        "from marketing.models import Contact\n"
        "def later():\n"
        "    from workflows.models import Workflow\n"
        "    import scoring.rules as rules\n"
        "    from . import sibling\n"
    )

    assert imported_apps(source) == [
        (1, "channels_app"),
        (2, "marketing.models"),
        (4, "workflows.models"),
        (5, "scoring.rules"),
    ]


def test_the_walk_covers_every_app_and_skips_only_wiring_and_migrations():
    walked = {path.relative_to(ROOT).as_posix() for app in ALLOWED for path in (ROOT / app).rglob("*.py")}

    assert {"workflows/dry_run.py", "marketing/pickers_api.py", "channels_app/actions.py"} <= walked
    assert walked >= WIRING  # the exemptions name modules that exist, so a rename is noticed
