"""/healthz answers 200 or 503 to everyone, and names each dependency's state to staff only."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import run_checks
from django.test import Client

from tests.factories import PerformerFactory


@pytest.fixture
def staff_client(client: Client, db: None) -> Client:
    client.force_login(PerformerFactory(is_staff=True))
    return client


@pytest.mark.django_db
def test_healthz_tells_an_outsider_only_that_all_is_well(client: Client) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200, response.json()
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_healthz_tells_an_outsider_only_that_something_is_down(client: Client, settings: Any) -> None:
    # given Redis unreachable and a signed-in user who is not staff
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    client.force_login(PerformerFactory())

    # when
    response = client.get("/healthz")

    # then no host, path or version leaks
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}


def test_healthz_shows_staff_every_probe(staff_client: Client) -> None:
    response = staff_client.get("/healthz")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "redis", "fluidsynth", "soundfont", "ffmpeg"}
    assert all(check["ok"] for check in body["checks"].values())


def test_healthz_is_503_and_names_redis_to_staff_when_redis_is_unreachable(
    staff_client: Client, settings: Any
) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    response = staff_client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"]["ok"] is False
    assert "REDIS_URL" in body["checks"]["redis"]["detail"]
    assert body["checks"]["database"]["ok"] is True


def test_healthz_is_503_when_the_soundfont_is_missing(staff_client: Client, settings: Any) -> None:
    settings.SOUNDFONT_PATH = "/nonexistent.sf2"

    response = staff_client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["checks"]["soundfont"]["ok"] is False


@pytest.mark.django_db
def test_healthz_answers_over_plain_http_when_https_is_enforced(client: Client, settings: Any) -> None:
    # given the production default: redirect HTTP to HTTPS
    settings.SECURE_SSL_REDIRECT = True

    # when a load balancer probes over HTTP, and a browser opens a page over HTTP
    probe = client.get("/healthz")
    page = client.get("/")

    # then the probe is answered and the page redirected
    assert probe.status_code == 200
    assert page.status_code == 301
    assert page["Location"].startswith("https://")


def test_system_checks_report_a_missing_ffmpeg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)

    errors = [message for message in run_checks(tags=["backtrack"]) if message.id == "backtrack.E001"]

    assert len(errors) == 1
    assert "ffmpeg" in errors[0].msg


def test_system_checks_pass_on_this_machine() -> None:
    assert [message.id for message in run_checks(tags=["backtrack"])] == []
