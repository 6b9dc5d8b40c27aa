"""Deployment: the production settings, the image and docker-compose.yml (read, not run: no Docker
here), and error pages that never show a traceback."""

from __future__ import annotations

import importlib
import json
import os
import secrets
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path

REPO = Path(__file__).resolve().parents[1]


def load_compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def command_words(service: dict) -> list[str]:
    command = service["command"]
    return command if isinstance(command, list) else shlex.split(command)


def test_compose_has_the_production_services() -> None:
    services = load_compose()["services"]
    assert {"web", "worker", "redis", "db"} <= set(services)
    assert "--appendonly yes" in services["redis"]["command"]
    assert services["db"]["image"].startswith("postgres")


def test_every_app_command_names_a_real_module() -> None:
    services = load_compose()["services"]
    for name in ("web", "worker", "beat"):
        words = command_words(services[name])
        joined = " ".join(words)
        if "gunicorn" in joined:
            target = next(word for word in joined.split() if ":application" in word)
            module_name, attribute = target.split(":")
            assert hasattr(importlib.import_module(module_name), attribute), target
        if "celery" in words[0]:
            app_module = words[words.index("-A") + 1]
            module = importlib.import_module(app_module)
            assert module.celery_app.main == "backtrack"
        if "manage.py" in joined:
            assert (REPO / "manage.py").is_file()


def test_app_services_share_the_media_volume_and_one_image() -> None:
    compose = load_compose()
    services = compose["services"]
    mounts = {name: services[name]["volumes"] for name in ("web", "worker", "beat")}
    for volumes in mounts.values():
        assert "media:/data" in volumes
    assert "media" in compose["volumes"]
    assert {services[name]["image"] for name in ("web", "worker", "beat")} == {"backtrack:latest"}
    for name in ("web", "worker"):
        env = services[name]["environment"]
        assert env["MEDIA_ROOT"].startswith("/data")
        assert env["REDIS_URL"].startswith("redis://redis:")
        assert env["DATABASE_URL"].startswith("postgres://")


def test_dockerfile_installs_the_renderer_dependencies() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    for package in ("fluidsynth", "libfluidsynth3", "ffmpeg", "fluid-soundfont-gm"):
        assert package in dockerfile


# --- production settings ------------------------------------------------------------------------------

STRONG_KEY = secrets.token_urlsafe(50)  # 67 random characters
SECURITY_SETTINGS = (
    "DEBUG",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_REDIRECT_EXEMPT",
)


