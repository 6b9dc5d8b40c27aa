"""/healthz reports each dependency and answers 503 when one is down."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import run_checks
from django.test import Client


@pytest.mark.django_db
def test_healthz_is_200_when_every_dependency_answers(client: Client) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "redis", "fluidsynth", "soundfont", "ffmpeg"}
    assert all(check["ok"] for check in body["checks"].values())


@pytest.mark.django_db
def test_healthz_is_503_and_names_redis_when_redis_is_unreachable(client: Client, settings: Any) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"]["ok"] is False
    assert "REDIS_URL" in body["checks"]["redis"]["detail"]
    assert body["checks"]["database"]["ok"] is True


@pytest.mark.django_db
def test_healthz_is_503_when_the_soundfont_is_missing(client: Client, settings: Any) -> None:
    settings.SOUNDFONT_PATH = "/nonexistent.sf2"

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["checks"]["soundfont"]["ok"] is False


def test_system_checks_report_a_missing_ffmpeg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)

    errors = [message for message in run_checks(tags=["backtrack"]) if message.id == "backtrack.E001"]

    assert len(errors) == 1
    assert "ffmpeg" in errors[0].msg


def test_system_checks_pass_on_this_machine() -> None:
    assert [message.id for message in run_checks(tags=["backtrack"])] == []
