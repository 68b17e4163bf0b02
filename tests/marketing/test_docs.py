"""The product's documentation stands on its own: nothing a user or extender reads (docs, the
README, help texts, templates, docstrings) sends them to a document outside the repository, and
every link between the docs leads somewhere."""

import re
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
SKIPPED_DIRS = {".git", ".venv", "node_modules", "var", "staticfiles", "__pycache__"}
TEXT_SUFFIXES = {".py", ".md", ".html", ".js", ".txt", ".css"}
# Internal planning documents that users of the product do not have (spelled in two parts so
# that this file does not name them itself).
PRIVATE_DOCS = ("CONTRACTS" + ".md", "DESIGN" + ".md", "CONVENTIONS" + ".md")


def _text_files():
    for path in ROOT.rglob("*"):
        relative = path.relative_to(ROOT)
        if any(part in SKIPPED_DIRS for part in relative.parts) or relative.parts[:2] == ("static", "console"):
            continue
        if path.is_file() and path.suffix in TEXT_SUFFIXES:
            yield relative, path


def test_nothing_points_to_documents_users_do_not_have():
    offenders = [
        f"{relative}:{number}"
        for relative, path in _text_files()
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if any(name in line for name in PRIVATE_DOCS)
    ]
    assert offenders == []


def test_no_help_text_points_to_documents_users_do_not_have():
    offenders = [
        f"{model._meta.label}.{field.name}"
        for model in apps.get_models()
        for field in model._meta.get_fields()
        if any(name in str(getattr(field, "help_text", "")) for name in PRIVATE_DOCS)
    ]
    assert offenders == []


@pytest.mark.parametrize("page", [*sorted(p.name for p in (ROOT / "docs").glob("*.md")), "../README.md"])
def test_links_between_the_docs_lead_somewhere(page):
    path = (ROOT / "docs" / page).resolve()
    broken = []
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text()):
        if "://" in target or target.startswith("mailto:"):
            continue
        if not (path.parent / target).exists():
            broken.append(target)
    assert broken == []