def run_with_only(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run Python in the repository with these variables and nothing else of ours (PATH aside).

    A developer's `.env` in the repository root would still be read: these tests assume none.
    """
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def security_settings(**env: str) -> dict[str, Any]:
    script = (
        "import json; from django.conf import settings; "
        f"print(json.dumps({{name: getattr(settings, name) for name in {SECURITY_SETTINGS!r}}}))"
    )
    result = run_with_only({"DJANGO_SETTINGS_MODULE": "backtrack.settings", **env}, "-c", script)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_check_deploy_is_clean_with_debug_off_and_a_strong_key_only() -> None:
    # given DEBUG=false, a strong SECRET_KEY and nothing else
    # when
    result = run_with_only({"DEBUG": "false", "SECRET_KEY": STRONG_KEY}, "manage.py", "check", "--deploy")

    # then no warning at all
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr
    assert "WARNING" not in result.stdout + result.stderr


def test_with_debug_off_the_secure_choices_are_the_defaults() -> None:
    values = security_settings(DEBUG="false", SECRET_KEY=STRONG_KEY)

    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SECURE_HSTS_SECONDS"] == 31_536_000
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert values["SECURE_HSTS_PRELOAD"] is False
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["CSRF_COOKIE_SECURE"] is True
    assert values["SECURE_PROXY_SSL_HEADER"] is None
    assert values["SECURE_REDIRECT_EXEMPT"] == [r"^healthz$"]


def test_each_secure_default_can_be_turned_off_from_the_environment() -> None:
    values = security_settings(
        DEBUG="false",
        SECRET_KEY=STRONG_KEY,
        SECURE_SSL_REDIRECT="false",
        SECURE_HSTS_SECONDS="0",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="false",
        SECURE_COOKIES="false",
    )

    assert values["SECURE_SSL_REDIRECT"] is False
    assert values["SECURE_HSTS_SECONDS"] == 0
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is False
    assert values["SESSION_COOKIE_SECURE"] is False
    assert values["CSRF_COOKIE_SECURE"] is False


def test_development_serves_plain_http() -> None:
    values = security_settings(DEBUG="true")

    assert values["SECURE_SSL_REDIRECT"] is False
    assert values["SECURE_HSTS_SECONDS"] == 0
    assert values["SESSION_COOKIE_SECURE"] is False


@pytest.mark.parametrize("name", ["HTTP_X_FORWARDED_PROTO", "X-Forwarded-Proto", "x_forwarded_proto"])
def test_the_proxy_ssl_header_comes_from_the_environment(name: str) -> None:
    values = security_settings(DEBUG="false", SECRET_KEY=STRONG_KEY, SECURE_PROXY_SSL_HEADER=name)

    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_a_malformed_proxy_ssl_header_stops_start_up_naming_it() -> None:
    result = run_with_only(
        {"DEBUG": "false", "SECRET_KEY": STRONG_KEY, "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto: https"},
        "manage.py",
        "check",
    )

    assert result.returncode != 0
    assert "SECURE_PROXY_SSL_HEADER" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_image_runs_with_debug_off() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    env_block = dockerfile.split("\nENV ", 1)[1].split("\n\n", 1)[0]
    assert "DEBUG=false" in env_block


def test_compose_needs_a_secret_key_and_serves_plain_http_locally() -> None:
    # given the stack on plain HTTP at localhost:8000 with DEBUG off
    compose = load_compose()
    services = compose["services"]
    web = services["web"]
    env = web["environment"]

    # then it demands a SECRET_KEY, and turns off only what plain HTTP cannot do
    assert env["DEBUG"] == "false"
    assert env["SECRET_KEY"].startswith("${SECRET_KEY:?")
    assert env["SECURE_SSL_REDIRECT"] == "${SECURE_SSL_REDIRECT:-false}"
    assert env["SECURE_COOKIES"] == "${SECURE_COOKIES:-false}"
    assert "SECURE_HSTS_SECONDS" not in env  # HSTS is only ever sent over HTTPS
    assert web["ports"] == ["8000:8000"]
    assert "/healthz" in " ".join(web["healthcheck"]["test"])
    for name in ("worker", "beat"):
        assert services[name]["environment"]["SECRET_KEY"] == env["SECRET_KEY"]


def test_the_image_leaves_local_secrets_out() -> None:
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".env", ".venv", "var", "media"} <= set(ignored)


# --- error pages with DEBUG off -----------------------------------------------------------------------


def _broken_view(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("secret-internal-detail")


urlpatterns = [path("broken/", _broken_view)]


@pytest.mark.django_db
def test_a_missing_page_is_a_plain_404(client: Client, settings: Any) -> None:
    settings.DEBUG = False

    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert b"Traceback" not in response.content
    assert b"urlpatterns" not in response.content


@pytest.mark.urls("tests.test_deployment")
def test_a_server_error_is_a_plain_500_without_a_traceback(settings: Any) -> None:
    settings.DEBUG = False
    client = Client(raise_request_exception=False)

    response = client.get("/broken/")

    assert response.status_code == 500
    assert b"Server Error" in response.content
    assert b"secret-internal-detail" not in response.content
    assert b"Traceback" not in response.content


def test_a_bad_host_is_a_plain_400(client: Client, settings: Any) -> None:
    settings.DEBUG = False

    response = client.get("/healthz", HTTP_HOST="evil.example")

    assert response.status_code == 400
    assert b"evil.example" not in response.content
    assert b"Traceback" not in response.content


@pytest.mark.django_db
def test_a_refused_form_post_is_a_plain_403(settings: Any) -> None:
    settings.DEBUG = False
    client = Client(enforce_csrf_checks=True)

    response = client.post("/login/", {"username": "someone", "password": "x"})

    assert response.status_code == 403
    assert b"Traceback" not in response.content
    assert b"CSRF_COOKIE" not in response.content
