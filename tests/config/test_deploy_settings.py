"""Production settings: what a deployment relies on, checked in fresh processes where it matters.

Settings are read once per process, so the production variants (DEBUG off, no pytest) run in a
subprocess with the environment a web machine would have.
"""

from __future__ import annotations

import json
import os
import runpy
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from tickets import csat, services
from tickets.models import CsatSurvey

from ..factories import CustomerFactory, TicketFactory

ROOT = Path(django_settings.BASE_DIR)
PYTHON = sys.executable
BIN = Path(sys.executable).parent


def production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "PYTEST_VERSION" and not key.startswith("GUNICORN_")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(45),  # 60 characters
        ALLOWED_HOSTS="helpdesk.example.com",
        HELPDESK_VAR_DIR=str(tmp_path / "var"),
        STATIC_ROOT=str(tmp_path / "static"),
    )
    env.pop("LOG_FORMAT", None)
    env.update(overrides)
    return {key: value for key, value in env.items() if value is not None}


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def settings_in(env: dict[str, str], *names: str) -> dict:
    code = (
        "import json; from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {list(names)!r}}}, default=str))"
    )
    result = run([PYTHON, "-c", code], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_uses_hashed_compressed_static_files_and_json_logs(tmp_path):
    values = settings_in(production_env(tmp_path), "STORAGES", "LOG_FORMAT", "SECURE_SSL_REDIRECT")
    assert values["STORAGES"]["staticfiles"]["BACKEND"] == "whitenoise.storage.CompressedManifestStaticFilesStorage"
    assert values["LOG_FORMAT"] == "json" and values["SECURE_SSL_REDIRECT"] is True


def test_development_keeps_plain_static_files_and_readable_logs(tmp_path):
    values = settings_in(production_env(tmp_path, DEBUG="true"), "STORAGES", "LOG_FORMAT")
    assert values["STORAGES"]["staticfiles"]["BACKEND"] == "django.contrib.staticfiles.storage.StaticFilesStorage"
    assert values["LOG_FORMAT"] == "plain"


def test_log_format_can_be_chosen_and_a_typo_stops_start_up(tmp_path):
    assert settings_in(production_env(tmp_path, LOG_FORMAT="plain"), "LOG_FORMAT") == {"LOG_FORMAT": "plain"}
    result = run([PYTHON, "-c", "from django.conf import settings; settings.DEBUG"], production_env(tmp_path, LOG_FORMAT="xml"))
    assert result.returncode != 0 and "LOG_FORMAT must be json or plain" in result.stderr


def test_production_settings_pass_check_deploy(tmp_path):
    result = run([PYTHON, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_gunicorn_refuses_to_start_without_a_secret_key(tmp_path):
    gunicorn = [str(BIN / "gunicorn"), "-c", "config/gunicorn.py", "--check-config", "config.wsgi"]
    refused = run(gunicorn, production_env(tmp_path, SECRET_KEY=""))
    assert refused.returncode != 0 and "Set SECRET_KEY" in refused.stderr
    assert run(gunicorn, production_env(tmp_path)).returncode == 0  # the same with a key starts


def test_the_gunicorn_config_reads_its_environment(monkeypatch):
    monkeypatch.setenv("GUNICORN_WORKERS", "3")
    monkeypatch.setenv("GUNICORN_BIND", "127.0.0.1:9000")
    config = runpy.run_path(str(ROOT / "config" / "gunicorn.py"))
    assert (config["workers"], config["bind"], config["accesslog"], config["preload_app"]) == (3, "127.0.0.1:9000", None, True)
    monkeypatch.setenv("GUNICORN_WORKERS", "many")
    with pytest.raises(SystemExit, match="GUNICORN_WORKERS"):
        runpy.run_path(str(ROOT / "config" / "gunicorn.py"))


@pytest.mark.django_db
def test_collected_static_files_are_served_hashed_compressed_and_cached_for_ever(tmp_path, client, settings):
    result = run([PYTHON, "manage.py", "collectstatic", "--no-input", "-v0"], production_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "static" / "staticfiles.json").exists()
    settings.STATIC_ROOT = tmp_path / "static"
    manifest = {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}
    settings.STORAGES = {**settings.STORAGES, "staticfiles": manifest}
    settings.WHITENOISE_AUTOREFRESH = False

    page = client.get("/admin/login/").content.decode()
    hashed = page.split('href="/static/admin/css/base.', 1)[1].split('"', 1)[0]
    response = client.get(f"/static/admin/css/base.{hashed}", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert "immutable" in response["Cache-Control"] and response["Content-Encoding"] == "gzip"
    # The pages' own scripts are collected too (the CSP allows only files from this site).
    for script in ("qa/scoring.js", "knowledge/assist.js", "tickets/live_view.js"):
        assert script in json.loads((tmp_path / "static" / "staticfiles.json").read_text())["paths"]


# Content security policy.

def _policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split("; ")}


def test_admin_pages_carry_a_strict_content_security_policy(client, ada):
    login = client.get("/admin/login/")
    client.force_login(ada)
    for response in (login, client.get("/admin/"), client.get("/admin/tickets/ticket/")):
        assert response.status_code == 200
        policy = _policy(response)
        assert policy["default-src"] == ["'self'"]
        assert policy["script-src"] == ["'self'"]  # no inline script, no eval
        assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]


def test_the_survey_page_carries_the_policy(client, support_team, alice):
    ticket = TicketFactory(team=support_team, assignee=alice, status="open", customer=CustomerFactory(language="en"))
    services.change_status(ticket=ticket, status="solved")
    response = client.get(csat.survey_path(CsatSurvey.objects.get(ticket=ticket)))
    assert response.status_code == 200
    assert _policy(response)["script-src"] == ["'self'"]
    assert _policy(response)["form-action"] == ["'self'"]


@pytest.mark.django_db
def test_the_api_docs_load_their_script_from_a_url_not_inline(client):
    page = client.get("/api/docs/").content.decode()
    assert "<script>" not in page and "?script=" in page.replace("&amp;", "&")
