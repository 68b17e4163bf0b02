"""Management commands: seed_demo, create_api_key, bench, and the deploy check."""

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.http import HttpRequest
from django.test import Client
from django_scopes import scopes_disabled

from marketing.database_roles import system_alias
from marketing.models import Company, Contact, Membership, Organization, User
from marketing.tenancy import org_context

ROOT = Path(__file__).resolve().parents[2]


def test_seed_demo_is_idempotent(db, settings):
    settings.DEBUG = True  # pytest-django turns it off; seed_demo refuses to run without it
    out = StringIO()
    call_command("seed_demo", "--contacts", "60", "--companies", "8", stdout=out)
    acme = Organization.objects.get(slug="acme")
    with org_context(acme):
        # The predictive demo's past contacts and their companies come on top of the asked numbers.
        history = Contact.objects.filter(org=acme, email__startswith="history-").count()
        history_companies = Company.objects.filter(org=acme, domain__startswith="acme-history-").count()
        counts = (
            Contact.objects.filter(org=acme).count() - history,
            Company.objects.filter(org=acme).count() - history_companies,
            Membership.objects.filter(org=acme).count(),
            User.objects.count(),
        )

    call_command("seed_demo", "--contacts", "60", "--companies", "8", stdout=StringIO())

    assert counts == (60, 8, 4, 4)
    with org_context(acme):
        assert (
            Contact.objects.filter(org=acme).count() - history,
            Company.objects.filter(org=acme).count() - history_companies,
            Membership.objects.filter(org=acme).count(),
            User.objects.count(),
        ) == counts
    assert "password: demo" in out.getvalue()
    assert Client().login(request=HttpRequest(), username="admin", password="demo")  # axes needs a request


def test_seed_demo_refuses_production_without_force(db, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="--force"):
        call_command("seed_demo", stdout=StringIO())


def test_create_api_key_prints_a_working_key_last(org):
    out = StringIO()
    call_command("create_api_key", "--org", org.slug, "--name", "CRM sync", stdout=out, stderr=StringIO())
    key = out.getvalue().strip().splitlines()[-1].split()[-1]

    assert key.startswith("mk_")
    assert Client().get("/api/v1/contacts/", headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_create_api_key_for_an_unknown_org_fails_readably(db):
    with pytest.raises(CommandError, match="No organisation with slug 'nope'"):
        call_command("create_api_key", "--org", "nope", "--name", "x")


def test_bench_contacts_prints_one_json_line_of_figures(db):
    out = StringIO()
    call_command("bench", "contacts", "--contacts", "300", "--repeat", "2", stdout=out, stderr=StringIO())

    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1
    figures = json.loads(lines[0])
    assert figures["scenario"] == "contacts" and figures["contacts"] == 300
    assert figures["db"] in {"postgresql", "sqlite"} and figures["cores"] >= 1
    assert figures["contacts_per_s"] > 0 and figures["admin_list_p95_ms"] > 0
    with scopes_disabled():  # cleaned up: read as the system role, which sees every org's rows
        assert not Contact.objects.using(system_alias()).filter(org__slug="bench-contacts").exists()


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": "x" * 30 + "-production-secret-key-for-the-check",
        "ERASURE_HASH_KEY": "erasure-hash-key-for-the-check",
        "FIELD_ENCRYPTION_KEYS": "kEzcs3fCGxYkr3vsxkszLMKTDnLkbnz5-D8GG1g1O4U=",
        "FIELD_INDEX_KEY": "field-index-key-for-the-check",
        "ALLOWED_HOSTS": "console.example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_an_erasure_hash_key(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from marketing import settings as project_settings

    monkeypatch.delenv("ERASURE_HASH_KEY", raising=False)
    monkeypatch.setattr(project_settings, "DEBUG", False)
    with pytest.raises(ImproperlyConfigured, match="ERASURE_HASH_KEY must be set when DEBUG is false"):
        project_settings._erasure_hash_keys()
    monkeypatch.setenv("ERASURE_HASH_KEY", "newer-key, older-key")  # new keys go in front
    assert project_settings._erasure_hash_keys() == ["newer-key", "older-key"]


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env = {**os.environ, "DEBUG": "false", "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    env.pop("SECRET_KEY", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_the_demo_keeps_its_mail_in_the_outbox_instead_of_printing_it(
    db, settings, capsys, monkeypatch, eager_tasks, django_capture_on_commit_callbacks
):
    from channels_app.models import Message

    settings.DEBUG = True  # pytest-django turns it off; seed_demo refuses to run without it
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"  # the embedded default
    monkeypatch.delenv("EMAIL_URL", raising=False)
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):  # the notices go out after commit, as in the demo
        call_command("demo", "--no-serve", stdout=out)

    printed = capsys.readouterr().out
    assert "Subject:" not in printed  # the console backend prints every header of every email
    assert "Mail stays in the outbox" in out.getvalue()
    with org_context(Organization.objects.get(slug="acme")):
        notices = Message.objects.filter(org__slug="acme", contact=None, purpose="transactional")
        assert notices.exists()


@pytest.mark.parametrize("variable", ["FIELD_ENCRYPTION_KEYS", "FIELD_INDEX_KEY"])
def test_production_refuses_to_start_without_the_field_encryption_keys(monkeypatch, variable):
    from django.core.exceptions import ImproperlyConfigured

    from marketing import settings as project_settings

    monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(project_settings, "DEBUG", False)
    with pytest.raises(ImproperlyConfigured, match=f"{variable} must be set when DEBUG is false"):
        project_settings._field_key(variable, "unused", str)
